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
}
