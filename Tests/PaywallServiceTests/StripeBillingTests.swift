import Foundation
import PaywallCore
import PaywallService
import PaywallTestSupport
import Testing

/// Stripe webhooks through the service: signed events built from Stripe's own object
/// shapes, applied once, in any order, checked with access decisions.
@Suite("Stripe billing")
struct StripeBillingTests {
    final class Shop: @unchecked Sendable {
        let f: ServiceFixture
        let account: AccountID
        var counter = 0

        init(configured: Bool = true) throws {
            f = try ServiceFixture { if configured { $0.stripeWebhookSecrets = ["whsec_retired_0123456789abc", StripeFixtures.secret] } }
            _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "Euronews SA", actor: f.admin)
            _ = try f.service.addPlan(id: "news", name: "News", period: "month", titles: ["euronews"], actor: f.admin)
            _ = try f.service.addPlan(id: "premium", name: "Premium", period: "month", titles: nil, actor: f.admin)
            account = try f.service.signUp(email: "reader@example.com", password: "correct horse battery", displayName: nil, actor: f.admin).id
            _ = try f.service.mapBillingProduct(provider: .stripe, externalID: "price_news", plan: "news", actor: f.admin)
            _ = try f.service.mapBillingProduct(provider: .stripe, externalID: "price_premium", plan: "premium", actor: f.admin)
        }

        var now: Date { f.service.now }

        func body(_ type: String, _ object: [String: Any], id: String? = nil, created: Date? = nil) -> [UInt8] {
            counter += 1
            return StripeFixtures.event(id: id ?? "evt_\(counter)", type: type, created: created ?? now, object: object)
        }

        @discardableResult
        func post(_ body: [UInt8]) throws -> BillingResult {
            try f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: now))
        }

        @discardableResult
        func post(_ type: String, _ object: [String: Any], id: String? = nil, created: Date? = nil) throws -> BillingResult {
            try post(body(type, object, id: id, created: created))
        }

        func checkout(_ customer: String = "cus_1") throws -> BillingResult {
            try post("checkout.session.completed", StripeFixtures.checkout(customer: customer, account: account.rawValue, subscription: "sub_1"))
        }

        func subscription(_ status: String, end: Date, cancel: Bool = false, price: String = "price_news", legacy: Bool = false) -> [String: Any] {
            StripeFixtures.subscription(id: "sub_1", customer: "cus_1", status: status, price: price, periodEnd: end, cancelAtPeriodEnd: cancel, legacy: legacy)
        }

        /// A subscription's event without `livemode`, and a server set to one mode
        /// (`PAYWALL_STRIPE_MODE`), which cannot read it without.
        func eventWithoutLivemode(id: String) throws -> (body: [UInt8], strict: PaywallService) {
            let end = now.addingTimeInterval(30 * 86_400)
            var event = try #require(try JSONSerialization.jsonObject(with: Data(body("customer.subscription.created", subscription("active", end: end), id: id))) as? [String: Any])
            event.removeValue(forKey: "livemode")
            return (Array(try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys])), try f.another { $0.stripeLivemode = false })
        }

        func invoice(paid: Bool, end: Date) -> [String: Any] {
            StripeFixtures.invoice(id: "in_\(counter)", customer: "cus_1", subscription: "sub_1", price: "price_news", periodEnd: end, paid: paid)
        }

        /// The deciding rule for an embargoed article (members only: no meter).
        static let embargo = StripeBillingTests.embargo

        func access() async throws -> String {
            let request = AccessRequest(title: "euronews", article: { var a = ArticleInput(id: "a1"); a.tags = ["embargo"]; return a }())
            let answer = try await f.service.checkAccess(request, reader: .account(account))
            // A reader without a membership reads the teaser whichever rule decided it.
            guard answer.decision.access.description == "full" else { return Self.embargo }
            return answer.decision.decidingRules.first ?? "none"
        }

        func memberships() throws -> [Membership] { try f.service.membershipRecords(account: account.rawValue).1.map(\.membership) }

        func history(_ id: Int64) throws -> [MembershipStatusChange] {
            try f.service.membershipRecords(account: account.rawValue).1.first { $0.membership.id == id }?.history ?? []
        }
    }

    static let member = "members read the titles in their plan"
    static let grace = "failed payment keeps access through the grace period"
    static let embargo = "no full access"

    @Test("a verified event this server cannot read is kept, failed, with why; a delivery again counts an attempt; billing retry reads it once the server can, and applies it")
    func unreadEventKept() async throws {
        let shop = try Shop()
        #expect(try shop.checkout().outcome == .applied)
        let (body, strict) = try shop.eventWithoutLivemode(id: "evt_unread")
        let kept = try strict.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: shop.now))
        #expect(kept.outcome == .failed && kept.detail?.contains("could not be read") == true && kept.detail?.contains("livemode") == true, "\(kept)")
        #expect(try strict.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: shop.now)).outcome == .failed)
        let listed = try #require(try shop.f.service.unappliedBillingEvents().first { $0.eventID == "evt_unread" })
        #expect(listed.outcome == .failed && listed.attempts == 2 && listed.type == "customer.subscription.created", "\(listed)")
        #expect(try shop.memberships().isEmpty)
        // Still unreadable where it was received: kept, said again.
        let again = try strict.retryBillingEvents(actor: shop.f.admin)
        #expect(again.contains { $0.eventID == "evt_unread" && $0.outcome == .failed && $0.detail?.contains("livemode") == true }, "\(again)")
        // A server that can read it (the setting changed): read, then applied.
        let retried = try shop.f.service.retryBillingEvents(actor: shop.f.admin)
        #expect(retried.contains { $0.eventID == "evt_unread" && $0.outcome == .applied }, "\(retried)")
        #expect(try shop.memberships().first?.status == .active)
        #expect(try await shop.access() == Self.member)
        #expect(try shop.f.service.unappliedBillingEvents().isEmpty)
        #expect(try shop.post(body).outcome == .duplicate)
        // Not even an id and a type: refused, nothing written.
        let before = try shop.f.snapshot()
        let anonymous = Array(#"{"object":"event","data":{"object":{}}}"#.utf8)
        #expect(throws: ServiceError.self) { try shop.post(anonymous) }
        #expect(try shop.f.snapshot() == before)
    }

    @Test("an event kept unread and delivered again once the server reads it is applied then")
    func unreadEventRedelivered() throws {
        let shop = try Shop()
        #expect(try shop.checkout().outcome == .applied)
        let (body, strict) = try shop.eventWithoutLivemode(id: "evt_late")
        #expect(try strict.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: shop.now)).outcome == .failed)
        #expect(try shop.post(body).outcome == .applied)
        #expect(try shop.memberships().first?.status == .active)
        #expect(try shop.f.service.retryBillingEvents(actor: shop.f.admin).allSatisfy { $0.eventID != "evt_late" })
    }

    @Test("a subscription's whole life: trial, active, payment fails, grace, recovered, canceled at period end, expired")
    func wholeLife() async throws {
        let shop = try Shop()
        #expect(try await shop.access() == Self.embargo)
        #expect(try shop.checkout().outcome == .applied)
        #expect(try shop.post("customer.subscription.created", shop.subscription("trialing", end: shop.now.addingTimeInterval(14 * 86_400))).outcome == .applied)
        var membership = try #require(try shop.memberships().first)
        #expect(membership.status == .active && membership.source == .stripe && membership.planID == PlanID(rawValue: "news"))
        #expect(try await shop.access() == Self.member)

        shop.f.clock.advance(by: 14 * 86_400)
        let firstEnd = shop.now.addingTimeInterval(30 * 86_400)
        try shop.post("customer.subscription.updated", shop.subscription("active", end: firstEnd))
        try shop.post("invoice.paid", shop.invoice(paid: true, end: firstEnd))
        #expect(try shop.memberships().first?.currentPeriodEnd == firstEnd)
        #expect(try await shop.access() == Self.member)

        // The renewal fails: past due, readable through the grace period (7 days).
        shop.f.clock.advance(by: 30 * 86_400)
        let secondEnd = shop.now.addingTimeInterval(30 * 86_400)
        try shop.post("invoice.payment_failed", shop.invoice(paid: false, end: secondEnd))
        try shop.post("customer.subscription.updated", shop.subscription("past_due", end: secondEnd))
        membership = try #require(try shop.memberships().first)
        #expect(membership.status == .pastDue)
        #expect(membership.gracePeriodEnd == shop.now.addingTimeInterval(7 * 86_400))
        #expect(try await shop.access() == Self.grace)

        // A retry that fails again does not extend the grace.
        shop.f.clock.advance(by: 2 * 86_400)
        try shop.post("invoice.payment_failed", shop.invoice(paid: false, end: secondEnd))
        #expect(try shop.memberships().first?.gracePeriodEnd == membership.gracePeriodEnd)

        // Recovered.
        shop.f.clock.advance(by: 86_400)
        try shop.post("invoice.paid", shop.invoice(paid: true, end: secondEnd))
        try shop.post("customer.subscription.updated", shop.subscription("active", end: secondEnd))
        #expect(try shop.memberships().first?.status == .active)
        #expect(try await shop.access() == Self.member)

        // Canceled at the period end: still active, marked not to renew.
        shop.f.clock.advance(by: 86_400)
        try shop.post("customer.subscription.updated", shop.subscription("active", end: secondEnd, cancel: true))
        membership = try #require(try shop.memberships().first)
        #expect(membership.status == .active && membership.cancelAtPeriodEnd)
        #expect(try await shop.access() == Self.member)

        // The period ends: Stripe deletes the subscription.
        shop.f.clock.advance(by: secondEnd.timeIntervalSince(shop.now) + 1)
        try shop.post("customer.subscription.deleted", shop.subscription("canceled", end: secondEnd, cancel: true))
        #expect(try shop.memberships().first?.status == .expired)
        #expect(try await shop.access() == Self.embargo)

        // One membership all along; its history, by Stripe with the event and subscription ids.
        #expect(try shop.memberships().count == 1)
        let history = try shop.history(membership.id)
        #expect(history.map(\.to) == [.active, .pastDue, .active, .expired])
        #expect(history.allSatisfy { $0.actor == "billing:stripe" && ($0.reason ?? "").contains("sub_1") && ($0.reason ?? "").contains("evt_") })
        let audit = try shop.f.service.auditEntries(target: "account:\(shop.account)", limit: 100)
        #expect(audit.contains { $0.action == "membership.status" && $0.actor.rawValue == "billing:stripe" && $0.details.contains("\"customer\":\"cus_1\"") })
        #expect(audit.contains { $0.action == "billing.link" })
        // Later events of the ended subscription change nothing.
        #expect(try shop.post("customer.subscription.updated", shop.subscription("active", end: secondEnd.addingTimeInterval(86_400))).outcome == .stale)
        #expect(try shop.memberships().first?.status == .expired)
    }

    @Test("each event id is applied once: a redelivery is a duplicate and writes nothing")
    func duplicates() throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let body = shop.body("customer.subscription.created", shop.subscription("active", end: shop.now.addingTimeInterval(30 * 86_400)))
        #expect(try shop.post(body).outcome == .applied)
        let before = try shop.f.snapshot()
        shop.f.clock.advance(by: 60)
        #expect(try shop.post(body).outcome == .duplicate)
        #expect(try shop.post(body).outcome == .duplicate)
        #expect(try shop.f.snapshot() == before)
    }

    @Test("reversed order: an older snapshot never overwrites a newer one")
    func reversedOrder() throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        let older = shop.body("customer.subscription.created", shop.subscription("active", end: end), created: shop.now)
        let newer = shop.body("customer.subscription.updated", shop.subscription("past_due", end: end), created: shop.now.addingTimeInterval(60))
        shop.f.clock.advance(by: 120)
        #expect(try shop.post(newer).outcome == .applied)
        let stale = try shop.post(older)
        #expect(stale.outcome == .stale)
        #expect(try shop.memberships().map(\.status) == [.pastDue])
        // A stale event is recorded (a redelivery is a duplicate), not applied.
        #expect(try shop.post(older).outcome == .duplicate)
    }

    @Test("an event before its customer is linked is kept, then applied when Checkout links it")
    func beforeTheLink() async throws {
        let shop = try Shop()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        let early = try shop.post("customer.subscription.created", shop.subscription("active", end: end))
        #expect(early.outcome == .pending)
        shop.f.clock.advance(by: 1)
        try shop.post("invoice.paid", shop.invoice(paid: true, end: end))
        #expect(try shop.memberships().isEmpty)
        #expect(try shop.f.service.unappliedBillingEvents().count == 2)
        #expect(try await shop.access() == Self.embargo)
        shop.f.clock.advance(by: 1)
        #expect(try shop.checkout().outcome == .applied)
        #expect(try shop.memberships().map(\.status) == [.active])
        #expect(try shop.f.service.unappliedBillingEvents().isEmpty)
        #expect(try await shop.access() == Self.member)
        let overview = try shop.f.service.billingOverview(account: "reader@example.com")
        #expect(overview.links.map(\.customer) == ["cus_1"])
        #expect(overview.subscriptions.map(\.id) == ["sub_1"])
        #expect(overview.events.count == 3 && overview.events.allSatisfy { $0.outcome == .applied })
    }

    @Test("a checkout's events in one second, in any order: the paid state stands; the end still ends it")
    func sameSecond() async throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        let second = shop.now
        // `updated` (active) arrives before `created` (incomplete), both stamped the same second.
        try shop.post("customer.subscription.updated", shop.subscription("active", end: end), created: second)
        let created = try shop.post("customer.subscription.created", shop.subscription("incomplete", end: end), created: second)
        #expect(created.outcome == .stale)
        try shop.post("invoice.paid", shop.invoice(paid: true, end: end), created: second)
        #expect(try shop.memberships().first?.status == .active)
        #expect(try await shop.access() == Self.member)
        // A deletion in that same second is the end, whatever the order.
        try shop.post("customer.subscription.deleted", shop.subscription("canceled", end: end), created: second)
        #expect(try shop.memberships().allSatisfy { $0.status == .expired })
    }

    @Test("a deletion delivered after a later-stamped event still ends the subscription (nothing follows a deletion)")
    func lateDeletion() async throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        try shop.post("customer.subscription.created", shop.subscription("active", end: end))
        shop.f.clock.advance(by: 60)
        // Cancelled at once with a final invoice: the deletion at T, the invoice paid at T+2;
        // the invoice is delivered first, the deletion (a retry) later.
        let deletedAt = shop.now
        try shop.post("invoice.paid", shop.invoice(paid: true, end: end), created: deletedAt.addingTimeInterval(2))
        #expect(try shop.memberships().first?.status == .active)
        let deletion = try shop.post("customer.subscription.deleted", shop.subscription("canceled", end: end), created: deletedAt)
        #expect(deletion.outcome == .applied)
        #expect(try shop.memberships().allSatisfy { $0.status == .expired })
        #expect(try await shop.access() != Self.member)
        // An older snapshot still is set aside (only the end jumps the queue).
        let old = try shop.post("customer.subscription.updated", shop.subscription("active", end: end), created: deletedAt.addingTimeInterval(-30))
        #expect(old.outcome == .stale)
        #expect(try shop.memberships().allSatisfy { $0.status == .expired })
    }

    @Test("a plan bought twice: ending one subscription keeps the access the other pays for")
    func twoSubscriptionsOnePlan() async throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        try shop.post("customer.subscription.created", shop.subscription("active", end: end))
        shop.f.clock.advance(by: 1)
        let second = StripeFixtures.subscription(id: "sub_2", customer: "cus_1", status: "active", price: "price_news",
                                                 periodEnd: end.addingTimeInterval(86_400), cancelAtPeriodEnd: false)
        try shop.post("customer.subscription.created", second)
        #expect(try shop.memberships().filter { $0.status != .expired }.count == 1, "the two share one membership")
        shop.f.clock.advance(by: 1)
        // The second is cancelled at once: the first still pays for the plan.
        var ended = second
        ended["status"] = "canceled"
        try shop.post("customer.subscription.deleted", ended)
        #expect(try shop.memberships().first { $0.status != .expired }?.status == .active)
        #expect(try await shop.access() == Self.member)
        shop.f.clock.advance(by: 1)
        // The first ends too: now the access ends.
        try shop.post("customer.subscription.deleted", shop.subscription("canceled", end: end))
        #expect(try shop.memberships().allSatisfy { $0.status == .expired })
        #expect(try await shop.access() != Self.member)
    }

    @Test("the failed first invoice of an incomplete subscription opens nothing")
    func incompleteFirstInvoiceFails() async throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        try shop.post("customer.subscription.created", shop.subscription("incomplete", end: end))
        shop.f.clock.advance(by: 1)
        let failed = try shop.post("invoice.payment_failed", StripeFixtures.invoice(
            id: "in_first", customer: "cus_1", subscription: "sub_1", price: "price_news", periodEnd: end, paid: false))
        #expect(failed.outcome == .stale)
        #expect(try shop.memberships().allSatisfy { $0.status == .expired })
        #expect(try await shop.access() != Self.member)
    }

    @Test("a failed invoice before its subscription is known grants nothing; the subscription decides")
    func invoiceFirst() throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        let failed = try shop.post("invoice.payment_failed", StripeFixtures.invoice(
            id: "in_x", customer: "cus_1", subscription: "sub_1", price: "price_news", periodEnd: end, paid: false))
        // A failed payment of a subscription never seen paid opens nothing (an unpaid first
        // invoice must not give the grace period's access).
        #expect(failed.outcome == .stale)
        #expect(try shop.memberships().isEmpty)
        shop.f.clock.advance(by: 1)
        try shop.post("customer.subscription.created", shop.subscription("active", end: end))
        // The subscription's snapshot is newer than the waiting invoice: that one is stale now.
        #expect(try shop.memberships().first?.status == .active)
        #expect(try shop.f.service.billingOverview(account: "reader@example.com").events.map(\.outcome) == [.applied, .stale, .applied])
        #expect(try shop.f.service.unappliedBillingEvents().isEmpty)
    }

    @Test("period end from the subscription itself (older API versions)")
    func legacyPeriodEnd() throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(31 * 86_400)
        try shop.post("customer.subscription.created", shop.subscription("active", end: end, legacy: true))
        #expect(try shop.memberships().first?.currentPeriodEnd == end)
    }

    @Test("Stripe's statuses: unpaid, paused, incomplete and incomplete_expired give no access; canceled ends it")
    func statuses() throws {
        for (status, expected) in [("unpaid", MembershipStatus.expired), ("paused", .expired), ("incomplete_expired", .expired), ("canceled", .expired)] {
            let shop = try Shop()
            _ = try shop.checkout()
            let end = shop.now.addingTimeInterval(30 * 86_400)
            try shop.post("customer.subscription.created", shop.subscription("active", end: end))
            shop.f.clock.advance(by: 1)
            try shop.post("customer.subscription.updated", shop.subscription(status, end: end))
            #expect(try shop.memberships().first?.status == expected, "\(status)")
        }
        // An incomplete subscription (first payment not made) makes no membership.
        let shop = try Shop()
        _ = try shop.checkout()
        #expect(try shop.post("customer.subscription.created", shop.subscription("incomplete", end: shop.now.addingTimeInterval(86_400))).outcome == .applied)
        #expect(try shop.memberships().isEmpty)
        // Paused, then resumed: a new membership.
        shop.f.clock.advance(by: 1)
        try shop.post("customer.subscription.updated", shop.subscription("active", end: shop.now.addingTimeInterval(86_400)))
        #expect(try shop.memberships().map(\.status) == [.active])
    }

    @Test("a new price of another plan ends the old plan's membership and starts the new one")
    func planChange() throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        try shop.post("customer.subscription.created", shop.subscription("active", end: end))
        shop.f.clock.advance(by: 1)
        try shop.post("customer.subscription.updated", shop.subscription("active", end: end, price: "price_premium"))
        let memberships = try shop.memberships()
        #expect(memberships.map(\.planID.rawValue) == ["premium", "news"])
        #expect(memberships.map(\.status) == [.active, .expired])
        // The renewal invoice drafted on the old price before the upgrade, paid after it: what
        // was billed, not what the subscription is now. The reader stays on premium.
        shop.f.clock.advance(by: 60)
        let paid = try shop.post("invoice.paid", shop.invoice(paid: true, end: end))
        #expect(paid.outcome == .applied)
        #expect(try shop.memberships().map(\.planID.rawValue) == ["premium", "news"])
        #expect(try shop.memberships().map(\.status) == [.active, .expired])
        // A downgrade scheduled for the renewal: the next period's invoice, on the news price,
        // arrives before the subscription's own update (delivered late, then stale). The
        // invoice's newer period moves the plan.
        shop.f.clock.advance(by: 60)
        let next = end.addingTimeInterval(30 * 86_400)
        #expect(try shop.post("invoice.paid", shop.invoice(paid: true, end: next)).outcome == .applied)
        #expect(try shop.memberships().first.map { [$0.planID.rawValue, $0.status.rawValue] } == ["news", "active"])
        #expect(try shop.memberships().first?.currentPeriodEnd == next)
    }

    @Test("a price mapped to no plan fails with the reason, and applies once mapped and retried")
    func unmappedPrice() throws {
        let shop = try Shop()
        _ = try shop.checkout()
        let result = try shop.post("customer.subscription.created", shop.subscription("active", end: shop.now.addingTimeInterval(86_400), price: "price_unknown"))
        #expect(result.outcome == .failed)
        #expect(result.detail == "no plan is mapped to stripe price 'price_unknown'")
        let unapplied = try shop.f.service.unappliedBillingEvents()
        #expect(unapplied.map(\.detail) == [result.detail])
        _ = try shop.f.service.mapBillingProduct(provider: .stripe, externalID: "price_unknown", plan: "premium", actor: shop.f.admin)
        #expect(try shop.f.service.retryBillingEvents().map(\.outcome) == [.applied])
        #expect(try shop.memberships().map(\.planID.rawValue) == ["premium"])
    }

    @Test("a retry that applies a waiting event on the way does not apply it again: each event tried once, its outcome said as it stands")
    func retryDrainsOnce() throws {
        let shop = try Shop()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        // The subscription names its account but an unmapped price: failed. Its invoice,
        // later and naming no account, waits for the subscription.
        let created = try shop.post("customer.subscription.created", StripeFixtures.subscription(
            id: "sub_1", customer: "cus_1", status: "active", price: "price_unknown", periodEnd: end, account: shop.account.rawValue))
        shop.f.clock.advance(by: 1)
        let paid = try shop.post("invoice.paid", shop.invoice(paid: true, end: end))
        #expect(created.outcome == .failed && paid.outcome == .pending)
        _ = try shop.f.service.mapBillingProduct(provider: .stripe, externalID: "price_unknown", plan: "premium", actor: shop.f.admin)
        // The subscription's retry applies the invoice waiting for it; the loop then finds it settled.
        let retried = try shop.f.service.retryBillingEvents(actor: shop.f.admin)
        #expect(retried.map(\.eventID) == [created.eventID, paid.eventID])
        #expect(retried.map(\.outcome) == [.applied, .applied])
        let events = try shop.f.service.billingOverview(account: shop.account.rawValue).events
        let attempts = Dictionary(uniqueKeysWithValues: events.map { ($0.eventID, $0.attempts) })
        #expect(attempts[paid.eventID] == attempts[created.eventID], "the invoice was applied twice: \(attempts)")
        #expect(try shop.memberships().map(\.planID.rawValue) == ["premium"])
    }

    @Test("a second account's Checkout reusing the first's customer: the subscription naming its account goes to it, in any order, not to the customer's account")
    func customerSharedByTwoAccounts() async throws {
        let shop = try Shop()
        #expect(try shop.checkout().outcome == .applied)  // cus_1 is the first account's
        let second = try await shop.f.service.signUp(email: "partner@example.com", password: "correct horse battery", displayName: nil, actor: shop.f.admin).id
        let end = shop.now.addingTimeInterval(30 * 86_400)
        func subscription(_ status: String) -> [String: Any] {
            StripeFixtures.subscription(id: "sub_2", customer: "cus_1", status: status, price: "price_news", periodEnd: end, account: second.rawValue)
        }
        // Delivered before the session: already the second account's.
        #expect(try shop.post("customer.subscription.created", subscription("incomplete")).accountID == second)
        shop.f.clock.advance(by: 1)
        let session = try shop.post("checkout.session.completed", StripeFixtures.checkout(customer: "cus_1", account: second.rawValue, subscription: "sub_2"))
        #expect(session.outcome == .applied && session.accountID == second, "the session's subscription is the second account's: nothing failed")
        #expect((session.detail ?? "").contains("stays linked to account \(shop.account)"), "the customer stays the first account's: \(session.detail ?? "")")
        let paid = try shop.post("invoice.paid", StripeFixtures.invoice(id: "in_2", customer: "cus_1", subscription: "sub_2", price: "price_news", periodEnd: end, paid: true, account: second.rawValue))
        #expect(paid.outcome == .applied && paid.accountID == second)
        try shop.post("customer.subscription.updated", subscription("active"))
        #expect(try shop.memberships().isEmpty, "the first account gets nothing it did not pay for")
        let theirs = try shop.f.service.membershipRecords(account: "partner@example.com").1.map(\.membership)
        #expect(theirs.map(\.status) == [.active] && theirs.first?.source == .stripe)
        // The customer's link is unchanged, and a subscription without metadata still follows it.
        #expect(try shop.f.service.billingOverview(account: "reader@example.com").links.map(\.customer) == ["cus_1"])
        #expect(try shop.post("customer.subscription.created", shop.subscription("active", end: end)).accountID == shop.account)
    }

    @Test("a second account's Checkout before its subscription: it waits for the subscription, then is applied when that names the account, failed when it went to the customer's")
    func sessionWaitsForItsSubscription() async throws {
        let shop = try Shop()
        #expect(try shop.checkout().outcome == .applied)  // cus_1 is the first account's
        let second = try await shop.f.service.signUp(email: "partner@example.com", password: "correct horse battery", displayName: nil, actor: shop.f.admin).id
        let end = shop.now.addingTimeInterval(30 * 86_400)
        // The session first: which account its subscription is for is not known yet.
        let session = try shop.post("checkout.session.completed", StripeFixtures.checkout(customer: "cus_1", account: second.rawValue, subscription: "sub_2"))
        #expect(session.outcome == .pending && (session.detail ?? "").contains("sub_2"), "\(session.outcome) \(session.detail ?? "")")
        #expect(try shop.f.service.unappliedBillingEvents().map(\.eventID) == [session.eventID])
        // The waiting session is no event of the subscription: linking it by hand is refused
        // (nothing of it is waiting), with nothing written.
        let audited = try shop.f.snapshot()["audit_log"]
        do {
            _ = try shop.f.service.linkBillingSubscription("sub_2", provider: .stripe, account: "partner@example.com", actor: shop.f.admin)
            Issue.record("linked a subscription none of whose events waited")
        } catch {
            #expect(error.code == "no_events_waiting", "\(error)")
        }
        #expect(try shop.f.snapshot()["audit_log"] == audited)
        shop.f.clock.advance(by: 1)
        let created = try shop.post("customer.subscription.created", StripeFixtures.subscription(
            id: "sub_2", customer: "cus_1", status: "active", price: "price_news", periodEnd: end, account: second.rawValue))
        #expect(created.outcome == .applied && created.accountID == second)
        #expect(try shop.f.service.unappliedBillingEvents().isEmpty, "the session was applied once its subscription was stored on its account")
        #expect(try shop.f.service.billingOverview(account: "reader@example.com").links.map(\.customer) == ["cus_1"], "the link is unchanged")

        // A third account's session whose subscription names no account: it goes to the
        // customer's account, and the session fails saying where it went and how to avoid it.
        let third = try await shop.f.service.signUp(email: "third@example.com", password: "correct horse battery", displayName: nil, actor: shop.f.admin).id
        let other = try shop.post("checkout.session.completed", StripeFixtures.checkout(customer: "cus_1", account: third.rawValue, subscription: "sub_3"))
        #expect(other.outcome == .pending)
        shop.f.clock.advance(by: 1)
        let plain = try shop.post("customer.subscription.created", StripeFixtures.subscription(id: "sub_3", customer: "cus_1", status: "active", price: "price_news", periodEnd: end))
        #expect(plain.accountID == shop.account)
        let failed = try shop.f.service.unappliedBillingEvents()
        #expect(failed.map(\.eventID) == [other.eventID] && failed.map(\.outcome) == [.failed])
        #expect((failed.first?.detail ?? "").contains("went to account \(shop.account)") && (failed.first?.detail ?? "").contains("paywall_account"), "\(failed.first?.detail ?? "")")
        // A session of payment mode (no subscription) for another account fails at once, as before.
        let noSubscription = try shop.post("checkout.session.completed", StripeFixtures.checkout(customer: "cus_1", account: third.rawValue, subscription: nil))
        #expect(noSubscription.outcome == .failed)
    }

    @Test("an event that will never apply is dismissed with its reason, audited: no longer unapplied, retried or taken again; settled or unknown events refused with nothing written")
    func dismissEvent() async throws {
        let shop = try Shop()
        let applied = try shop.checkout()  // cus_1 is the first account's
        let second = try await shop.f.service.signUp(email: "partner@example.com", password: "correct horse battery", displayName: nil, actor: shop.f.admin).id
        // A session whose subscription never comes: it would wait for ever.
        let body = StripeFixtures.checkout(customer: "cus_1", account: second.rawValue, subscription: "sub_never")
        let waiting = try shop.post("checkout.session.completed", body)
        #expect(waiting.outcome == .pending)
        let before = try shop.f.snapshot()
        for (event, reason, code) in [
            (applied.eventID, "not needed", "billing_event_settled"), ("evt_nope", "typo", "billing_event_not_found"), (waiting.eventID, "  ", "invalid_name"),
        ] {
            do {
                _ = try shop.f.service.dismissBillingEvent(event, provider: .stripe, reason: reason, actor: shop.f.admin)
                Issue.record("dismissed \(event)")
            } catch {
                #expect(error.code == code, "\(event): \(error)")
            }
        }
        #expect(try shop.f.snapshot() == before, "refusals write nothing")
        let record = try shop.f.service.dismissBillingEvent(waiting.eventID, provider: .stripe, reason: "the customer abandoned the subscription", actor: shop.f.admin)
        #expect(record.outcome == .ignored && (record.detail ?? "").contains("abandoned") && (record.detail ?? "").contains("was pending"), "\(record.detail ?? "")")
        #expect(try shop.f.service.unappliedBillingEvents().isEmpty)
        #expect(try shop.f.service.auditEntries(limit: 1).first?.action == "billing.dismiss")
        #expect(try shop.f.service.retryBillingEvents(actor: shop.f.admin).isEmpty)
        let retry = try #require(try shop.f.service.auditEntries(limit: 1).first)
        #expect(retry.action == "billing.retry" && retry.actor == shop.f.admin && retry.details.contains(#""events":"0""#), "\(retry.details)")
        // Delivered again (Stripe retries): a duplicate, still dismissed.
        shop.f.clock.advance(by: 1)
        #expect(try shop.post("checkout.session.completed", body, id: waiting.eventID).outcome == .duplicate)
        do {
            _ = try shop.f.service.dismissBillingEvent(waiting.eventID, provider: .stripe, reason: "again", actor: shop.f.admin)
            Issue.record("dismissed twice")
        } catch { #expect(error.code == "billing_event_settled") }
    }

    @Test("a stored subscription stays its account's when its customer is later linked to another; its events waiting for the customer apply once it is stored")
    func storedSubscriptionWinsOverLaterLink() async throws {
        let shop = try Shop()
        let second = try await shop.f.service.signUp(email: "partner@example.com", password: "correct horse battery", displayName: nil, actor: shop.f.admin).id
        let end = shop.now.addingTimeInterval(30 * 86_400)
        // An invoice first, naming no account, its customer unlinked: it waits for the customer.
        let early = try shop.post("invoice.paid", StripeFixtures.invoice(id: "in_e", customer: "cus_9", subscription: "sub_9", price: "price_news", periodEnd: end, paid: true))
        #expect(early.outcome == .pending)
        // The subscription naming the second account: stored on it, and the waiting invoice
        // applied after it (it waited for a link that never comes).
        shop.f.clock.advance(by: 1)
        let created = try shop.post("customer.subscription.created", StripeFixtures.subscription(
            id: "sub_9", customer: "cus_9", status: "active", price: "price_news", periodEnd: end, account: second.rawValue))
        #expect(created.outcome == .applied && created.accountID == second)
        #expect(try shop.f.service.unappliedBillingEvents().isEmpty, "the invoice waiting for the customer was applied")
        // The customer is then linked to the first account (its own Checkout): the stored
        // subscription's later events, naming no account, still go to the second.
        #expect(try shop.checkout("cus_9").outcome == .applied)
        shop.f.clock.advance(by: 30 * 86_400)
        let renewal = try shop.post("invoice.paid", StripeFixtures.invoice(
            id: "in_r", customer: "cus_9", subscription: "sub_9", price: "price_news", periodEnd: end.addingTimeInterval(30 * 86_400), paid: true))
        #expect(renewal.outcome == .applied && renewal.accountID == second, "\(renewal.outcome) \(renewal.detail ?? "")")
        #expect(try shop.memberships().isEmpty)
        let theirs = try shop.f.service.membershipRecords(account: "partner@example.com").1.map(\.membership)
        #expect(theirs.first?.currentPeriodEnd == end.addingTimeInterval(30 * 86_400))
    }

    @Test("a subscription linked by an admin whose events then fail: linking again says to retry them, and a retry applies them on the linked account")
    func linkedThenFailed() throws {
        let shop = try Shop()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        let waiting = try shop.post("customer.subscription.created", StripeFixtures.subscription(
            id: "sub_u", customer: "cus_u", status: "active", price: "price_unmapped", periodEnd: end))
        #expect(waiting.outcome == .pending)
        let linked = try shop.f.service.linkBillingSubscription("sub_u", provider: .stripe, account: "reader@example.com", actor: shop.f.admin)
        #expect(linked.map(\.outcome) == [.failed])
        do {
            _ = try shop.f.service.linkBillingSubscription("sub_u", provider: .stripe, account: "reader@example.com", actor: shop.f.admin)
            Issue.record("linked twice")
        } catch {
            #expect(error.code == "no_events_waiting")
            #expect(error.description.contains("1 of its events failed") && error.description.contains("paywall billing retry"), "\(error.description)")
        }
        _ = try shop.f.service.mapBillingProduct(provider: .stripe, externalID: "price_unmapped", plan: "news", actor: shop.f.admin)
        #expect(try shop.f.service.retryBillingEvents().map(\.outcome) == [.applied])
        #expect(try shop.memberships().map(\.status) == [.active])
    }

    @Test("a subscription whose metadata names no account of ours fails with the reason and writes no membership; an event naming another account than its subscription's fails")
    func metadataNamingWrongAccount() throws {
        let shop = try Shop()
        #expect(try shop.checkout().outcome == .applied)
        let end = shop.now.addingTimeInterval(30 * 86_400)
        let stranger = try shop.post("customer.subscription.created", StripeFixtures.subscription(
            id: "sub_3", customer: "cus_1", status: "active", price: "price_news", periodEnd: end, account: "00000000-0000-0000-0000-000000000000\n"))
        #expect(stranger.outcome == .failed)
        #expect((stranger.detail ?? "").contains("no account '00000000-0000-0000-0000-000000000000\\n'"), "named, escaped: \(stranger.detail ?? "")")
        #expect(try shop.memberships().isEmpty)
        // sub_1 is the first account's; an invoice naming the second account moves nothing.
        try shop.post("customer.subscription.created", shop.subscription("active", end: end))
        let second = try shop.f.service.signUp(email: "partner@example.com", password: "correct horse battery", displayName: nil, actor: shop.f.admin).id
        shop.f.clock.advance(by: 1)
        let moved = try shop.post("invoice.paid", StripeFixtures.invoice(id: "in_9", customer: "cus_1", subscription: "sub_1", price: "price_news", periodEnd: end.addingTimeInterval(86_400), paid: true, account: second.rawValue))
        #expect(moved.outcome == .failed && (moved.detail ?? "").contains("belongs to account"))
        #expect(try shop.memberships().first?.currentPeriodEnd == end)
        #expect(try shop.f.service.membershipRecords(account: "partner@example.com").1.isEmpty)
    }

    @Test("refusals write nothing: bad signature, old timestamp, not configured, malformed event, unknown account")
    func refusals() throws {
        let shop = try Shop()
        let body = shop.body("checkout.session.completed", StripeFixtures.checkout(customer: "cus_1", account: shop.account.rawValue, subscription: nil))
        let before = try shop.f.snapshot()
        let t = Date()
        func code(_ run: () throws -> Void) -> String? {
            do { try run(); return nil } catch let error as ServiceError { return error.code } catch { return "?" }
        }
        #expect(code { try shop.f.service.receiveStripeEvent(body: body, signature: nil) } == "invalid_signature")
        #expect(code { try shop.f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: shop.now, secret: "whsec_wrong_0123456789")) } == "invalid_signature")
        #expect(code { try shop.f.service.receiveStripeEvent(body: body + [0x0A], signature: StripeFixtures.signature(body, at: shop.now)) } == "invalid_signature")
        #expect(code { try shop.f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: shop.now.addingTimeInterval(-600))) } == "invalid_signature")
        let garbage = Array("{\"id\": 1}".utf8)
        #expect(code { try shop.f.service.receiveStripeEvent(body: garbage, signature: StripeFixtures.signature(garbage, at: shop.now)) } == "invalid_event")
        #expect(try shop.f.snapshot() == before)
        _ = t
        // The public message says nothing of which check failed.
        do {
            _ = try shop.f.service.receiveStripeEvent(body: body, signature: nil)
        } catch {
            #expect(error.publicMessage == "the event's signature could not be verified")
        }

        let bare = try Shop(configured: false)
        let bareBefore = try bare.f.snapshot()
        #expect(code { try bare.f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: bare.now)) } == "billing_not_configured")
        #expect(try bare.f.snapshot() == bareBefore)

        // A session naming no account of ours is recorded as failed, with the reason.
        let stranger = try shop.post("checkout.session.completed", StripeFixtures.checkout(
            customer: "cus_9", account: "00000000-0000-0000-0000-000000000000", subscription: nil))
        #expect(stranger.outcome == .failed && (stranger.detail ?? "").contains("no account"))
    }

    @Test("a reader paying through Stripe and an admin grant of the same plan keeps both")
    func besideAdmin() throws {
        let shop = try Shop()
        _ = try shop.f.service.grantMembership(account: "reader@example.com", plan: "news", until: nil, source: .admin, actor: shop.f.admin)
        _ = try shop.checkout()
        try shop.post("customer.subscription.created", shop.subscription("active", end: shop.now.addingTimeInterval(86_400)))
        #expect(Set(try shop.memberships().map(\.source)) == [.admin, .stripe])
    }
}

@Suite("Stripe billing: partial states and unmapped prices")
struct StripeBillingEdgeTests {
    typealias Shop = StripeBillingTests.Shop

    /// Checkout, then an active subscription for 30 days; its period end.
    func subscribed(_ shop: Shop, sourceLocation: SourceLocation = #_sourceLocation) throws -> Date {
        _ = try shop.checkout()
        let end = shop.now.addingTimeInterval(30 * 86_400)
        #expect(try shop.post("customer.subscription.created", shop.subscription("active", end: end)).outcome == .applied, sourceLocation: sourceLocation)
        return end
    }

    @Test("a price unmapped after purchase: the subscription's end still ends its access; its renewal keeps the plan it was given")
    func unmappedAfterPurchase() async throws {
        let shop = try Shop()
        let end = try subscribed(shop)
        _ = try shop.f.service.unmapBillingProduct(provider: .stripe, externalID: "price_news", actor: shop.f.admin)
        shop.f.clock.advance(by: 60)
        let renewed = end.addingTimeInterval(30 * 86_400)
        #expect(try shop.post("invoice.paid", shop.invoice(paid: true, end: renewed)).outcome == .applied)
        #expect(try shop.memberships().first?.currentPeriodEnd == renewed.roundedDownToSecond)
        shop.f.clock.advance(by: 60)
        let deleted = try shop.post("customer.subscription.deleted", shop.subscription("canceled", end: renewed))
        #expect(deleted.outcome == .applied, "\(String(describing: deleted.detail))")
        #expect(try await shop.access() == StripeBillingTests.embargo)
        #expect(try shop.memberships().allSatisfy { $0.status == .expired })
    }

    @Test("the last retry fails: the subscription's unpaid in the same second as the failed invoice ends access, in either order")
    func unpaidSameSecond() async throws {
        for order in [0, 1] {
            let shop = try Shop()
            let end = try subscribed(shop)
            shop.f.clock.advance(by: 86_400)
            #expect(try shop.post("invoice.payment_failed", shop.invoice(paid: false, end: end)).outcome == .applied)
            shop.f.clock.advance(by: 3 * 86_400)
            let at = shop.now
            let failed = shop.body("invoice.payment_failed", shop.invoice(paid: false, end: end), created: at)
            let unpaid = shop.body("customer.subscription.updated", shop.subscription("unpaid", end: end), created: at)
            for body in order == 0 ? [failed, unpaid] : [unpaid, failed] { try shop.post(body) }
            #expect(try await shop.access() == StripeBillingTests.embargo, "order \(order): unpaid must end the grace")
        }
    }

    /// Subscribed, then its renewal's payment failed a minute later: past due. A minute
    /// later again, returns the period end and the past-due membership.
    func pastDue(_ shop: Shop, sourceLocation: SourceLocation = #_sourceLocation) throws -> (Date, Membership) {
        let end = try subscribed(shop, sourceLocation: sourceLocation)
        shop.f.clock.advance(by: 60)
        #expect(try shop.post("invoice.payment_failed", shop.invoice(paid: false, end: end)).outcome == .applied, sourceLocation: sourceLocation)
        let membership = try #require(try shop.memberships().first, sourceLocation: sourceLocation)
        #expect(membership.status == .pastDue, sourceLocation: sourceLocation)
        shop.f.clock.advance(by: 60)
        return (end, membership)
    }

    @Test("an older invoice paid late neither moves the period end back nor makes a past-due subscription active")
    func olderInvoicePaid() async throws {
        let shop = try Shop()
        let (end, _) = try pastDue(shop)
        #expect(try shop.post("invoice.paid", shop.invoice(paid: true, end: shop.now.addingTimeInterval(-86_400))).outcome == .applied)
        let after = try #require(try shop.memberships().first)
        #expect(after.status == .pastDue && after.currentPeriodEnd == end.roundedDownToSecond, "\(after)")
        #expect(try await shop.access() == StripeBillingTests.grace)
    }

    @Test("a paid invoice of proration lines only (a downgrade invoiced at once) leaves a past-due subscription past due, its grace as it was")
    func prorationOnlyInvoicePaid() async throws {
        let shop = try Shop()
        let (end, pastDue) = try pastDue(shop)
        let proration = StripeFixtures.prorationInvoice(id: "in_proration", customer: "cus_1", subscription: "sub_1", from: "price_news", to: "price_news", periodEnd: end)
        _ = try shop.post("invoice.paid", proration)
        let after = try #require(try shop.memberships().first)
        #expect(after.status == .pastDue && after.currentPeriodEnd == pastDue.currentPeriodEnd && after.accessEnd == pastDue.accessEnd, "\(after)")
        #expect(try await shop.access() == StripeBillingTests.grace)
        // The renewal's own invoice paid at last: active again, to its period's end.
        shop.f.clock.advance(by: 60)
        #expect(try shop.post("invoice.paid", shop.invoice(paid: true, end: end)).outcome == .applied)
        #expect(try #require(try shop.memberships().first).status == .active)
    }

    @Test("PAYWALL_STRIPE_MODE: an event of the other mode is refused and writes nothing; of this mode, taken")
    func mode() throws {
        for (livemode, taken) in [(true, false), (false, true)] {
            let f = try ServiceFixture {
                $0.stripeWebhookSecrets = [StripeFixtures.secret]
                $0.stripeLivemode = livemode
            }
            let account = try f.service.signUp(email: "reader@example.com", password: "correct horse battery", displayName: nil, actor: f.admin).id
            // Stripe's published shapes are test-mode events (livemode false).
            let body = StripeFixtures.event(id: "evt_mode", type: "checkout.session.completed", created: f.service.now,
                                            object: StripeFixtures.checkout(customer: "cus_1", account: account.rawValue, subscription: "sub_1"))
            let before = try f.snapshot()
            do {
                let result = try f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: f.service.now))
                #expect(taken, "a test-mode event was taken by a live-only server")
                #expect(result.outcome == .applied)
            } catch {
                #expect(!taken, "\(error)")
                #expect(error.description.contains("another environment ('test')"), "\(error)")
                #expect(try f.snapshot() == before)
            }
        }
        #expect(throws: ServiceError.self) { try ServiceConfiguration.resolve(environment: ["PAYWALL_STRIPE_MODE": "prod"], overrides: .init()) }
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_STRIPE_MODE": "live"], overrides: .init()).stripeLivemode == true)
    }
}
