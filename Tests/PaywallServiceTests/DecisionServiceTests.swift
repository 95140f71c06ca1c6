import Foundation
import Testing
import PaywallTestSupport
import PaywallCore
import PaywallPolicy
@testable import PaywallService
@testable import PaywallStore

@Suite("Decisions through the service")
struct DecisionServiceTests {
    let policyText = """
        meter "free" { limit 3 per 30 days }
        rule "metered" { when user.signedIn; grant full using meter "free" }
        rule "members" { when membership.active and (membership.allTitles or title.id in membership.titles); grant full }
        rule "past due in grace" { when membership.status == "past_due" and now < membership.graceEnds; grant full }
        rule "trial" { when trial.active; grant full }
        rule "sign in" { when not user.signedIn; offer signIn }
        """

    func fixture() throws -> (ServiceFixture, Policy) {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        _ = try f.service.addTitle(id: "le-monde", name: "Le Monde", publisher: "LM", actor: f.admin)
        _ = try f.service.addPlan(id: "news", name: "News", period: "month", titles: ["euronews"], actor: f.admin)
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        return (f, try PolicyLoader.compile([PolicySource(name: "test.policy", text: policyText)]))
    }

    @Test("facts come from the store: membership titles, trial, meters")
    func facts() throws {
        let (f, policy) = try fixture()
        let s = f.service
        let at = f.clock.now()
        var facts = try s.facts(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a1"), request: RequestFacts(), at: at, policy: policy)
        #expect(facts.user.signedIn && facts.user.emailDomain == "example.com")
        #expect(facts.membership.status == "none" && !facts.membership.active)
        #expect(facts.trial.eligible && !facts.trial.active)
        #expect(facts.meters == [MeterFacts(used: 0, alreadyRead: false)])

        let m = try s.grantMembership(account: "ada@example.com", plan: "news", until: nil, source: .admin, actor: f.admin)
        _ = try s.startTrial(account: "ada@example.com", actor: f.admin)
        facts = try s.facts(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a1"), request: RequestFacts(), at: at, policy: policy)
        #expect(facts.membership.active && facts.membership.titles == ["euronews"] && !facts.membership.allTitles)
        #expect(facts.trial.active && !facts.trial.eligible)
        _ = try s.store.changeStatus(id: m.id, to: .pastDue, graceEnd: at.addingTimeInterval(3_600), actor: .system, reason: nil)
        facts = try s.facts(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a1"), request: RequestFacts(), at: at, policy: policy)
        #expect(facts.membership.status == "past_due" && !facts.membership.active)
        #expect(facts.membership.graceEnds == at.addingTimeInterval(3_600))

        let anonymous = try s.facts(reader: .anonymous(device: "d1"), title: "le-monde", article: ArticleInput(id: "a1"), request: RequestFacts(), at: at, policy: policy)
        #expect(!anonymous.user.signedIn && anonymous.trial.eligible)
        #expect(throws: ServiceError.self) { try s.facts(reader: .anonymous(device: "bad device"), title: "le-monde", article: ArticleInput(id: "a1"), request: RequestFacts(), at: at, policy: policy) }
        #expect(throws: ServiceError.store(.titleNotFound("nope"))) { try s.facts(reader: .anonymous(device: nil), title: "nope", article: ArticleInput(id: "a1"), request: RequestFacts(), at: at, policy: policy) }
    }

    @Test("many concurrent reads by one reader never overspend the meter")
    func concurrentMeter() async throws {
        let (f, policy) = try fixture()
        let service = f.service
        let accesses = try await withThrowingTaskGroup(of: AccessLevel.self) { group in
            for index in 0..<12 {
                group.addTask {
                    try service.decide(reader: .account("ada@example.com"), title: "le-monde", article: ArticleInput(id: "a\(index)"), policy: policy, record: true).access
                }
            }
            var all: [AccessLevel] = []
            for try await access in group { all.append(access) }
            return all
        }
        #expect(accesses.filter { $0 == .full }.count == 3)
        #expect(accesses.filter { $0 == .teaser }.count == 9)
        #expect(try service.store.readCount() == 3)
        // A re-read of a counted article is free and still recorded.
        let reread = try service.decide(reader: .account("ada@example.com"), title: "le-monde", article: ArticleInput(id: "a0"), policy: policy, record: true)
        let counted = try service.store.meterUsage(subject: .account(service.account("ada@example.com").id), window: 30 * 86_400).used
        #expect(counted == 3)
        #expect(reread.access == (try service.store.hasRead(subject: .account(service.account("ada@example.com").id), title: TitleID(rawValue: "le-monde"), article: "a0", window: 30 * 86_400) ? .full : .teaser))
    }

    @Test("the store's atomic metered read: recorded, re-read, exhausted")
    func meteredRead() throws {
        let (f, _) = try fixture()
        let store = f.service.store
        func read(_ article: String) -> ArticleRead {
            ArticleRead(subject: .device("d1"), titleID: TitleID(rawValue: "euronews"), articleID: article, at: f.clock.now())
        }
        #expect(try store.recordCountedRead(read("a1"), window: 86_400, limit: 2).outcome == .recorded(used: 1))
        #expect(try store.recordCountedRead(read("a1"), window: 86_400, limit: 2).outcome == .reread)
        #expect(try store.recordCountedRead(read("a2"), window: 86_400, limit: 2).outcome == .recorded(used: 2))
        #expect(try store.recordCountedRead(read("a3"), window: 86_400, limit: 2).outcome == .exhausted(used: 2))
        #expect(try store.readCount() == 2, "the re-read, at the same instant, writes nothing")
        f.clock.advance(by: 86_401)
        #expect(try store.recordCountedRead(read("a3"), window: 86_400, limit: 2).outcome == .recorded(used: 1))
    }
}
