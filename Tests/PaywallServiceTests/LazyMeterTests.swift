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

/// A check that records its read may take the policy's one meter as unused and let the
/// read's transaction count it (``PaywallService/plan(reader:title:article:request:at:policy:explain:optimistic:)``):
/// every answer must be the one the counted meter gives.
@Suite("Meters counted by the read's own transaction")
struct OptimisticMeterTests {
    /// Two meters, the second for when the first is spent: counted first, both always.
    static let twoMeters = """
        meter "free" { limit 2 per 30 days }
        meter "weekly" { limit 1 per 7 days }
        rule "metered" { when user.signedIn; grant full using meter "free" }
        rule "then weekly" { when user.signedIn; grant full using meter "weekly" }
        rule "devices" { when not user.signedIn; grant full using meter "weekly" }
        rule "offers" { when not membership.active; offer subscribe }
        """
    /// Devices metered too, and a cap on embargoed articles (a teaser that still shows the
    /// meter): the meter shown must be the counted one.
    static let devicesAndCap = """
        meter "free" { limit 2 per 30 days }
        rule "members" { when membership.active; grant full }
        rule "metered" { when true; grant full using meter "free" }
        rule "embargo" { when "embargo" in article.tags and not membership.entitled; cap teaser }
        """
    /// A meter switched off: only re-reads of articles counted before are free.
    static let noUnits = """
        meter "free" { limit 0 per 30 days }
        rule "metered" { when user.signedIn; grant full using meter "free" }
        rule "offers" { when not membership.active; offer subscribe }
        """
    /// A condition that reads the meter while units are left: counted first, always.
    static let oneLeft = """
        meter "free" { limit 2 per 30 days }
        rule "members" { when membership.active; grant full }
        rule "metered" { when user.signedIn; grant full using meter "free" }
        rule "one left" { when meter("free").remaining == 1; offer subscribe }
        """

    func fixture() throws -> ServiceFixture {
        let f = try ServiceFixture()
        let s = f.service
        _ = try s.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        _ = try s.addPlan(id: "news", name: "News", period: "month", titles: ["euronews"], actor: f.admin)
        for email in ["member@example.com", "reader@example.com"] {
            _ = try s.signUp(email: email, password: "correct horse battery", displayName: nil, actor: f.admin)
        }
        _ = try s.grantMembership(account: "member@example.com", plan: "news", until: nil, source: .admin, actor: f.admin)
        return f
    }

    /// An article; those named "e…" are embargoed.
    static func article(_ id: String) -> ArticleInput {
        var article = ArticleInput(id: id)
        if id.hasPrefix("e") { article.tags = ["embargo"] }
        return article
    }

    /// Plans (optimistically or not) and records as a served check does.
    func check(_ s: PaywallService, _ reader: Reader, _ article: String, policy: Policy, optimistic: Bool) async throws -> Decision {
        let (_, decision, pending) = try s.plan(
            reader: reader, title: "euronews", article: Self.article(article), request: RequestFacts(), at: s.now, policy: policy,
            explain: false, optimistic: optimistic)
        guard let pending else { return decision }
        return try await s.complete(pending).decision
    }

    @Test("first reads, re-reads, the last unit, a spent meter, members and devices: the same answers as with the meter counted first",
          arguments: [LazyMeterTests.plain, LazyMeterTests.readsMeter, twoMeters, oneLeft, devicesAndCap, noUnits])
    func sameAnswers(text: String) async throws {
        let optimistic = try fixture(), counted = try fixture()
        let policy = try LazyMeterTests.policy(text)
        let readers: [Reader] = [.account("member@example.com"), .account("reader@example.com"), .anonymous(device: "device-1"), .anonymous(device: nil)]
        // Read before (a meter switched off later still counts it: its re-read is free).
        for f in [optimistic, counted] {
            try await f.service.recordRead(subject: .account(f.service.account("reader@example.com").id), title: "euronews", article: "a0")
        }
        for (step, article) in ["a0", "e1", "a1", "a0", "a2", "e2", "a3", "a1", "a4", "e1"].enumerated() {
            for reader in readers {
                let a = try await check(optimistic.service, reader, article, policy: policy, optimistic: true)
                let b = try await check(counted.service, reader, article, policy: policy, optimistic: false)
                #expect(a.access == b.access && a.decidingRules == b.decidingRules && a.offers == b.offers && a.meter == b.meter,
                        "step \(step) (\(article)), \(reader): \(a.meter.map { "\($0)" } ?? "-") against \(b.meter.map { "\($0)" } ?? "-")")
            }
        }
        let spent = try await check(optimistic.service, .account("reader@example.com"), "new", policy: policy, optimistic: true)
        #expect(spent.access != .full, "the meter is spent")
    }

    @Test("the meter is taken as unused only where it cannot change the answer: one meter, read by no condition")
    func whenAssumed() throws {
        let f = try fixture()
        let s = f.service
        let reader = try s.account("reader@example.com")
        try s.recordRead(subject: .account(reader.id), title: "euronews", article: "a0")
        func meters(_ text: String, optimistic: Bool) throws -> [MeterFacts] {
            try s.plan(reader: .account("reader@example.com"), title: "euronews", article: ArticleInput(id: "a1"), request: RequestFacts(),
                       at: s.now, policy: LazyMeterTests.policy(text), explain: false, optimistic: optimistic).0.meters
        }
        #expect(try meters(LazyMeterTests.plain, optimistic: true) == [MeterFacts(used: 0, alreadyRead: false)], "assumed: no query")
        #expect(try meters(LazyMeterTests.plain, optimistic: false) == [MeterFacts(used: 1, alreadyRead: false)])
        #expect(try meters(Self.oneLeft, optimistic: true) == [MeterFacts(used: 1, alreadyRead: false)], "a condition reads the meter")
        #expect(try meters(Self.twoMeters, optimistic: true) == [MeterFacts(used: 1, alreadyRead: false), MeterFacts(used: 1, alreadyRead: false)],
                "two meters")
    }
}

/// A read planned on a meter that another read spent meanwhile is decided again; when that
/// decision meters it on a second meter, the read is recorded there.
@Suite("A second meter after the first is spent")
struct SecondMeterTests {
    static let policy = """
        meter "free" { limit 2 per 30 days }
        meter "bonus" { limit 5 per 7 days }
        rule "free first" { when user.signedIn; grant full using meter "free" }
        rule "then bonus" { when user.signedIn; grant full using meter "bonus" }
        """

    /// The metered read `reader@example.com` would make of a Euronews `article` under `policy`.
    static func plan(_ s: PaywallService, _ policy: Policy, _ article: String) throws -> PaywallService.PendingRead {
        let planned = try s.plan(reader: .account("reader@example.com"), title: "euronews", article: ArticleInput(id: article),
                                 request: RequestFacts(), at: s.now, policy: policy, explain: false)
        return try #require(planned.2, "\(article) is metered")
    }

    @Test("two reads planned on the last unit of the first meter: one takes it, the other is recorded on the second", arguments: [false, true])
    func recordedOnTheSecond(async: Bool) async throws {
        let f = try OptimisticMeterTests().fixture()
        let s = f.service
        let reader = try s.account("reader@example.com")
        try await s.recordRead(subject: .account(reader.id), title: "euronews", article: "before")
        let policy = try LazyMeterTests.policy(Self.policy)
        func plan(_ article: String) throws -> PaywallService.PendingRead { try Self.plan(s, policy, article) }
        // Both planned on "free" with one unit left, before either is recorded.
        let first = try plan("a"), second = try plan("b")
        #expect(first.index == 0 && second.index == 0)
        let decisions: [Decision]
        if async {
            decisions = [try await s.complete(first).decision, try await s.complete(second).decision]
        } else {
            decisions = [try s.complete(first), try s.complete(second)]
        }
        #expect(decisions.map(\.access) == [.full, .full])
        #expect(decisions.map { $0.meter?.name } == ["free", "bonus"])
        #expect(decisions.map { $0.meter?.consumed } == [true, true])
        // Every full read counted: "before", "a" and "b".
        #expect(try s.store.meterUsage(subject: .account(reader.id), window: 7 * 86_400).used == 3)
        #expect(decisions[1].meter?.used == 3, "the second meter as its transaction counted it")
    }

    /// The first meter's rule grants a teaser: a read planned on its last unit that finds it
    /// spent is decided again, full on the second.
    static let teaserFirst = """
        defaults { access none }
        meter "preview" { limit 1 per 30 days }
        meter "bonus" { limit 50 per 7 days }
        rule "preview" { when user.signedIn; grant teaser using meter "preview" }
        rule "bonus" { when user.signedIn; grant full using meter "bonus" }
        """

    @Test("a teaser read that ends full on the second meter: recorded there only when a full answer can be given")
    func teaserThenFull() async throws {
        let f = try OptimisticMeterTests().fixture()
        let s = f.service
        let reader = try s.account("reader@example.com")
        let policy = try LazyMeterTests.policy(Self.teaserFirst)
        func plan(_ article: String) throws -> PaywallService.PendingRead { try Self.plan(s, policy, article) }
        let first = try plan("a"), second = try plan("b")
        #expect(first.decision.access == .teaser && second.decision.access == .teaser, "both planned on the last unit of 'preview'")
        #expect(try await s.complete(first).decision.access == .teaser)
        // No grant could be signed: the second meter's unit is not spent.
        await #expect(throws: ServiceError.self) { try await s.complete(second, noFullAnswer: .overloaded) }
        #expect(try s.store.meterUsage(subject: .account(reader.id), window: 7 * 86_400).used == 1, "only 'a' is recorded")
        let settled = try await s.complete(second).decision
        #expect(settled.access == .full && settled.meter?.name == "bonus" && settled.meter?.consumed == true)
        #expect(try s.store.meterUsage(subject: .account(reader.id), window: 7 * 86_400).used == 2)
    }

    @Test("checks racing for the first meter's last unit: one teaser, every other full with its grant")
    func everyFullAnswerHasItsGrant() async throws {
        let folder = try TestFolder("paywall-teaser-first")
        try Self.teaserFirst.write(to: folder.url.appendingPathComponent("meters.policy"), atomically: true, encoding: .utf8)
        let f = try ServiceFixture { $0.policyDirectory = folder.url }
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        let reader = try await f.service.signUp(email: "reader@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let service = f.service
        let answers = try await withThrowingTaskGroup(of: AccessAnswer.self) { group in
            for index in 0..<20 {
                group.addTask {
                    try await service.checkAccess(AccessRequest(title: "euronews", article: ArticleInput(id: "a\(index)")), reader: .account(reader.id))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.filter { $0.decision.access == .teaser }.count == 1, "one read takes the preview")
        #expect(answers.filter { $0.decision.access == .full }.count == 19)
        for answer in answers where answer.decision.access == .full {
            #expect(answer.articleGrant != nil, "\(answer.articleID): full without a grant")
        }
        #expect(try f.service.store.meterUsage(subject: .account(reader.id), window: 7 * 86_400).used == 20)
    }

    @Test("a read planned as a re-read but counted as new (the earlier read moved meanwhile) says it used a unit")
    func plannedRereadCountedNew() async throws {
        let f = try OptimisticMeterTests().fixture()
        let s = f.service
        let policy = try LazyMeterTests.policy("""
            meter "free" { limit 2 per 30 days }
            rule "metered" { when not user.signedIn; grant full using meter "free" }
            """)
        let reader = try s.account("reader@example.com")
        try await s.recordRead(subject: .device("dev-1"), title: "euronews", article: "a")
        let planned = try s.plan(reader: .anonymous(device: "dev-1"), title: "euronews", article: ArticleInput(id: "a"),
                                 request: RequestFacts(), at: s.now, policy: policy, explain: false)
        let pending = try #require(planned.2)
        #expect(pending.decision.meter?.reread == true && pending.decision.meter?.consumed == false)
        // The device signs up meanwhile: its reads become the account's.
        #expect(try s.store.moveDeviceReads(device: "dev-1", to: reader.id, actor: f.admin) == 1)
        let settled = try await s.complete(pending).decision
        #expect(settled.meter?.consumed == true && settled.meter?.reread == false, "\(String(describing: settled.meter))")
        #expect(settled.meter?.used == 1)
    }
}
