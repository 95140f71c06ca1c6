import Foundation
import Synchronization
import Testing
import PaywallCore
import PaywallTestSupport
@testable import PaywallStore

@Suite("Billing events in the store")
struct BillingStoreTests {
    @Test("the same event taken by many threads at once is applied once", arguments: TestBackend.all)
    func concurrentDuplicates(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        try f.plan("news")
        _ = try f.store.mapBillingProduct(provider: .apple, externalID: "com.example.news", planID: PlanID(rawValue: "news"), actor: f.admin)
        _ = try f.store.linkBillingCustomer(provider: .apple, customer: "token-1", accountID: account.id, actor: f.admin)
        let change = BillingChange(
            provider: .apple, eventID: "uuid-1", type: "SUBSCRIBED", occurredAt: f.clock.now(), customer: "token-1",
            subscription: SubscriptionState(id: "1000", products: ["com.example.news"], status: .active, providerStatus: "SUBSCRIBED",
                                            periodEnd: f.clock.now().addingTimeInterval(86_400)))
        let outcomes = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let outcome = (try? f.store.applyBilling(change).outcome.rawValue) ?? "error"
            outcomes.withLock { $0.append(outcome) }
        }
        let counted = Dictionary(grouping: outcomes.withLock { $0 }, by: { $0 }).mapValues(\.count)
        #expect(counted == ["applied": 1, "duplicate": 7])
        #expect(try f.store.memberships(accountID: account.id).count == 1)
        #expect(try f.snapshot()["billing_events"] == 1)
    }

    @Test("an event stored pending keeps its change and is applied with the link; deleting the account keeps its events", arguments: TestBackend.all)
    func pendingThenLinked(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let account = try f.account("ada@example.com")
        try f.plan("news")
        _ = try f.store.mapBillingProduct(provider: .stripe, externalID: "price_news", planID: PlanID(rawValue: "news"), actor: f.admin)
        let change = BillingChange(
            provider: .stripe, eventID: "evt_1", type: "customer.subscription.created", occurredAt: f.clock.now(), customer: "cus_1",
            subscription: SubscriptionState(id: "sub_1", products: ["price_news"], status: .pastDue, providerStatus: "past_due",
                                            periodEnd: f.clock.now().addingTimeInterval(86_400), graceEnd: f.clock.now().addingTimeInterval(3_600)))
        #expect(try f.store.applyBilling(change).outcome == .pending)
        #expect(try f.store.billingEvents(unappliedOnly: true).map(\.eventID) == ["evt_1"])
        #expect(try f.store.linkBillingCustomer(provider: .stripe, customer: "cus_1", accountID: account.id, actor: f.admin).map(\.outcome) == [.applied])
        let membership = try #require(try f.store.memberships(accountID: account.id).first)
        #expect(membership.status == .pastDue && membership.gracePeriodEnd == f.clock.now().addingTimeInterval(3_600))
        // The same customer cannot be linked to another account.
        let other = try f.account("bob@example.com")
        #expect(throws: StoreError.billingCustomerLinked(customer: "cus_1", account: account.id.rawValue)) {
            try f.store.linkBillingCustomer(provider: .stripe, customer: "cus_1", accountID: other.id, actor: f.admin)
        }
    }
}

@Suite("Billing events a version cannot decode")
struct UndecodableBillingEventTests {
    @Test("retry says which stored events it cannot decode, leaves them, and applies the others")
    func said() throws {
        let f = try StoreFixture()
        let account = try f.account("ada@example.com")
        try f.plan("news")
        _ = try f.store.mapBillingProduct(provider: .stripe, externalID: "price_news", planID: PlanID(rawValue: "news"), actor: f.admin)
        func change(_ id: String, customer: String) -> BillingChange {
            BillingChange(
                provider: .stripe, eventID: id, type: "customer.subscription.created", occurredAt: f.clock.now(), customer: customer,
                subscription: SubscriptionState(id: "sub_\(id)", products: ["price_news"], status: .active, providerStatus: "active",
                                                periodEnd: f.clock.now().addingTimeInterval(86_400)))
        }
        #expect(try f.store.applyBilling(change("evt_1", customer: "cus_1")).outcome == .pending)
        #expect(try f.store.applyBilling(change("evt_2", customer: "cus_2")).outcome == .pending)
        // As a later version might have stored it.
        try f.store.pool.write { db in try db.execute(sql: "UPDATE billing_events SET change = '{\"future\":true}' WHERE event_id = 'evt_2'") }
        _ = try f.store.linkBillingCustomer(provider: .stripe, customer: "cus_2", accountID: account.id, actor: f.admin)
        _ = try f.store.linkBillingCustomer(provider: .stripe, customer: "cus_1", accountID: account.id, actor: f.admin)
        let results = try f.store.retryBillingEvents(actor: f.admin)
        let said = try #require(results.first { $0.eventID == "evt_2" })
        #expect(said.outcome == .failed && said.detail?.contains("cannot be read by this version") == true, "\(results)")
        #expect(try f.store.billingEvents(unappliedOnly: true, limit: 10).map(\.eventID) == ["evt_2"], "left as it is")
    }
}
