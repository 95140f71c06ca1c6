import Foundation
import PaywallCore
import PaywallPolicy
@testable import PaywallService
import PaywallTestSupport
import Testing

/// A decision that is full without the meters skips their queries; everywhere else the
/// meters are read. Checked against the explaining path, which always reads every fact.
@Suite("Meters read only when the decision can depend on them")
struct LazyMeterTests {
    static let plain = """
        meter "free" { limit 2 per 30 days }
        rule "members" { when membership.active; grant full }
        rule "metered" { when user.signedIn; grant full using meter "free" }
        rule "offers" { when not membership.active; offer subscribe }
        """
    /// A condition that reads the meter: no decision may skip it.
    static let readsMeter = """
        meter "free" { limit 2 per 30 days }
        rule "members" { when membership.active; grant full }
        rule "metered" { when user.signedIn; grant full using meter "free" }
        rule "last one" { when meter("free").remaining == 0; offer subscribe }
        """

    static func policy(_ text: String) throws -> Policy {
        try PolicyLoader.compile([PolicySource(name: "test.policy", text: text)])
    }

    @Test("the policy knows whether a condition reads a meter")
    func detection() throws {
        #expect(try !Self.policy(Self.plain).conditionsReadMeters)
        #expect(try Self.policy(Self.readsMeter).conditionsReadMeters)
        var facts = DecisionFacts(now: Date(timeIntervalSince1970: 0))
        facts.membership.active = true
        #expect(try Self.policy(Self.plain).decidesWithoutMeters(facts)?.access == .full)
        #expect(try Self.policy(Self.readsMeter).decidesWithoutMeters(facts) == nil, "a condition reads the meter")
        facts.membership.active = false
        facts.user.signedIn = true
        #expect(try Self.policy(Self.plain).decidesWithoutMeters(facts) == nil, "not full without the meter")
    }

    @Test("members, metered readers before and after their last unit, anonymous devices: the same decision as with every fact read", arguments: [plain, readsMeter])
    func sameDecisions(text: String) throws {
        let f = try ServiceFixture()
        let s = f.service
        _ = try s.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        _ = try s.addPlan(id: "news", name: "News", period: "month", titles: ["euronews"], actor: f.admin)
        for email in ["member@example.com", "reader@example.com"] {
            _ = try s.signUp(email: email, password: "correct horse battery", displayName: nil, actor: f.admin)
        }
        _ = try s.grantMembership(account: "member@example.com", plan: "news", until: nil, source: .admin, actor: f.admin)
        let policy = try Self.policy(text)
        let readers: [Reader] = [.account("member@example.com"), .account("reader@example.com"), .anonymous(device: "device-1"), .anonymous(device: nil)]
        for round in 0..<4 {
            for reader in readers {
                let article = ArticleInput(id: "a\(round)")
                let lazy = try s.decide(reader: reader, title: "euronews", article: article, policy: policy)
                let full = try s.decide(reader: reader, title: "euronews", article: article, policy: policy, explain: true)
                #expect(lazy.access == full.access && lazy.decidingRules == full.decidingRules && lazy.offers == full.offers && lazy.meter == full.meter,
                        "round \(round), \(reader)")
                // Spend the meter as reads go by (what a served check records).
                _ = try s.decide(reader: reader, title: "euronews", article: article, policy: policy, record: true)
            }
        }
        #expect(try s.decide(reader: .account("reader@example.com"), title: "euronews", article: ArticleInput(id: "new"), policy: policy).access != .full, "the meter is spent")
    }
}
