import Foundation
import Testing
import PaywallCore
import PaywallTestSupport
import PaywallTokens
@testable import PaywallService
@testable import PaywallStore

/// Every combination of two memberships, decided three ways: by the CLI (`policy decide`,
/// another process reading the file), by the service, and from the access token's
/// entitlements (what an edge verifier sees). The three must agree with each other and
/// with a plainly written expectation.
@Suite("Memberships: CLI, service and access token agree")
struct MembershipAgreementTests {
    /// A membership's situation at the decision time.
    enum State: String, CaseIterable {
        case active, activeButEnded, pastDueInGrace, pastDueAfterGrace, canceledStillPaid, canceledAndEnded, expired

        /// Whether the situation gives access (written out, not computed by the code under test).
        var entitled: Bool {
            switch self {
            case .active, .pastDueInGrace, .canceledStillPaid: true
            case .activeButEnded, .pastDueAfterGrace, .canceledAndEnded, .expired: false
            }
        }

        /// The rule of the shipped policy that grants it.
        var rule: String? {
            switch self {
            case .active: "members read the titles in their plan"
            case .pastDueInGrace: "failed payment keeps access through the grace period"
            case .canceledStillPaid: "canceled members read until their period ends"
            default: nil
            }
        }

        var rank: Int {
            switch self {
            case .active: 3
            case .pastDueInGrace: 2
            case .canceledStillPaid: 1
            default: 0
            }
        }

        /// The status an access token carries for it (only entitled ones are carried).
        var tokenStatus: MembershipStatus? {
            switch self {
            case .active: .active
            case .pastDueInGrace: .pastDue
            case .canceledStillPaid: .canceled
            default: nil
            }
        }
    }

    enum Bundle: String, CaseIterable { case all, euronewsOnly }

    struct Variant: Hashable {
        var state: State
        var bundle: Bundle
        func covers(_ title: String) -> Bool { bundle == .all || title == "euronews" }
    }

    static let decisionTime = Date(timeIntervalSince1970: 1_780_272_000)  // 2026-06-01T00:00:00Z
    static let day: TimeInterval = 86_400

    /// Creates the membership of `plan` in `variant.state` as of the decision time.
    func make(_ variant: Variant, plan: String, account: AccountID, store: Store, clock: ManualClock) throws {
        let t = Self.decisionTime, d = Self.day
        clock.set(t.addingTimeInterval(-60 * d))
        let end: Date = switch variant.state {
        case .active: t.addingTimeInterval(30 * d)
        case .activeButEnded: t.addingTimeInterval(-30 * d)
        case .pastDueInGrace: t.addingTimeInterval(-5 * d)
        case .pastDueAfterGrace: t.addingTimeInterval(-10 * d)
        case .canceledStillPaid: t.addingTimeInterval(300 * d)
        case .canceledAndEnded: t.addingTimeInterval(-1 * d)
        case .expired: t.addingTimeInterval(30 * d)
        }
        let m = try store.grantMembership(accountID: account, planID: PlanID(rawValue: plan), periodEnd: end, source: .admin, actor: .system)
        switch variant.state {
        case .pastDueInGrace:
            _ = try store.changeStatus(id: m.id, to: .pastDue, graceEnd: t.addingTimeInterval(5 * d), actor: .system, reason: nil)
        case .pastDueAfterGrace:
            _ = try store.changeStatus(id: m.id, to: .pastDue, graceEnd: t.addingTimeInterval(-3 * d), actor: .system, reason: nil)
        case .canceledStillPaid, .canceledAndEnded:
            _ = try store.cancelMembership(id: m.id, immediately: false, actor: .system)
        case .expired:
            _ = try store.cancelMembership(id: m.id, immediately: true, actor: .system)
        case .active, .activeButEnded:
            break
        }
    }

    @Test("every pair of memberships (7 situations × all titles / some titles), on a covered and an uncovered title")
    func everyPair() throws {
        let cli = try CLIHarness()
        let clock = ManualClock()
        var variants: [Variant] = []
        for state in State.allCases { for bundle in Bundle.allCases { variants.append(Variant(state: state, bundle: bundle)) } }
        var pairs: [(Variant, Variant)] = []
        for (i, a) in variants.enumerated() { for b in variants[i...] { pairs.append((a, b)) } }

        // Build the database as the store would have been written over two months.
        do {
            var configuration = StoreConfiguration()
            configuration.clock = clock
            clock.set(Self.decisionTime.addingTimeInterval(-90 * Self.day))
            let store = try Store(path: cli.database, configuration: configuration)
            defer { try? store.close() }
            for id in ["euronews", "le-monde", "other"] {
                _ = try store.addTitle(id: TitleID(rawValue: id), name: id, publisher: "P", actor: .system)
            }
            for slot in ["first", "second"] {
                _ = try store.addPlan(id: PlanID(rawValue: "\(slot)-all"), name: slot, period: .month, bundle: .all, actor: .system)
                _ = try store.addPlan(id: PlanID(rawValue: "\(slot)-euronews"), name: slot, period: .month, bundle: .titles([TitleID(rawValue: "euronews")]), actor: .system)
            }
            for (index, (a, b)) in pairs.enumerated() {
                clock.set(Self.decisionTime.addingTimeInterval(-90 * Self.day))
                let account = try store.createAccount(email: EmailAddress("pair-\(index)@example.com"), displayName: nil, passwordHash: "$scrypt$x", actor: .system)
                try make(a, plan: "first-\(a.bundle == .all ? "all" : "euronews")", account: account.id, store: store, clock: clock)
                try make(b, plan: "second-\(b.bundle == .all ? "all" : "euronews")", account: account.id, store: store, clock: clock)
                // The free articles are used up, so only a membership can open an article.
                let reads = (1...3).map {
                    ArticleRead(subject: .account(account.id), titleID: TitleID(rawValue: "other"), articleID: "read-\($0)", at: Self.decisionTime.addingTimeInterval(-Self.day))
                }
                try store.recordReads(reads)
            }
        }

        clock.set(Self.decisionTime)
        let service = try PaywallService(configuration: {
            var configuration = ServiceFixture.configuration(clock, .testing)
            configuration.databaseLocation = cli.database
            configuration.keysDirectory = URL(fileURLWithPath: cli.keys)
            return configuration
        }())
        let at = "2026-06-01T00:00:00Z"
        var checked = 0
        for (index, (a, b)) in pairs.enumerated() {
            let email = "pair-\(index)@example.com"
            let claims = try service.verifyToken(try service.issueAccessToken(account: email, lifetime: nil, audience: nil).token, kinds: [.access])
            guard case let .access(access) = claims else { Issue.record("not an access token"); continue }
            for title in ["euronews", "le-monde"] {
                let label = "\(a.state)/\(a.bundle) + \(b.state)/\(b.bundle) on \(title)"
                let covering = [a, b].filter { $0.covers(title) && $0.state.entitled }
                let winner = covering.max { $0.state.rank < $1.state.rank }
                let expectedAccess = winner == nil ? "teaser" : "full"

                // The service.
                let decision = try service.decide(reader: .account(email), title: title, article: ArticleInput(id: "x"))
                #expect(decision.access.description == expectedAccess, "service: \(label)")
                // A member is let in by the rule of the winning membership's status; anyone
                // else falls to the title's teaser, the meter being spent.
                let expectedRules = winner.map { [$0.state.rule ?? "?"] } ?? ["title \"\(title)\" settings"]
                #expect(decision.decidingRules == expectedRules, "service rule: \(label)")
                #expect(decision.offers.contains(.subscribe) == (winner == nil), "a member is not asked to subscribe: \(label)")

                // The CLI, another process reading the same file.
                let result = try cli.run(["policy", "decide", "--account", email, "--title", title, "--article", "x", "--at", at, "--json"])
                #expect(result.status == 0, "\(result.stderr)")
                let json = try cli.json(result.stdout) as? [String: Any]
                #expect(json?["access"] as? String == expectedAccess, "CLI: \(label)")
                #expect(json?["decidingRules"] as? [String] == decision.decidingRules, "CLI and service agree: \(label)")

                // The access token's entitlements.
                let carried = access.entitlements.memberships.filter { $0.titles.contains(TitleID(rawValue: title)) }
                #expect(!carried.isEmpty == (winner != nil), "token: \(label)")
                let best = carried.map(\.status).max { State.rankOf($0) < State.rankOf($1) }
                #expect(best == winner?.state.tokenStatus, "token status: \(label)")
                checked += 1
            }
        }
        #expect(checked == pairs.count * 2)
        #expect(pairs.count == 105)
    }

    @Test("the reported case: an all-titles plan ended, a canceled euronews plan still paid for a year")
    func reportedCase() throws {
        let cli = try CLIHarness()
        for command in [
            ["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"],
            ["title", "add", "le-monde", "--name", "Le Monde", "--publisher", "LM"],
            ["plan", "add", "monthly-all", "--name", "All", "--period", "month", "--all"],
            ["plan", "add", "news-annual", "--name", "News", "--period", "year", "--titles", "euronews"],
        ] { #expect(try cli.run(command).status == 0) }
        #expect(try cli.run(["account", "create", "--email", "ada@example.com"], input: "correct horse battery\n").status == 0)
        #expect(try cli.run(["membership", "grant", "ada@example.com", "--plan", "monthly-all"]).status == 0)
        #expect(try cli.run(["membership", "grant", "ada@example.com", "--plan", "news-annual"]).status == 0)
        #expect(try cli.run(["membership", "cancel", "ada@example.com", "--plan", "news-annual"]).status == 0)
        let later = TimeText.format(Date().addingTimeInterval(60 * 86_400))
        let euronews = try cli.run(["policy", "decide", "--account", "ada@example.com", "--title", "euronews", "--article", "a1", "--at", later, "--json"])
        let decided = try cli.json(euronews.stdout) as? [String: Any]
        #expect(decided?["access"] as? String == "full")
        #expect(decided?["decidingRules"] as? [String] == ["canceled members read until their period ends"])
        #expect(decided?["offers"] as? [String] == [])
        let leMonde = try cli.run(["policy", "decide", "--account", "ada@example.com", "--title", "le-monde", "--article", "a1", "--at", later, "--json"])
        let other = try cli.json(leMonde.stdout) as? [String: Any]
        #expect(other?["decidingRules"] as? [String] == ["signed-in readers get three free articles a month"], "not a member on le-monde: metered")
    }
}

extension MembershipAgreementTests.State {
    static func rankOf(_ status: MembershipStatus) -> Int {
        switch status {
        case .active: 3
        case .pastDue: 2
        case .canceled: 1
        case .expired: 0
        }
    }
}
