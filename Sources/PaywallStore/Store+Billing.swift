import Foundation
import PaywallCore

/// Memberships from payment providers' events. Each event is taken in one write
/// transaction: its id recorded, its change applied to the membership, the history and the
/// audit log — so an event answered 2xx is applied exactly once, and one that was not
/// (a crash before the commit) is applied when the provider delivers it again. Exact across
/// servers: `billing_events` is UNIQUE on (provider, event id), and on PostgreSQL the
/// transaction is SERIALIZABLE, so one delivery handled by two servers at once is applied
/// by one and answered as a duplicate by the other.
extension Store {
    /// Takes one verified event: records its id and applies it once. Pending events waiting
    /// for what this one brings (a customer's link, a subscription) are applied with it.
    public func applyBilling(_ change: BillingChange) throws(StoreError) -> BillingResult {
        let now = clock.now()
        return try write { db in
            if let row = try db.fetchOne("SELECT id, outcome FROM billing_events WHERE provider = ? AND event_id = ?", [change.provider.rawValue, change.eventID]
            ) {
                let id: Int64 = row[0]
                // A failed event is tried again when it comes again; anything else was settled.
                guard row[1] == BillingOutcome.failed.rawValue else {
                    return BillingResult(provider: change.provider, eventID: change.eventID, type: change.type, outcome: .duplicate)
                }
                // Kept unread before (``recordUnreadBillingEvent``): read now, it is kept as read.
                try Self.keepRead(db, id: id, change)
                return try retry(db, id: id, change: change, now: now)
            }
            let applied = try BillingApplier(store: self, db: db, now: now).apply(change)
            try insertEvent(db, change, applied, now: now)
            try BillingApplier(store: self, db: db, now: now).drain(applied.unblocked)
            return applied.result
        }
    }

    /// Applies again every failed or pending event (after a price was mapped, say), oldest
    /// first; returns what became of each.
    /// Audited as `billing.retry` by `actor`, with what became of the events, in the same
    /// transaction.
    public func retryBillingEvents(actor: AuditActor = .system) throws(StoreError) -> [BillingResult] {
        let now = clock.now()
        return try write { db in
            // Not the events kept unread: only the service's parser reads them
            // (``readUnreadBillingEvent(id:change:)`` first).
            let rows = try db.fetchAll("""
                SELECT id, change, provider, event_id, type FROM billing_events WHERE outcome IN ('pending', 'failed') AND body IS NULL
                ORDER BY occurred_at, id
                """)
            var results: [BillingResult] = []
            for row in rows {
                let id: Int64 = row[0]
                guard let change = Self.decodeChange(row[1]) else {
                    // Stored by a version whose change this one cannot decode: said, not
                    // passed over in silence (found in review), and left as it is.
                    results.append(BillingResult(
                        provider: BillingProvider(rawValue: row[2]) ?? .stripe, eventID: row[3], type: row[4], outcome: .failed,
                        detail: "its stored change cannot be read by this version of paywall; left as it is"))
                    continue
                }
                // An earlier event's retry may have applied this one already (it was waiting
                // for that one): said as it now stands, not applied a second time (which
                // counted its attempts twice and could restate an applied end as stale).
                if let settled = try db.fetchOne("SELECT outcome, detail, account_id FROM billing_events WHERE id = ? AND outcome NOT IN ('pending', 'failed')", [id]) {
                    let outcome: String = settled[0]
                    let account: String? = settled[2]
                    results.append(BillingResult(
                        provider: change.provider, eventID: change.eventID, type: change.type, outcome: BillingOutcome(rawValue: outcome) ?? .applied,
                        detail: settled[1], accountID: account.map(AccountID.init(rawValue:))))
                    continue
                }
                results.append(try retry(db, id: id, change: change, now: now))
            }
            try audit(db, actor: actor, action: "billing.retry", target: "billing", details: results.outcomeCounts.merging(["events": String(results.count)]) { $1 })
            return results
        }
    }

    /// A provider's event, verified, that this server could not read (a shape or status its
    /// parser does not know, a setting it needs missing): kept as failed with `body` and why,
    /// so that it is listed (`paywall billing failures`) and read again by `billing retry`
    /// once the server can, instead of lost when the provider stops delivering it (Stripe
    /// retries for three days). Answered as failed, as every event kept for a retry is. A
    /// delivery again counts an attempt; an event settled before is a duplicate.
    public func recordUnreadBillingEvent(
        provider: BillingProvider, eventID: String, type: String, occurredAt: Date, body: String, reason: String
    ) throws(StoreError) -> BillingResult {
        let now = clock.now()
        let detail = Self.unreadDetail(reason)
        return try write { db in
            if let row = try db.fetchOne("SELECT id, outcome FROM billing_events WHERE provider = ? AND event_id = ?", [provider.rawValue, eventID]) {
                let id: Int64 = row[0]
                guard row[1] == BillingOutcome.failed.rawValue else {
                    return BillingResult(provider: provider, eventID: eventID, type: type, outcome: .duplicate)
                }
                try db.execute("UPDATE billing_events SET detail = ?, body = ?, attempts = attempts + 1 WHERE id = ?", [detail, body, id])
                return BillingResult(provider: provider, eventID: eventID, type: type, outcome: .failed, detail: detail)
            }
            // Its change is a placeholder until it is read: the event's identity, nothing to apply.
            let placeholder = BillingChange(provider: provider, eventID: eventID, type: type, occurredAt: occurredAt)
            try db.execute("""
                INSERT INTO billing_events (provider, event_id, type, outcome, detail, occurred_at, received_at, change, body)
                VALUES (?, ?, ?, 'failed', ?, ?, ?, ?, ?)
                """, [provider.rawValue, eventID, type, detail, occurredAt.millis, now.millis, Self.encodeChange(placeholder), body])
            return BillingResult(provider: provider, eventID: eventID, type: type, outcome: .failed, detail: detail)
        }
    }

    /// An event kept unread (``recordUnreadBillingEvent(provider:eventID:type:occurredAt:body:reason:)``).
    public struct UnreadBillingEvent: Sendable {
        public var id: Int64
        public var provider: BillingProvider
        public var eventID: String
        public var type: String
        public var body: String
    }

    /// The events kept unread, oldest first.
    public func unreadBillingEvents() throws(StoreError) -> [UnreadBillingEvent] {
        try read { db in
            try db.fetchAll("SELECT id, provider, event_id, type, body FROM billing_events WHERE body IS NOT NULL AND outcome = 'failed' ORDER BY occurred_at, id").compactMap { row in
                guard let provider = BillingProvider(rawValue: row[1]) else { return nil }
                return UnreadBillingEvent(id: row[0], provider: provider, eventID: row[2], type: row[3], body: row[4])
            }
        }
    }

    /// An event kept unread, read at last: with its change it waits, failed, for the
    /// retry that follows (``retryBillingEvents(actor:)``) to apply it in its order; without
    /// one (a type or an event this service does not act on) it is settled as ignored.
    public func readUnreadBillingEvent(id: Int64, change: BillingChange?) throws(StoreError) {
        try write { db in
            if let change {
                try Self.keepRead(db, id: id, change)
            } else {
                try db.execute("UPDATE billing_events SET outcome = 'ignored', detail = ?, body = NULL WHERE id = ? AND body IS NOT NULL", [Self.ignoredOnRereadDetail, id])
            }
        }
    }

    /// Why an event is kept unread (the reason its parser gave).
    public static func unreadDetail(_ reason: String) -> String { "could not be read: \(reason)" }

    /// What an event kept unread and read at last to be no change says.
    public static let ignoredOnRereadDetail = "nothing this service acts on (read again)"

    /// An event kept unread, read: its change in place of the placeholder, its body gone.
    private static func keepRead(_ db: any SQLConnection, id: Int64, _ change: BillingChange) throws {
        try db.execute("""
            UPDATE billing_events SET change = ?, body = NULL, occurred_at = ?, subscription_id = ?, customer_id = ?
            WHERE id = ? AND body IS NOT NULL
            """, [encodeChange(change), change.occurredAt.millis, change.subscription?.id ?? change.checkoutSubscription, change.customer, id])
    }

    private func retry(_ db: any SQLConnection, id: Int64, change: BillingChange, now: Date) throws -> BillingResult {
        let applier = BillingApplier(store: self, db: db, now: now)
        let applied = try applier.apply(change)
        try Self.updateEvent(db, id: id, applied)
        try applier.drain(applied.unblocked)
        return applied.result
    }

    private func insertEvent(_ db: any SQLConnection, _ change: BillingChange, _ applied: BillingApplier.Applied, now: Date) throws {
        try db.execute("""
            INSERT INTO billing_events (provider, event_id, type, outcome, detail, waiting_for, customer_id, subscription_id, account_id,
                occurred_at, received_at, change)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [
                change.provider.rawValue, change.eventID, change.type, applied.result.outcome.rawValue, applied.result.detail, applied.waitingFor,
                change.customer, change.subscription?.id ?? change.checkoutSubscription, applied.result.accountID?.rawValue, change.occurredAt.millis, now.millis,
                Self.encodeChange(change),
            ])
    }

    static func updateEvent(_ db: any SQLConnection, id: Int64, _ applied: BillingApplier.Applied) throws {
        try db.execute("""
            UPDATE billing_events SET outcome = ?, detail = ?, waiting_for = ?, account_id = COALESCE(?, account_id), attempts = attempts + 1
            WHERE id = ?
            """, [
                applied.result.outcome.rawValue, applied.result.detail, applied.waitingFor, applied.result.accountID?.rawValue, id,
            ])
    }

    static func encodeChange(_ change: BillingChange) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(change)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decodeChange(_ text: String) -> BillingChange? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try? decoder.decode(BillingChange.self, from: Data(text.utf8))
    }

    // MARK: - Links and mappings

    /// Links a provider customer to an account (the appAccountToken given to the app, or a
    /// Stripe customer by hand), then applies the events that waited for it.
    public func linkBillingCustomer(provider: BillingProvider, customer: String, accountID: AccountID, actor: AuditActor) throws(StoreError) -> [BillingResult] {
        let now = clock.now()
        return try write { db in
            _ = try Self.requireAccount(db, accountID)
            let applier = BillingApplier(store: self, db: db, now: now)
            if let linked = try applier.linkedAccount(provider, customer) {
                guard linked == accountID else { throw StoreError.billingCustomerLinked(customer: customer, account: linked.rawValue) }
                return []
            }
            try applier.insertLink(provider, customer, accountID, actor: actor)
            return try applier.drain([BillingApplier.key(provider, customer: customer)])
        }
    }

    /// Gives a provider subscription whose events wait for an account to `accountID`: an
    /// App Store purchase made without the app's `appAccountToken` (an offer code redeemed
    /// in the App Store, a purchase from another device's app), or a Stripe subscription of
    /// a customer no Checkout linked, without linking the customer. Its waiting events are
    /// applied now, in their order, on that account; its later events follow the stored
    /// subscription. Refused when nothing of it waits (a typo would otherwise link nothing,
    /// silently) or when another account already holds it.
    public func linkBillingSubscription(provider: BillingProvider, subscription: String, accountID: AccountID, actor: AuditActor) throws(StoreError) -> [BillingResult] {
        let now = clock.now()
        return try write { db in
            _ = try Self.requireAccount(db, accountID)
            let applier = BillingApplier(store: self, db: db, now: now)
            if let stored = try applier.subscription(provider, subscription) {
                guard stored.accountID == accountID else { throw StoreError.billingSubscriptionLinked(subscription: subscription, account: stored.accountID.rawValue) }
                return []
            }
            // Waiting for the subscription (no customer named) or for its customer's link.
            // Not a Checkout session waiting to see which account the subscription it started
            // goes to: it is no event of the subscription, and is settled once that is stored.
            let waiting = try db.fetchAll("""
                SELECT id, change FROM billing_events WHERE outcome = 'pending' AND provider = ? AND subscription_id = ? AND type <> ?
                ORDER BY occurred_at, id
                """, [provider.rawValue, subscription, Self.checkoutType])
            guard !waiting.isEmpty else {
                let failed = try db.fetchValue(Int.self, """
                    SELECT COUNT(*) FROM billing_events WHERE outcome = 'failed' AND provider = ? AND subscription_id = ? AND type <> ?
                    """, [provider.rawValue, subscription, Self.checkoutType]) ?? 0
                throw StoreError.billingNothingWaiting(subscription: subscription, failed: failed)
            }
            try audit(db, actor: actor, action: "billing.link", target: "account:\(accountID)", details: ["provider": provider.rawValue, "subscription": subscription])
            // Each waiting event now names the account, as a subscription's own metadata
            // would, and waits for the subscription: applied in their order, the first
            // stores the subscription on the account.
            for row in waiting {
                guard var change = Self.decodeChange(row[1]) else { continue }
                change.subscriptionAccount = accountID.rawValue
                let id: Int64 = row[0]
                try db.execute("UPDATE billing_events SET change = ? WHERE id = ?", [Self.encodeChange(change), id])
            }
            return try applier.drain([try applier.wakeWaiting(provider, subscription: subscription)])
        }
    }

    /// Sets aside a pending or failed event that will never apply (a test event, a Checkout
    /// session whose subscription never comes, a subscription whose account was deleted):
    /// recorded as ignored with who dismissed it and why, audited. Nothing else changes; a
    /// redelivery of it is then a duplicate, and `retry` no longer takes it.
    public func dismissBillingEvent(provider: BillingProvider, eventID: String, reason: String, actor: AuditActor) throws(StoreError) -> BillingEventRecord {
        try write { db in
            guard let row = try db.fetchOne("SELECT id, outcome FROM billing_events WHERE provider = ? AND event_id = ?", [provider.rawValue, eventID]) else {
                throw StoreError.billingEventNotFound(provider: provider.rawValue, event: eventID)
            }
            let id: Int64 = row[0]
            let outcome: String = row[1]
            guard outcome == BillingOutcome.pending.rawValue || outcome == BillingOutcome.failed.rawValue else {
                throw StoreError.billingEventSettled(event: eventID, outcome: outcome)
            }
            try db.execute("UPDATE billing_events SET outcome = ?, detail = ?, waiting_for = NULL WHERE id = ?", [
                BillingOutcome.ignored.rawValue, "dismissed by \(actor.rawValue): \(reason) (was \(outcome))", id,
            ])
            try audit(db, actor: actor, action: "billing.dismiss", target: "billing:\(provider.rawValue):\(eventID)", details: ["reason": reason, "was": outcome])
            guard let record = try Self.billingEvent(db, id: id) else { throw StoreError.billingEventNotFound(provider: provider.rawValue, event: eventID) }
            return record
        }
    }

    static let billingEventColumns = "id, provider, event_id, type, outcome, detail, customer_id, subscription_id, account_id, occurred_at, received_at, attempts"

    static func billingEvent(row: SQLRow) -> BillingEventRecord? {
        guard let provider = BillingProvider(rawValue: row[1]), let outcome = BillingOutcome(rawValue: row[4]) else { return nil }
        return BillingEventRecord(
            id: row[0], provider: provider, eventID: row[2], type: row[3], outcome: outcome, detail: row[5], customer: row[6],
            subscriptionID: row[7], accountID: (row[8] as String?).map(AccountID.init(rawValue:)), occurredAt: Date(millis: row[9]),
            receivedAt: Date(millis: row[10]), attempts: row[11])
    }

    static func billingEvent(_ db: any SQLConnection, id: Int64) throws -> BillingEventRecord? {
        try db.fetchOne("SELECT \(billingEventColumns) FROM billing_events WHERE id = ?", [id]).flatMap(billingEvent(row:))
    }

    /// The Stripe event that links a customer, and names the subscription it started.
    static let checkoutType = "checkout.session.completed"

    /// The customers linked to an account.
    public func billingLinks(accountID: AccountID) throws(StoreError) -> [BillingLink] {
        try read { db in
            try db.fetchAll("SELECT provider, customer_id, account_id, created_at FROM billing_customers WHERE account_id = ? ORDER BY created_at, customer_id", [accountID.rawValue]).compactMap { row in
                BillingProvider(rawValue: row[0]).map {
                    BillingLink(provider: $0, customer: row[1], accountID: AccountID(rawValue: row[2]), createdAt: Date(millis: row[3]))
                }
            }
        }
    }

    /// An account's provider subscriptions as last applied.
    public func billingSubscriptions(accountID: AccountID) throws(StoreError) -> [BillingSubscription] {
        try read { db in
            try db.fetchAll("""
                SELECT provider, subscription_id, account_id, membership_id, product, status, provider_status, period_end, cancel_at_period_end, as_of
                FROM billing_subscriptions WHERE account_id = ? ORDER BY as_of DESC
                """, [accountID.rawValue]).compactMap { row in
                guard let provider = BillingProvider(rawValue: row[0]), let status = BillingStatus(rawValue: row[5]) else { return nil }
                return BillingSubscription(
                    provider: provider, id: row[1], accountID: AccountID(rawValue: row[2]), membershipID: row[3], product: row[4], status: status,
                    providerStatus: row[6], periodEnd: (row[7] as Int64?).map(Date.init(millis:)), cancelAtPeriodEnd: row[8], asOf: Date(millis: row[9]))
            }
        }
    }

    /// Stored events, newest first: an account's, or those not applied (pending and failed).
    public func billingEvents(accountID: AccountID? = nil, unappliedOnly: Bool = false, limit: Int = 50) throws(StoreError) -> [BillingEventRecord] {
        try read { db in
            var conditions: [String] = []
            var arguments: SQLArguments = []
            if let accountID {
                conditions.append("account_id = ?")
                arguments.append(accountID.rawValue)
            }
            if unappliedOnly { conditions.append("outcome IN ('pending', 'failed')") }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments.append(max(0, limit))
            return try db.fetchAll("SELECT \(Self.billingEventColumns) FROM billing_events \(filter) ORDER BY id DESC LIMIT ?", arguments)
                .compactMap(Self.billingEvent(row:))
        }
    }

    /// Maps a provider's price or product to a plan (replacing an earlier mapping).
    public func mapBillingProduct(provider: BillingProvider, externalID: String, planID: PlanID, actor: AuditActor) throws(StoreError) -> BillingPlanMapping {
        let now = clock.now()
        return try write { db in
            guard try Self.planExists(db, planID) else { throw StoreError.planNotFound(planID.rawValue) }
            try db.execute("""
                INSERT INTO billing_plans (provider, external_id, plan_id, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (provider, external_id) DO UPDATE SET plan_id = excluded.plan_id
                """, [provider.rawValue, externalID, planID.rawValue, now.millis])
            try audit(db, actor: actor, action: "billing.map", target: "plan:\(planID)", details: ["provider": provider.rawValue, "product": externalID])
            return BillingPlanMapping(provider: provider, externalID: externalID, planID: planID)
        }
    }

    /// Removes a mapping; false when there was none.
    public func unmapBillingProduct(provider: BillingProvider, externalID: String, actor: AuditActor) throws(StoreError) -> Bool {
        try write { db in
            guard try db.execute("DELETE FROM billing_plans WHERE provider = ? AND external_id = ?", [provider.rawValue, externalID]) > 0 else { return false }
            try audit(db, actor: actor, action: "billing.unmap", target: "billing:\(provider)", details: ["product": externalID])
            return true
        }
    }

    /// Every price and product mapping.
    public func billingMappings() throws(StoreError) -> [BillingPlanMapping] {
        try read { db in
            try db.fetchAll("SELECT provider, external_id, plan_id FROM billing_plans ORDER BY provider, external_id").compactMap { row in
                BillingProvider(rawValue: row[0]).map { BillingPlanMapping(provider: $0, externalID: row[1], planID: PlanID(rawValue: row[2])) }
            }
        }
    }
}

/// Applies events inside one write transaction.
struct BillingApplier {
    let store: Store
    let db: any SQLConnection
    let now: Date

    /// What a pending event waits for: its customer's link or its subscription's first
    /// state, per provider (`stripe:customer:cus_…`, `apple:subscription:…`).
    /// How much access a billing status gives (to order same-instant snapshots).
    static func accessRank(_ status: BillingStatus) -> Int {
        switch status {
        case .active: 2
        case .pastDue: 1
        case .expired: 0
        }
    }

    static func key(_ provider: BillingProvider, customer: String) -> String { "\(provider):customer:\(customer)" }
    static func key(_ provider: BillingProvider, subscription: String) -> String { "\(provider):subscription:\(subscription)" }

    /// What applying one change did.
    struct Applied {
        var result: BillingResult
        /// For a pending event: what it waits for (see ``key(_:customer:)``).
        var waitingFor: String?
        /// Keys this event satisfied: pending events waiting on them can go now.
        var unblocked: [String] = []
    }

    /// Applies every pending event waiting on `keys` (oldest provider time first), and
    /// what those unblock in turn.
    @discardableResult
    func drain(_ keys: [String]) throws -> [BillingResult] {
        var queue = keys
        var results: [BillingResult] = []
        while let key = queue.first {
            queue.removeFirst()
            let rows = try db.fetchAll("""
                SELECT id, change FROM billing_events WHERE waiting_for = ? AND outcome = 'pending' ORDER BY occurred_at, id
                """, [key])
            for row in rows {
                let id: Int64 = row[0]
                guard let change = Store.decodeChange(row[1]) else { continue }
                let applied = try apply(change)
                try Store.updateEvent(db, id: id, applied)
                results.append(applied.result)
                queue.append(contentsOf: applied.unblocked)
            }
        }
        return results
    }

    func apply(_ change: BillingChange) throws -> Applied {
        var result = BillingResult(provider: change.provider, eventID: change.eventID, type: change.type, outcome: .applied)
        func outcome(_ outcome: BillingOutcome, _ detail: String?, waiting: String? = nil, unblocked: [String] = []) -> Applied {
            result.outcome = outcome
            result.detail = detail
            return Applied(result: result, waitingFor: waiting, unblocked: unblocked)
        }
        var unblocked: [String] = []
        var accountID: AccountID?

        // A Checkout session links its customer to the account that started it.
        if let link = change.linkAccount {
            guard let customer = change.customer else { return outcome(.ignored, "the session has no customer") }
            let account = AccountID(rawValue: link.lowercased())
            guard try Store.requireAccountOrNil(db, account) else { return outcome(.failed, "no account '\(link.prefix(64))' (client_reference_id)") }
            if let linked = try linkedAccount(change.provider, customer) {
                if linked != account {
                    // One customer paying for a second account: the link stays; events of
                    // a subscription that names its account (metadata) go to that account.
                    // The session did what it should when the subscription it started is
                    // this account's: known once that subscription is stored (it waits
                    // until then, woken like the subscription's other events).
                    let how = "its subscriptions go to that account unless they name theirs (Checkout's subscription_data.metadata.paywall_account)"
                    guard let started = change.checkoutSubscription else {
                        return outcome(.failed, "customer \(customer) is already linked to account \(linked): \(how)")
                    }
                    guard let stored = try subscription(change.provider, started) else {
                        return outcome(.pending, "customer \(customer) is linked to account \(linked): waiting for subscription \(started) to see which account it names",
                                       waiting: Self.key(change.provider, subscription: started))
                    }
                    guard stored.accountID == account else {
                        return outcome(.failed, "customer \(customer) is already linked to account \(linked), and subscription \(started) went to account \(stored.accountID): \(how)")
                    }
                    result.accountID = account
                    return outcome(.applied, "customer \(customer) stays linked to account \(linked); subscription \(started) is this account's")
                }
            } else {
                try insertLink(change.provider, customer, account, actor: change.provider.actor)
                unblocked.append(Self.key(change.provider, customer: customer))
            }
            accountID = account
            result.accountID = account
        }
        guard var state = change.subscription else {
            if change.linkAccount != nil { return outcome(.applied, nil, unblocked: unblocked) }
            return outcome(.ignored, "the event names no subscription")
        }
        // A subscription that names its account is that account's, before its customer's
        // link: one customer may pay for two accounts (a Checkout session reusing the
        // customer of an account signed in earlier), and the link would give the second
        // account's subscription to the first.
        if let named = change.subscriptionAccount {
            let account = AccountID(rawValue: named.lowercased())
            guard try Store.requireAccountOrNil(db, account) else {
                return outcome(.failed, "no account '\(PrintableText.quoted(named))' (the subscription's metadata paywall_account)", unblocked: unblocked)
            }
            accountID = account
        }
        var stored = try subscription(change.provider, state.id)
        // A stored Stripe subscription is its account's whatever its customer's link says
        // (stored through its metadata or an admin's link while the customer went to
        // another account): the link is for subscriptions not yet stored. On the App Store
        // the "customer" is the transaction's own appAccountToken, the account it names:
        // another one there is a conflict, found below.
        if accountID == nil, change.provider == .stripe { accountID = stored?.accountID }
        if accountID == nil, let customer = change.customer { accountID = try linkedAccount(change.provider, customer) }
        if accountID == nil { accountID = stored?.accountID }
        guard let accountID else {
            if let customer = change.customer {
                return outcome(.pending, "customer \(customer) is not linked to an account yet", waiting: Self.key(change.provider, customer: customer), unblocked: unblocked)
            }
            let why = change.provider == .apple && change.customer == nil ? " (the purchase carries no appAccountToken naming an account)" : ""
            return outcome(.pending, "subscription \(state.id) is not known yet\(why)", waiting: Self.key(change.provider, subscription: state.id), unblocked: unblocked)
        }
        result.accountID = accountID
        if let held = stored, held.accountID != accountID {
            // A subscription stays with the account it started on: a later event naming
            // another account (an App Store transaction carrying another account's
            // appAccountToken on the same Apple ID) must not move its membership silently.
            // Except an App Store subscription that had ended, bought again under another
            // account: Apple keeps one original transaction per Apple ID and subscription
            // group, so a reader who resubscribes while signed in to a second account of
            // ours pays for that one. Refused, the reader paid and neither account read,
            // and no admin could give it over (found in review). Moved, audited; the first
            // account's ended membership stays as it was.
            guard change.provider == .apple, held.status == .expired, !held.isFinal, state.status == .active, change.occurredAt > held.asOf else {
                return outcome(.failed, "subscription \(state.id) belongs to account \(held.accountID), not \(accountID)", unblocked: unblocked)
            }
            try db.execute("UPDATE billing_subscriptions SET account_id = ?, membership_id = NULL WHERE provider = ? AND subscription_id = ?",
                           [accountID.rawValue, change.provider.rawValue, state.id])
            try store.audit(db, actor: change.provider.actor, action: "billing.move", target: "account:\(accountID)", details: [
                "provider": change.provider.rawValue, "subscription": state.id, "from": "account:\(held.accountID)", "event": change.eventID,
            ])
            stored?.accountID = accountID
            stored?.membershipID = nil
        }
        if let stored {
            if stored.isFinal { return outcome(.stale, "subscription \(state.id) has already ended", unblocked: unblocked) }
            // The end of a subscription (Stripe's deletion: no event can follow it) applies
            // even when older than what was applied: events come in any order, and retries
            // come hours late. Set aside, a deletion delivered after a later-stamped
            // `invoice.paid` of its final invoice left the reader a paid period of access.
            if change.occurredAt < stored.asOf, !state.isFinal {
                return outcome(.stale, "older than the state already applied (of \(TimeText.format(stored.asOf)))", unblocked: unblocked)
            }
            // Stripe stamps events in whole seconds, and a checkout sends `created`
            // (incomplete), `updated` (active) and `invoice.paid` in the same second, in any
            // order: at the same instant a snapshot never takes access away, unless it is the
            // end (a deleted subscription).
            // Except a subscription's own snapshot after a failed payment's state: when the
            // last retry fails, `invoice.payment_failed` and the subscription's `unpaid`
            // come in one second, and the snapshot is the word that access has ended.
            let snapshotAfterFailure = stored.providerStatus == SubscriptionState.failedPayment && change.type.hasPrefix("customer.subscription.")
            if change.occurredAt == stored.asOf, !state.isFinal, !snapshotAfterFailure, let incoming = state.status,
               Self.accessRank(incoming) < Self.accessRank(stored.status) {
                return outcome(.stale, "as old as the state already applied and less than it (\(incoming.rawValue) after \(stored.status.rawValue))", unblocked: unblocked)
            }
        }
        // A failed payment gives a grace only to a subscription that was paid: the failed
        // first invoice of one never paid (incomplete: stored as expired, or not seen yet)
        // must not open the titles for the grace period.
        if state.status == .pastDue, state.providerStatus == SubscriptionState.failedPayment, stored.map({ $0.status == .expired }) ?? true {
            return outcome(.stale, "a failed payment of subscription \(state.id), never paid, grants no grace", unblocked: unblocked)
        }
        // An invoice's prices are what was billed, not necessarily what the subscription is
        // now: a renewal invoice drafted on the old price and paid an hour after an upgrade
        // (its period the one already stored) must not put the reader back on the old plan.
        // They count for a subscription not stored yet, and for a period newer than the
        // stored one (a scheduled change at renewal whose `customer.subscription.updated`
        // comes late, after this invoice has made it stale).
        if let stored, state.providerStatus == SubscriptionState.paidInvoice || state.providerStatus == SubscriptionState.failedPayment {
            let newerPeriod = state.periodEnd.map { paid in stored.periodEnd.map { paid > $0 } ?? true } ?? false
            if !newerPeriod { state.products = [] }
        }
        // What the event leaves out stays as stored.
        let mapped = try plan(change.provider, state.products)
        guard let product = mapped?.product ?? state.products.first ?? stored?.product else {
            return outcome(.pending, "subscription \(state.id) is not known yet (the event names no price)", waiting: Self.key(change.provider, subscription: state.id), unblocked: unblocked)
        }
        guard let eventStatus = state.status ?? stored?.status else {
            return outcome(.pending, "subscription \(state.id) is not known yet (the event gives no status)", waiting: Self.key(change.provider, subscription: state.id), unblocked: unblocked)
        }
        let planID: PlanID
        if let mapped {
            planID = mapped.plan
        } else if state.products.isEmpty || eventStatus == .expired || state.products.contains(where: { $0 == stored?.product }),
                  let storedPlan = try storedPlan(change.provider, stored) {
            // The event names no price, or the one the subscription had (unmapped since):
            // the subscription goes on, or ends, on the plan it was given. An end must
            // always be applied: refused, a refund or a deletion left the access open.
            planID = storedPlan
        } else {
            return outcome(.failed, "no plan is mapped to \(change.provider) \(change.provider == .stripe ? "price" : "product") '\(product)'", unblocked: unblocked)
        }
        var periodEnd = state.periodEnd ?? stored?.periodEnd
        var status = eventStatus
        // An older invoice paid late (the previous period's, while the subscription is past
        // due) says nothing of the period now: it must not move the end back, nor make a
        // past-due subscription active. The subscription's own snapshot decides that. Nor
        // does an invoice that covers no period at all: one of proration lines only (a
        // downgrade invoiced at once, paid at once at a zero or negative total) made a
        // past-due or unpaid subscription active again to its period's end, its failed
        // renewal still unpaid (found in review).
        if state.providerStatus == SubscriptionState.paidInvoice, let stored, let storedEnd = stored.periodEnd, (state.periodEnd ?? .distantPast) < storedEnd {
            periodEnd = storedEnd
            status = stored.status
        }
        let cancel = state.cancelAtPeriodEnd ?? stored?.cancelAtPeriodEnd ?? false
        var graceEnd = state.graceEnd
        // A Stripe grace is counted from the first failure: later retries that fail do not
        // extend it. And an event that gives no grace (App Store: auto-renew turned off
        // during the billing grace period) keeps the one stored: without it the grace
        // ended at the lapsed period's end, at once.
        if status == .pastDue, stored?.status == .pastDue, let storedGrace = stored?.graceEnd, change.provider == .stripe || graceEnd == nil {
            graceEnd = storedGrace
        }
        guard status == .expired || periodEnd != nil else {
            return outcome(.pending, "subscription \(state.id) has no period end yet", waiting: Self.key(change.provider, subscription: state.id), unblocked: unblocked)
        }
        let membershipID = try changeMembership(
            change: change, state: state, accountID: accountID, planID: planID, current: stored?.membershipID, status: status,
            periodEnd: periodEnd ?? now, graceEnd: graceEnd, cancel: cancel)
        result.membershipID = membershipID
        try db.execute("""
            INSERT INTO billing_subscriptions (provider, subscription_id, account_id, membership_id, product, status, provider_status, period_end,
                grace_end, cancel_at_period_end, final, as_of, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (provider, subscription_id) DO UPDATE SET
                membership_id = excluded.membership_id, product = excluded.product, status = excluded.status,
                provider_status = excluded.provider_status, period_end = excluded.period_end, grace_end = excluded.grace_end,
                cancel_at_period_end = excluded.cancel_at_period_end, final = excluded.final, as_of = excluded.as_of, updated_at = excluded.updated_at
            """, [
                change.provider.rawValue, state.id, accountID.rawValue, membershipID, product, status.rawValue, state.providerStatus,
                periodEnd?.millis, status == .pastDue ? graceEnd?.millis : nil, cancel, state.isFinal,
                max(change.occurredAt, stored?.asOf ?? change.occurredAt).millis, now.millis,
            ])
        // Newly stored: its other events waiting (for the subscription, or for a customer
        // link that may never come now that the subscription has its account) are applied
        // after this one.
        if stored == nil { unblocked.append(try wakeWaiting(change.provider, subscription: state.id)) }
        return outcome(.applied, nil, unblocked: unblocked)
    }

    /// Moves the subscription's membership to what the event says; returns the membership
    /// now tied to the subscription (nil: none, e.g. an unpaid first invoice).
    private func changeMembership(
        change: BillingChange, state: SubscriptionState, accountID: AccountID, planID: PlanID, current currentID: Int64?,
        status: BillingStatus, periodEnd: Date, graceEnd: Date?, cancel: Bool
    ) throws -> Int64? {
        let source = change.provider.membershipSource
        let actor = change.provider.actor
        let reason = "\(change.type) \(change.eventID) (\(change.provider) subscription \(state.id): \(state.providerStatus))"
        var details: [String: String] = [
            "provider": change.provider.rawValue, "event": change.eventID, "type": change.type, "subscription": state.id,
            "providerStatus": state.providerStatus, "plan": planID.rawValue,
        ]
        if let customer = change.customer { details["customer"] = customer }
        var current = try currentID.map { try Store.membership(db, $0) }
        if let found = current, found.status == .expired { current = nil }
        // A new price of another plan: the old plan's membership ends, the new one starts
        // (unless another live subscription of that plan shares it: it stays theirs).
        if let found = current, found.planID != planID, try bestOtherSharer(of: found.id, provider: change.provider, except: state.id) != nil {
            current = nil
        } else if let found = current, found.planID != planID {
            try setMembership(found, status: .expired, periodEnd: found.currentPeriodEnd, graceEnd: nil, cancel: found.cancelAtPeriodEnd)
            try Store.recordTransition(db, id: found.id, from: found.status, to: .expired, at: now, actor: actor, reason: "plan changed to \(planID): \(reason)")
            try store.audit(db, actor: actor, action: "membership.status", target: "account:\(accountID)",
                            details: details.merging(["membership": String(found.id), "from": found.status.rawValue, "to": "expired"]) { $1 })
            current = nil
        }
        var target: MembershipStatus = switch status {
        case .active: .active
        case .pastDue: .pastDue
        case .expired: .expired
        }
        var grace = target == .pastDue ? (graceEnd ?? periodEnd) : nil
        var periodEnd = periodEnd
        var cancel = cancel
        details["periodEnd"] = TimeText.format(periodEnd)
        if let grace { details["graceEnd"] = TimeText.format(grace) }
        details["cancelAtPeriodEnd"] = cancel ? "true" : "false"
        if current == nil, target != .expired {
            // Another subscription of the same plan through the same provider holds the live
            // membership (a reader who bought twice): this one shares it.
            if let row = try db.fetchOne("""
                SELECT \(Membership.columns) FROM memberships WHERE account_id = ? AND plan_id = ? AND source = ? AND status != 'expired'
                """, [accountID.rawValue, planID.rawValue, source.rawValue]) {
                current = Membership(row: row)
            }
        }
        guard let current else {
            guard target != .expired else { return currentID }
            let id = try db.insertedID("""
                INSERT INTO memberships (account_id, plan_id, status, current_period_end, grace_period_end, cancel_at_period_end, source, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [accountID.rawValue, planID.rawValue, target.rawValue, periodEnd.millis, grace?.millis, cancel, source.rawValue,
                                         now.millis, now.millis])
            try Store.recordTransition(db, id: id, from: nil, to: target, at: now, actor: actor, reason: reason)
            try store.audit(db, actor: actor, action: "membership.grant", target: "account:\(accountID)",
                            details: details.merging(["membership": String(id), "to": target.rawValue]) { $1 })
            return id
        }
        // A reader who bought the plan twice: the membership both subscriptions share follows
        // the better of them (ending one must not end the access the other still pays for).
        if let other = try bestOtherSharer(of: current.id, provider: change.provider, except: state.id),
           (Self.accessRank(other.status), other.periodEnd ?? .distantPast) > (Self.accessRank(status), periodEnd) {
            target = other.status == .active ? .active : .pastDue
            periodEnd = other.periodEnd ?? periodEnd
            grace = target == .pastDue ? (other.graceEnd ?? periodEnd) : nil
            cancel = other.cancel
            details["keptBy"] = other.subscription
        }
        let unchanged = current.status == target && current.currentPeriodEnd == periodEnd && current.gracePeriodEnd == grace
            && current.cancelAtPeriodEnd == cancel
        guard !unchanged else { return current.id }
        // An expired membership keeps the period it had; an ended grace is not rewritten.
        let newEnd = target == .expired ? current.currentPeriodEnd : periodEnd
        try setMembership(current, status: target, periodEnd: newEnd, graceEnd: target == .expired ? current.gracePeriodEnd : grace, cancel: cancel)
        if current.status != target {
            try Store.recordTransition(db, id: current.id, from: current.status, to: target, at: now, actor: actor, reason: reason)
        }
        try store.audit(db, actor: actor, action: current.status != target ? "membership.status" : "membership.renew", target: "account:\(accountID)",
                        details: details.merging(["membership": String(current.id), "from": current.status.rawValue, "to": target.rawValue]) { $1 })
        return current.id
    }

    /// The best live state (most access, then the latest period end) among the other
    /// subscriptions of `provider` that share membership `id`.
    private func bestOtherSharer(of id: Int64, provider: BillingProvider, except subscription: String) throws
        -> (subscription: String, status: BillingStatus, periodEnd: Date?, graceEnd: Date?, cancel: Bool)?
    {
        let rows = try db.fetchAll("""
            SELECT subscription_id, status, period_end, grace_end, cancel_at_period_end FROM billing_subscriptions
            WHERE provider = ? AND membership_id = ? AND subscription_id != ? AND status != 'expired' AND final = 0
            """, [provider.rawValue, id, subscription])
        return rows.compactMap { row -> (subscription: String, status: BillingStatus, periodEnd: Date?, graceEnd: Date?, cancel: Bool)? in
            guard let status = BillingStatus(rawValue: row[1]) else { return nil }
            return (row[0], status, (row[2] as Int64?).map(Date.init(millis:)), (row[3] as Int64?).map(Date.init(millis:)), row[4])
        }.max { (Self.accessRank($0.status), $0.periodEnd ?? .distantPast) < (Self.accessRank($1.status), $1.periodEnd ?? .distantPast) }
    }

    private func setMembership(_ membership: Membership, status: MembershipStatus, periodEnd: Date, graceEnd: Date?, cancel: Bool) throws {
        try db.execute("""
            UPDATE memberships SET status = ?, current_period_end = ?, grace_period_end = ?, cancel_at_period_end = ?, updated_at = ? WHERE id = ?
            """, [status.rawValue, periodEnd.millis, graceEnd?.millis, cancel, now.millis, membership.id])
    }

    // MARK: - Lookups

    struct StoredSubscription {
        var accountID: AccountID
        var membershipID: Int64?
        var product: String
        var status: BillingStatus
        var periodEnd: Date?
        var graceEnd: Date?
        var cancelAtPeriodEnd: Bool
        var isFinal: Bool
        var asOf: Date
        /// The provider's word for the state last applied (``SubscriptionState/providerStatus``).
        var providerStatus: String
    }

    func subscription(_ provider: BillingProvider, _ id: String) throws -> StoredSubscription? {
        try db.fetchOne("""
            SELECT account_id, membership_id, product, status, period_end, grace_end, cancel_at_period_end, final, as_of, provider_status
            FROM billing_subscriptions WHERE provider = ? AND subscription_id = ?
            """, [provider.rawValue, id]).map { row in
            StoredSubscription(
                accountID: AccountID(rawValue: row[0]), membershipID: row[1], product: row[2], status: BillingStatus(rawValue: row[3]) ?? .expired,
                periodEnd: (row[4] as Int64?).map(Date.init(millis:)), graceEnd: (row[5] as Int64?).map(Date.init(millis:)),
                cancelAtPeriodEnd: row[6], isFinal: row[7], asOf: Date(millis: row[8]), providerStatus: row[9])
        }
    }

    /// Makes every pending event of a subscription wait for the subscription itself,
    /// whatever it waited for (its customer's link, say); returns that key, for ``drain(_:)``.
    func wakeWaiting(_ provider: BillingProvider, subscription: String) throws -> String {
        let key = Self.key(provider, subscription: subscription)
        try db.execute("""
            UPDATE billing_events SET waiting_for = ? WHERE provider = ? AND subscription_id = ? AND outcome = 'pending' AND waiting_for IS NOT NULL
            """, [key, provider.rawValue, subscription])
        return key
    }

    func linkedAccount(_ provider: BillingProvider, _ customer: String) throws -> AccountID? {
        try db.fetchValue(String.self, "SELECT account_id FROM billing_customers WHERE provider = ? AND customer_id = ?", [provider.rawValue, customer]).map(AccountID.init(rawValue:))
    }

    func insertLink(_ provider: BillingProvider, _ customer: String, _ accountID: AccountID, actor: AuditActor) throws {
        try db.execute("INSERT INTO billing_customers (provider, customer_id, account_id, created_at) VALUES (?, ?, ?, ?)", [provider.rawValue, customer, accountID.rawValue, now.millis])
        try store.audit(db, actor: actor, action: "billing.link", target: "account:\(accountID)", details: ["provider": provider.rawValue, "customer": customer])
    }

    /// The first of `products` mapped to a plan.
    func plan(_ provider: BillingProvider, _ products: [String]) throws -> (product: String, plan: PlanID)? {
        for product in products {
            if let plan = try db.fetchValue(String.self, "SELECT plan_id FROM billing_plans WHERE provider = ? AND external_id = ?", [provider.rawValue, product]) {
                return (product, PlanID(rawValue: plan))
            }
        }
        return nil
    }

    /// The plan of the membership a stored subscription holds (for events naming no price).
    func storedPlan(_ provider: BillingProvider, _ stored: StoredSubscription?) throws -> PlanID? {
        guard let stored else { return nil }
        if let mapped = try plan(provider, [stored.product]) { return mapped.plan }
        guard let id = stored.membershipID else { return nil }
        return try Store.membership(db, id).planID
    }
}

extension Store {
    static func requireAccountOrNil(_ db: any SQLConnection, _ id: AccountID) throws -> Bool {
        try db.fetchValue(Bool.self, "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?)", [id.rawValue]) ?? false
    }
}
