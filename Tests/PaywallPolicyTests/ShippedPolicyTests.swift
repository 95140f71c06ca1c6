import Foundation
import Testing
@testable import PaywallPolicy

enum Repository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let policies = root.appendingPathComponent("Policies")
}

@Suite("The shipped policy")
struct ShippedPolicyTests {
    @Test("checks clean, passes every test in Policies/tests, and every rule is exercised")
    func shipped() throws {
        let policy = try PolicyLoader.load(directory: Repository.policies)
        let tests = try PolicyTestRunner.load(directory: Repository.policies.appendingPathComponent("tests"), policy: policy)
        #expect(tests.count >= 20)
        let results = PolicyTestRunner.run(tests, policy: policy)
        for result in results where !result.passed {
            Issue.record("\(result.test.name): \(result.failures.joined(separator: "; "))")
        }
        #expect(PolicyTestRunner.unexercisedRules(results, policy: policy) == [])
        #expect(policy.titleSections == ["euronews", "le-monde"])
        #expect(policy.meters == [MeterDefinition(name: "free-articles", limit: 3, window: 30 * 86_400)])
    }
}

@Suite("Policy test files")
struct PolicyTestFileTests {
    static let policy: Policy? = try? compile("""
        meter "m" { limit 3 per 30 days }
        rule "new articles for members" { when membership.active and article.age < 1 day; grant full }
        rule "metered" { when user.signedIn; grant full using meter "m" }
        """)

    func parse(_ test: String) throws(PolicyTestFileError) -> [PolicyTestCase] {
        guard let policy = Self.policy else { throw PolicyTestFileError(file: "t.json", message: "the policy did not compile") }
        return try PolicyTestRunner.parse(Data(("{\"tests\": [" + test + "]}").utf8), file: "t.json", policy: policy)
    }

    @Test("read strictly: a misspelled or mistyped meter, facts that are not an object, a closed attribute's unknown value are refused with what was meant", arguments: [
        (#""meters": {"m": {"usd": 5}}"#, #"meter "m" must be {"used": N, "alreadyRead": bool}"#),
        (#""meters": {"m": {"used": "5"}}"#, #"meter "m" must be"#),
        (#""meters": {"m": {"used": -1}}"#, #"meter "m" must be"#),
        (#""meters": [1, 2]"#, #""meters" must be an object"#),
        (#""facts": [1, 2]"#, #""facts" must be an object"#),
        (#""facts": {"membership.status": "activ"}"#, #"not "activ"; did you mean "active"?"#),
        (#""facts": {"request.channel": "emial"}"#, #"request.channel is one of api, app, email, rss, web"#),
    ])
    func strict(part: String, message: String) {
        let test = #"{"name": "t", "at": "2026-06-01T10:00:00Z", "expect": {"access": "full"}, "# + part + "}"
        do {
            _ = try parse(test)
            Issue.record("accepted: \(part)")
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test("a reader not signed in may start a trial unless the test says otherwise, as on the server: the trial offer shows")
    func anonymousTrialEligible() throws {
        let policy = try compile("""
            rule "offer the trial" { when trial.eligible; offer trial 14 days }
            """)
        func parse(_ test: String) throws -> [PolicyTestCase] {
            try PolicyTestRunner.parse(Data(("{\"tests\": [" + test + "]}").utf8), file: "t.json", policy: policy)
        }
        let offered = try parse(#"{"name": "t", "at": "2026-06-01T10:00:00Z", "facts": {"title.id": "the-daily", "article.id": "a1"}, "expect": {"offers": ["trial 14 days"]}}"#)
        #expect(PolicyTestRunner.run(offered, policy: policy).flatMap(\.failures).isEmpty)
        let said = try parse(#"{"name": "t", "at": "2026-06-01T10:00:00Z", "facts": {"title.id": "the-daily", "article.id": "a1", "trial.eligible": false}, "expect": {"offers": []}}"#)
        #expect(PolicyTestRunner.run(said, policy: policy).flatMap(\.failures).isEmpty)
    }

    @Test("an article without a publication time is published now, as on the server (an undated article is not an old one)")
    func undatedArticle() throws {
        let cases = try parse(#"{"name": "t", "at": "2026-06-01T10:00:00Z", "facts": {"membership.status": "active"}, "expect": {"access": "full"}}"#)
        let policy = try #require(Self.policy)
        let results = PolicyTestRunner.run(cases, policy: policy)
        let failures = results.flatMap(\.failures)
        #expect(failures.isEmpty, "\(failures)")
    }
}
