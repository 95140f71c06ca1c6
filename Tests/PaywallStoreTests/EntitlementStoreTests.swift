import Foundation
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

@Suite("Trials and memberships")
struct EntitlementStoreTests {
    let day: TimeInterval = 86_400

    @Test("one trial per account; it expires with the clock", arguments: TestBackend.all)
    func trialLifecycle(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        let trial = try f.store.startTrial(accountID: account.id, duration: 14 * day, actor: f.admin)
        #expect(trial.status(at: f.clock.now()) == .active)
        #expect(try f.store.trial(accountID: account.id) == trial)
        let before = try f.snapshot()
        #expect(throws: StoreError.trialAlreadyUsed(email: "ada@example.com")) {
            try f.store.startTrial(accountID: account.id, duration: 14 * day, actor: f.admin)
        }
        #expect(try f.snapshot() == before)
        f.clock.advance(by: 14 * day - 1)
        #expect(try f.store.trial(accountID: account.id)?.status(at: f.clock.now()) == .active)
        f.clock.advance(by: 1)
        #expect(try f.store.trial(accountID: account.id)?.status(at: f.clock.now()) == .expired)
    }

    @Test("a +tag, Gmail dots, or deleting and re-creating the account buy no second trial", arguments: TestBackend.all, [
        ("ada@gmail.com", "a.d.a+again@gmail.com"),
        ("ada@example.com", "ADA+trial2@example.com"),
        ("ada.lovelace@googlemail.com", "adalovelace@gmail.com"),
    ])
    func oneTrialPerPerson(backend: TestBackend, emails: (first: String, second: String)) throws {
        let (first, second) = emails
        let f = try StoreFixture(backend: backend)
        let original = try f.account(first)
        _ = try f.store.startTrial(accountID: original.id, duration: 14 * day, actor: f.admin)
        let alias = try f.account(second)
        #expect(try !f.store.isTrialEligible(email: EmailAddress(second)))
        #expect(throws: StoreError.trialAlreadyUsed(email: alias.email)) {
            try f.store.startTrial(accountID: alias.id, duration: 14 * day, actor: f.admin)
        }
        try f.store.deleteAccount(id: original.id, actor: f.admin)
        let recreated = try f.account(first)
        #expect(throws: StoreError.trialAlreadyUsed(email: recreated.email)) {
            try f.store.startTrial(accountID: recreated.id, duration: 14 * day, actor: f.admin)
        }
    }

    @Test("other people stay eligible; cancel ends a trial", arguments: TestBackend.all)
    func eligibility(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let ada = try f.account("ada@gmail.com")
        _ = try f.store.startTrial(accountID: ada.id, duration: 14 * day, actor: f.admin)
        #expect(try f.store.isTrialEligible(email: EmailAddress("grace@gmail.com")))
        #expect(try f.store.isTrialEligible(email: EmailAddress("ada@example.com")))
        f.clock.advance(by: 2 * day)
        let canceled = try f.store.cancelTrial(accountID: ada.id, actor: f.admin)
        #expect(canceled.status(at: f.clock.now()) == .canceled)
        // It ended now, not on the day it would have: what the account page shows.
        #expect(canceled.endsAt == f.clock.now())
        #expect(try f.store.trial(accountID: ada.id)?.endsAt == f.clock.now())
        let grace = try f.account("grace@example.com")
        #expect(throws: StoreError.trialNotFound(account: "grace@example.com")) { try f.store.cancelTrial(accountID: grace.id, actor: f.admin) }
    }

    @Test("grant, cancel at period end, and the history of every change", arguments: TestBackend.all)
    func membershipLifecycle(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.plan("monthly")
        let account = try f.account("ada@example.com")
        let end = f.clock.now().addingTimeInterval(30 * day)
        let granted = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: end, source: .comp, actor: f.admin)
        #expect(granted.status == .active)
        #expect(granted.source == .comp)
        #expect(granted.grantsAccess(at: f.clock.now()))

        f.clock.advance(by: day)
        let canceled = try f.store.cancelMembership(id: granted.id, immediately: false, actor: f.admin)
        #expect(canceled.status == .canceled)
        #expect(canceled.grantsAccess(at: f.clock.now()))
        f.clock.advance(by: 29 * day)
        #expect(try f.store.membership(id: granted.id).effectiveStatus(at: f.clock.now()) == .expired)

        let history = try f.store.membershipHistory(id: granted.id)
        #expect(history.map(\.to) == [.active, .canceled])
        #expect(history.map(\.from) == [nil, .active])
        #expect(history[1].at == f.clock.now().addingTimeInterval(-29 * day))
    }

    @Test("past due keeps access through the grace period", arguments: TestBackend.all)
    func pastDue(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.plan("monthly")
        let account = try f.account("ada@example.com")
        let m = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: f.clock.now().addingTimeInterval(day), source: .admin, actor: f.admin)
        f.clock.advance(by: day)
        let due = try f.store.changeStatus(id: m.id, to: .pastDue, graceEnd: f.clock.now().addingTimeInterval(7 * day), actor: .system, reason: "payment failed")
        #expect(due.grantsAccess(at: f.clock.now().addingTimeInterval(6 * day)))
        #expect(!due.grantsAccess(at: f.clock.now().addingTimeInterval(7 * day)))
        #expect(try f.store.membershipHistory(id: m.id).last?.reason == "payment failed")
    }

    @Test("canceled while past due: access ends with the grace, not the unpaid period; paid again, it does not", arguments: TestBackend.all)
    func canceledWhilePastDue(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.plan("monthly")
        let account = try f.account("ada@example.com")
        let periodEnd = f.clock.now().addingTimeInterval(30 * day)
        let graceEnd = f.clock.now().addingTimeInterval(3 * day)
        let m = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: periodEnd, source: .admin, actor: f.admin)
        _ = try f.store.changeStatus(id: m.id, to: .pastDue, graceEnd: graceEnd, actor: .system, reason: "payment failed")
        let canceled = try f.store.cancelMembership(id: m.id, immediately: false, actor: f.admin)
        #expect(canceled.status == .canceled)
        #expect(canceled.accessEnd == graceEnd)
        #expect(canceled.grantsAccess(at: graceEnd.addingTimeInterval(-1)))
        #expect(!canceled.grantsAccess(at: graceEnd))
        #expect(try f.store.membership(id: m.id).effectiveStatus(at: f.clock.now().addingTimeInterval(10 * day)) == .expired)

        // Past due, then paid: the grace is over, and a later cancellation reads to the period end.
        let other = try f.account("grace@example.com")
        let n = try f.store.grantMembership(accountID: other.id, planID: PlanID(rawValue: "monthly"), periodEnd: periodEnd, source: .admin, actor: f.admin)
        _ = try f.store.changeStatus(id: n.id, to: .pastDue, graceEnd: graceEnd, actor: .system, reason: "payment failed")
        let paid = try f.store.changeStatus(id: n.id, to: .active, graceEnd: nil, actor: .system, reason: "paid")
        #expect(paid.gracePeriodEnd == nil)
        let later = try f.store.cancelMembership(id: n.id, immediately: false, actor: f.admin)
        #expect(later.accessEnd == periodEnd)
        #expect(later.grantsAccess(at: f.clock.now().addingTimeInterval(10 * day)))
    }

    @Test("refused changes write nothing", arguments: TestBackend.all, ["active-again", "unknown-plan", "unknown-account", "from-expired"])
    func refusals(backend: TestBackend, _ scenario: String) throws {
        let f = try StoreFixture(backend: backend)
        try f.plan("monthly")
        let account = try f.account("ada@example.com")
        let end = f.clock.now().addingTimeInterval(30 * day)
        let m = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: end, source: .admin, actor: f.admin)
        if scenario == "from-expired" { _ = try f.store.cancelMembership(id: m.id, immediately: true, actor: f.admin) }
        let before = try f.snapshot()
        #expect(throws: StoreError.self) {
            switch scenario {
            case "active-again":
                _ = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: end, source: .admin, actor: f.admin)
            case "unknown-plan":
                _ = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "nope"), periodEnd: end, source: .admin, actor: f.admin)
            case "unknown-account":
                _ = try f.store.grantMembership(accountID: .generate(), planID: PlanID(rawValue: "monthly"), periodEnd: end, source: .admin, actor: f.admin)
            default:
                _ = try f.store.changeStatus(id: m.id, to: .active, graceEnd: nil, actor: f.admin, reason: nil)
            }
        }
        #expect(try f.snapshot() == before)
    }

    @Test("cancel at period end keeps the membership active and marks it; not for an expired one", arguments: TestBackend.all)
    func scheduleCancellation(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.plan("monthly")
        let account = try f.account("ada@example.com")
        let m = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: f.clock.now().addingTimeInterval(day), source: .admin, actor: f.admin)
        let scheduled = try f.store.scheduleCancellation(id: m.id, actor: f.admin)
        #expect(scheduled.status == .active)
        #expect(scheduled.cancelAtPeriodEnd)
        #expect(try f.store.auditEntries().first?.action == "membership.schedule-cancel")
        _ = try f.store.cancelMembership(id: m.id, immediately: true, actor: f.admin)
        let before = try f.snapshot()
        #expect(throws: StoreError.invalidTransition(from: "expired", to: "cancel at period end")) { try f.store.scheduleCancellation(id: m.id, actor: f.admin) }
        #expect(try f.snapshot() == before)
    }

    @Test("granting a canceled plan again reactivates the same membership", arguments: TestBackend.all)
    func reactivate(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        try f.plan("monthly")
        let account = try f.account("ada@example.com")
        let m = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: f.clock.now().addingTimeInterval(day), source: .admin, actor: f.admin)
        _ = try f.store.cancelMembership(id: m.id, immediately: false, actor: f.admin)
        let again = try f.store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: f.clock.now().addingTimeInterval(30 * day), source: .admin, actor: f.admin)
        #expect(again.id == m.id)
        #expect(again.status == .active)
        #expect(try f.store.membershipHistory(id: m.id).map(\.to) == [.active, .canceled, .active])
        #expect(try f.store.memberships(accountID: account.id).count == 1)
    }
}
