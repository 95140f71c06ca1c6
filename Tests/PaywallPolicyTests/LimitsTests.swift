import Foundation
import Testing
@testable import PaywallPolicy

/// Runs `body` on a thread with a 512 KiB stack (a small worker stack) and returns its
/// result: whatever it builds is also freed there.
func onSmallStack<Result: Sendable>(_ body: @escaping @Sendable () -> Result) async -> Result {
    await withCheckedContinuation { (continuation: CheckedContinuation<Result, Never>) in
        let thread = Thread {
            continuation.resume(returning: body())
        }
        thread.stackSize = 512 * 1024
        thread.start()
    }
}

@Suite("Limits: huge policies, long durations, missing facts")
struct LimitsTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("a 1 MiB policy on a single line loads in linear time")
    func longLine() throws {
        // Rules of 10,000-element sets: about 200,000 lexemes on one line.
        let set = "[" + (0..<10_000).map { "\"t\($0)\"" }.joined(separator: ", ") + "]"
        var text = "defaults { access teaser; teaser 2 paragraphs }"
        var index = 0
        while text.utf8.count + set.utf8.count + 100 < Lexer.maximumSourceSize {
            text += " rule \"r\(index)\" { when title.id in \(set); grant full }"
            index += 1
        }
        #expect(!text.contains("\n"))
        #expect(text.utf8.count > 900_000)
        let clock = ContinuousClock()
        var loaded: Policy?
        let elapsed = try clock.measure { loaded = try compile(text) }
        let policy = try #require(loaded)
        #expect(elapsed < .seconds(2), "took \(elapsed)")
        var facts = DecisionFacts(now: now)
        facts.title.id = "t9999"
        #expect(policy.decide(facts).access == .full)
        // Columns on a long line still count characters.
        let found = diagnostics("rule \"ééé\" { when user.nope; grant full }")
        #expect(found.first?.location == SourceLocation(file: "test.policy", line: 1, column: 19))
    }

    @Test("durations longer than 100 years are refused where they are written")
    func longDurations() throws {
        let meter = diagnostics("meter \"m\" { limit 3 per 20000000000 weeks }")
        let first = try #require(meter.first)
        #expect(first.location == SourceLocation(file: "test.policy", line: 1, column: 25))
        #expect(first.description.hasPrefix("test.policy:1:25: error: a duration may not be longer than 100 years (36600 days)"))
        #expect(diagnostics("rule \"a\" { when article.age < 999999999999 days; grant full }").first?.message.contains("longer than 100 years") == true)
        #expect(diagnostics("rule \"a\" { when user.signedIn; offer trial 99999999999999 weeks }").isEmpty == false)
        let longest = try compile("meter \"m\" { limit 3 per 36600 days }\nrule \"a\" { when article.age < 5227 weeks; grant full }")
        #expect(longest.meters.first?.window == Parser.maximumDuration)
        #expect(!diagnostics("meter \"m\" { limit 3 per 36601 days }").isEmpty)
    }

    @Test("facts with fewer meters than the policy fail closed: a missing meter is used up")
    func missingMeterFacts() throws {
        let policy = try compile("""
            meter "first" { limit 3 per 30 days }
            meter "second" { limit 5 per 30 days }
            rule "metered" { when user.signedIn; grant full using meter "second" }
            rule "left" { when meter("second").remaining > 0 and meter("second").used < 5; offer subscribe }
            """)
        var facts = DecisionFacts(now: now, meters: [MeterFacts()])
        facts.user.signedIn = true
        let decision = policy.decide(facts, explain: true)
        #expect(decision.access == .teaser)
        #expect(decision.meter == MeterOutcome(name: "second", consumed: false, reread: false, used: 5, limit: 5))
        #expect(decision.offers == [])
        facts.meters = []
        #expect(policy.decide(facts).access == .teaser)
        facts.meters = [MeterFacts(), MeterFacts(used: 1)]
        #expect(policy.decide(facts).access == .full)
        #expect(policy.decide(facts).offers == [])
    }
}
