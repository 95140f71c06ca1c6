import Foundation

/// One policy test: facts in, expected decision out. See `Policies/README.md` for the format.
public struct PolicyTestCase: Sendable {
    public var name: String
    public var file: String
    public var facts: DecisionFacts
    public var expectedAccess: AccessLevel?
    public var expectedTeaser: Int?
    public var expectedOffers: [Offer]?
    public var expectedRules: [String]?
    public var expectedMeterConsumed: Bool?
    public var expectedFreeForAll: Bool?
    public var expectedShadow: [String]?
}

/// A test's outcome.
public struct PolicyTestResult: Sendable {
    public var test: PolicyTestCase
    public var decision: Decision
    /// Empty when the test passed.
    public var failures: [String]
    public var passed: Bool { failures.isEmpty }
}

/// A test file that cannot be used.
public struct PolicyTestFileError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var message: String
    public var description: String { "\(file): \(message)" }
}

public enum PolicyTestRunner {
    /// Reads every `*.json` test file of `directory`.
    public static func load(directory: URL, policy: Policy) throws(PolicyTestFileError) -> [PolicyTestCase] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }.sorted()
        } catch {
            throw PolicyTestFileError(file: directory.path, message: "cannot read the test folder: \(error.localizedDescription)")
        }
        var cases: [PolicyTestCase] = []
        for name in names {
            let path = directory.appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path) else { throw PolicyTestFileError(file: path, message: "cannot read") }
            cases += try parse(data, file: path, policy: policy)
        }
        return cases
    }

    static let testNames: Set<String> = ["name", "at", "facts", "meters", "expect"]
    static let expectNames: Set<String> = ["access", "teaser", "offers", "rules", "meterConsumed", "accessibleForFree", "shadow"]

    /// Parses one test file: `{"tests": [{"name", "at", "facts", "meters", "expect"}, …]}`.
    public static func parse(_ data: Data, file: String, policy: Policy) throws(PolicyTestFileError) -> [PolicyTestCase] {
        func fail(_ message: String) -> PolicyTestFileError { PolicyTestFileError(file: file, message: message) }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let tests = root["tests"] as? [[String: Any]] else {
            throw fail("expected {\"tests\": [ … ]}")
        }
        var cases: [PolicyTestCase] = []
        for (index, test) in tests.enumerated() {
            guard let name = test["name"] as? String else { throw fail("test #\(index + 1) has no \"name\"") }
            func failHere(_ message: String) -> PolicyTestFileError { fail("test \"\(name)\": \(message)") }
            guard let atText = test["at"] as? String, let at = ISO8601DateFormatter().date(from: atText) else {
                throw failHere("\"at\" must be an ISO 8601 instant such as 2026-06-01T10:00:00Z")
            }
            var facts = DecisionFacts(now: at, meters: Array(repeating: MeterFacts(), count: policy.meters.count))
            // As the server: an article checked without a publication time is published now.
            facts.article.publishedAt = at
            guard let given = (test["facts"] ?? [String: Any]()) as? [String: Any] else { throw failHere("\"facts\" must be an object of attribute: value") }
            for (key, value) in given {
                do { try set(key, value, in: &facts) } catch { throw failHere(error.message) }
            }
            // `active` and `entitled` follow from the (effective) status unless a test sets them.
            if given["membership.active"] == nil { facts.membership.active = facts.membership.status == "active" }
            if given["membership.entitled"] == nil { facts.membership.entitled = MembershipFacts.entitles(facts.membership.status) }
            // As the server: a reader not signed in may always sign up for a trial (found in
            // review: a test of an anonymous reader's offers passed without the trial offer
            // the site then showed).
            if given["trial.eligible"] == nil, !facts.user.signedIn { facts.trial.eligible = true }
            guard let meters = (test["meters"] ?? [String: Any]()) as? [String: Any] else { throw failHere("\"meters\" must be an object of meter name: {\"used\": N}") }
            for (meterName, value) in meters {
                guard let index = policy.meters.firstIndex(where: { $0.name == meterName }) else { throw failHere("unknown meter \"\(meterName)\"") }
                let shape = "meter \"\(meterName)\" must be {\"used\": N, \"alreadyRead\": bool}"
                // Read strictly: {"usd": 5} or "used": "5" taken as 0 tested something else.
                guard let object = value as? [String: Any], Set(object.keys).isSubset(of: ["used", "alreadyRead"]) else { throw failHere(shape) }
                let used = object["used"] ?? 0
                let alreadyRead = object["alreadyRead"] ?? false
                guard let count = used as? Int, count >= 0, let reread = alreadyRead as? Bool else { throw failHere(shape) }
                facts.meters[index] = MeterFacts(used: count, alreadyRead: reread)
            }
            guard let expect = test["expect"] as? [String: Any], !expect.isEmpty else { throw failHere("needs an \"expect\" object") }
            // A misspelled name ("acess") would check nothing and pass: refused.
            for (object, names, what) in [(test, Self.testNames, "a test"), (expect, Self.expectNames, "\"expect\"")] {
                for key in object.keys.sorted() where !names.contains(key) {
                    let hint = closest(key, in: names.sorted()).map { "; did you mean \"\($0)\"?" } ?? ""
                    throw failHere("unknown member \"\(key)\" in \(what) (known: \(names.sorted().joined(separator: ", ")))\(hint)")
                }
            }
            let typed: [(String, String, (Any) -> Bool)] = [
                ("teaser", "a number", { $0 is Int }), ("meterConsumed", "true or false", { $0 is Bool }),
                ("accessibleForFree", "true or false", { $0 is Bool }), ("shadow", "a list of rule names", { $0 is [String] }),
            ]
            for (key, what, fits) in typed {
                if let value = expect[key], !fits(value) { throw failHere("\"\(key)\" must be \(what)") }
            }
            var testCase = PolicyTestCase(name: name, file: file, facts: facts)
            if let access = expect["access"] {
                guard let text = access as? String, let level = AccessLevel(name: text) else { throw failHere("\"access\" is none, teaser or full") }
                testCase.expectedAccess = level
            }
            testCase.expectedTeaser = expect["teaser"] as? Int
            if let offers = expect["offers"] {
                guard let list = offers as? [String] else { throw failHere("\"offers\" is a list such as [\"signUp\", \"trial 14 days\"]") }
                testCase.expectedOffers = try list.map { text throws(PolicyTestFileError) in
                    guard let offer = Offer(text: text) else { throw failHere("unknown offer \"\(text)\"") }
                    return offer
                }
            }
            if let rules = expect["rules"] {
                guard let list = rules as? [String] else { throw failHere("\"rules\" is a list of rule names") }
                for rule in list where !policy.ruleNames.contains(rule) && rule != "defaults" && !rule.hasPrefix("title \"") {
                    throw failHere("no rule named \"\(rule)\"\(closest(rule, in: policy.ruleNames).map { "; did you mean \"\($0)\"?" } ?? "")")
                }
                testCase.expectedRules = list
            }
            testCase.expectedMeterConsumed = expect["meterConsumed"] as? Bool
            testCase.expectedFreeForAll = expect["accessibleForFree"] as? Bool
            testCase.expectedShadow = expect["shadow"] as? [String]
            cases.append(testCase)
        }
        return cases
    }

    struct FactError: Error { let message: String }

    static func set(_ key: String, _ value: Any, in facts: inout DecisionFacts) throws(FactError) {
        func bool() throws(FactError) -> Bool {
            guard let v = value as? Bool else { throw FactError(message: "\(key) must be true or false") }
            return v
        }
        func string() throws(FactError) -> String {
            guard let v = value as? String else { throw FactError(message: "\(key) must be a string") }
            return v
        }
        func time() throws(FactError) -> Date {
            guard let text = value as? String, let date = ISO8601DateFormatter().date(from: text) else { throw FactError(message: "\(key) must be an ISO 8601 instant") }
            return date
        }
        /// A value of a closed attribute (`membership.status`, `request.channel`): one of its values.
        func closed() throws(FactError) -> String {
            let text = try string()
            if let allowed = Schema.enumerations[key], !allowed.contains(text) {
                let hint = closest(text, in: Array(allowed)).map { "; did you mean \"\($0)\"?" } ?? ""
                throw FactError(message: "\(key) is one of \(allowed.sorted().joined(separator: ", ")), not \"\(text)\"\(hint)")
            }
            return text
        }
        func strings() throws(FactError) -> Set<String> {
            guard let list = value as? [String] else { throw FactError(message: "\(key) must be a list of strings") }
            return Set(list)
        }
        switch key {
        case "user.signedIn": facts.user.signedIn = try bool()
        case "user.id": facts.user.id = try string()
        case "user.emailDomain": facts.user.emailDomain = try string()
        case "user.emailVerified": facts.user.emailVerified = try bool()
        case "user.createdAt": facts.user.createdAt = try time()
        case "membership.status": facts.membership.status = try closed()
        case "membership.active": facts.membership.active = try bool()
        case "membership.entitled": facts.membership.entitled = try bool()
        case "membership.plan": facts.membership.plan = try string()
        case "membership.titles": facts.membership.titles = try strings()
        case "membership.allTitles": facts.membership.allTitles = try bool()
        case "membership.periodEnds": facts.membership.periodEnds = try time()
        case "membership.graceEnds": facts.membership.graceEnds = try time()
        case "trial.active": facts.trial.active = try bool()
        case "trial.eligible": facts.trial.eligible = try bool()
        case "trial.endsAt": facts.trial.endsAt = try time()
        case "title.id": facts.title.id = try string()
        case "title.publisher": facts.title.publisher = try string()
        case "title.tags": facts.title.tags = try strings()
        case "article.id": facts.article.id = try string()
        case "article.free": facts.article.free = try bool()
        case "article.publishedAt": facts.article.publishedAt = try time()
        case "article.section": facts.article.section = try string()
        case "article.tags": facts.article.tags = try strings()
        case "request.ip":
            guard let address = IPAddress(try string()) else { throw FactError(message: "request.ip must be an IPv4 or IPv6 address") }
            facts.request.ip = address
        case "request.country": facts.request.country = try string()
        case "request.referrerHost": facts.request.referrerHost = try string()
        case "request.channel": facts.request.channel = try closed()
        case "request.verifiedCrawler": facts.request.verifiedCrawler = try bool()
        case "request.device": facts.request.device = try string()
        default:
            let hint = closest(key, in: Array(Schema.attributes.keys)).map { "; did you mean '\($0)'?" } ?? ""
            throw FactError(message: "unknown attribute '\(key)'\(hint)")
        }
    }

    /// Runs the tests.
    public static func run(_ tests: [PolicyTestCase], policy: Policy) -> [PolicyTestResult] {
        tests.map { test in
            let decision = policy.decide(test.facts, explain: true)
            var failures: [String] = []
            if let access = test.expectedAccess, decision.access != access { failures.append("access is \(decision.access), expected \(access)") }
            if let teaser = test.expectedTeaser, decision.teaserParagraphs != teaser { failures.append("teaser is \(decision.teaserParagraphs) paragraphs, expected \(teaser)") }
            if let offers = test.expectedOffers, decision.offers != offers {
                failures.append("offers are [\(decision.offers.map(\.description).joined(separator: ", "))], expected [\(offers.map(\.description).joined(separator: ", "))]")
            }
            if let rules = test.expectedRules, decision.decidingRules != rules {
                failures.append("decided by [\(decision.decidingRules.joined(separator: ", "))], expected [\(rules.joined(separator: ", "))]")
            }
            if let consumed = test.expectedMeterConsumed, (decision.meter?.consumed ?? false) != consumed {
                failures.append("meter consumed: \(decision.meter?.consumed ?? false), expected \(consumed)")
            }
            if let free = test.expectedFreeForAll, decision.accessibleForFree != free { failures.append("accessibleForFree is \(decision.accessibleForFree), expected \(free)") }
            if let shadow = test.expectedShadow, decision.shadowMatches != shadow { failures.append("shadow matches [\(decision.shadowMatches.joined(separator: ", "))], expected [\(shadow.joined(separator: ", "))]") }
            return PolicyTestResult(test: test, decision: decision, failures: failures)
        }
    }

    /// Rules that matched in no test.
    public static func unexercisedRules(_ results: [PolicyTestResult], policy: Policy) -> [String] {
        var exercised = Set<String>()
        for result in results {
            for trace in result.decision.explanation ?? [] where trace.matched { exercised.insert(trace.rule) }
        }
        return policy.ruleNames.filter { !exercised.contains($0) }
    }
}
