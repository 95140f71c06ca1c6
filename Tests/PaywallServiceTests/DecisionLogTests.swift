import Foundation
import PaywallPolicy
@testable import PaywallService
import Testing

@Suite("The admin area's ring of recent decisions")
struct DecisionLogTests {
    func decision(_ n: Int) -> LoggedDecision {
        LoggedDecision(
            at: Date(timeIntervalSince1970: TimeInterval(n)), title: "t", article: "a\(n)", access: .full, decidingRules: ["r"],
            readerKind: .anonymous, meter: nil, revision: "rev")
    }

    @Test("keeps the last N, newest first, once it wraps around too")
    func ring() {
        let log = DecisionLog(capacity: 3)
        #expect(log.recent().isEmpty)
        log.append(decision(1))
        log.append(decision(2))
        #expect(log.recent().map(\.article) == ["a2", "a1"])
        for n in 3...7 { log.append(decision(n)) }
        #expect(log.recent().map(\.article) == ["a7", "a6", "a5"])
        log.append(decision(8))
        #expect(log.recent().map(\.article) == ["a8", "a7", "a6"])
    }
}
