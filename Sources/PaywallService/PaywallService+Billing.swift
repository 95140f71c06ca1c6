import Foundation
import Metrics
import PaywallBilling
import PaywallCore
import PaywallCrypto
import PaywallStore

/// Memberships from payments: Stripe webhooks and App Store Server Notifications. The
/// providers' requests are verified (PaywallBilling), reduced to a change, and applied by
/// the store in one transaction per event (see ``Store/applyBilling(_:)``).
extension PaywallService {
    /// Refuses with 404 `billing_not_configured` when this server takes no events from
    /// `provider`: the routes ask first, so an unconfigured provider answers that whatever
    /// the body (a malformed body was 400 before, which said nothing of the setting).
    public func requireBillingConfigured(_ provider: BillingProvider) throws(ServiceError) {
        let configured = switch provider {
        case .stripe: !configuration.stripeWebhookSecrets.isEmpty
        case .apple: configuration.appleRootCertificate != nil && configuration.appleBundleID != nil
        }
        if !configured { throw .billing(.notConfigured(provider)) }
    }

    /// Takes a Stripe webhook: `body` exactly as received (the signature covers its bytes)
    /// and the `Stripe-Signature` header. Refusals write nothing.
    public func receiveStripeEvent(body: [UInt8], signature: String?) throws(ServiceError) -> BillingResult {
        BillingMetrics.count("received", .stripe, type: "unverified")
        do {
            let secrets = configuration.stripeWebhookSecrets
            guard !secrets.isEmpty else { throw BillingError.notConfigured(.stripe) }
            try StripeSignatureVerifier(secrets: secrets).verify(body: body, header: signature, now: now)
            do {
                return try takeStripe(body: body)
            } catch let BillingError.malformedEvent(reason) {
                // Stripe signed it, and this server cannot read it: kept, failed, to be read
                // again by `billing retry` (after an upgrade, a setting), not lost once Stripe
                // stops delivering it. An event whose id and type cannot be read is refused.
                guard let identity = StripeEvent.identity(body) else { throw BillingError.malformedEvent(reason) }
                let result = try mapped {
                    try store.recordUnreadBillingEvent(
                        provider: .stripe, eventID: identity.id, type: identity.type, occurredAt: identity.created ?? now,
                        body: String(decoding: body, as: UTF8.self), reason: reason)
                }
                BillingMetrics.count(result.outcome.rawValue, .stripe, type: identity.type)
                return result
            }
        } catch let error as BillingError {
            BillingMetrics.count("refused", .stripe, type: "unverified")
            throw ServiceError.billing(error)
        } catch {
            throw ServiceError.wrapping(error)
        }
    }

    /// Takes an App Store Server Notification V2 (the `signedPayload` of its body).
    public func receiveAppleNotification(signedPayload: String) throws(ServiceError) -> BillingResult {
        BillingMetrics.count("received", .apple, type: "unverified")
        do {
            let (id, type, change) = try AppStoreNotification.parse(signedPayload: signedPayload, verifier: try appStoreVerifier(), now: now)
            return try take(.apple, id: id, type: type, change: change)
        } catch let error as BillingError {
            BillingMetrics.count("refused", .apple, type: "unverified")
            throw ServiceError.billing(error)
        } catch {
            throw ServiceError.wrapping(error)
        }
    }

    /// Applies events from a file again (recovery): Stripe events as JSON, one per line or
    /// a JSON array, taken without their signatures (the operator vouches for the file);
    /// App Store `signedPayload`s one per line, verified as on the route. Events already
    /// applied are duplicates and change nothing.
    ///
    /// A refused event stops the replay, saying which it was and how many before it were
    /// applied (found in review: it stopped without saying where, the file half applied).
    ///
    /// `taken` hears each event's result as it is taken, so that a caller can show what
    /// became of those before a refusal (found in review: they were dropped with the error,
    /// and the message called pending and failed ones applied).
    ///
    /// Audited as `billing.replay` (who, from where, how many events and what became of
    /// them), stopped or not: the memberships it makes are audited as the provider's, as a
    /// webhook's would be, and without this entry nothing told them apart (found in review).
    public func replayBillingEvents(
        provider: BillingProvider, contents: [UInt8], actor: AuditActor, source: String, taken: (BillingResult) -> Void = { _ in }
    ) throws(ServiceError) -> [BillingResult] {
        let apply: [() throws -> BillingResult]
        do {
            switch provider {
            case .stripe:
                apply = try Self.stripeEvents(in: contents).map { event in { try self.takeStripe(body: event) } }
            case .apple:
                let verifier = try appStoreVerifier()
                apply = String(decoding: contents, as: UTF8.self).split(whereSeparator: \.isNewline).map { line in
                    {
                        var text = line.trimmingCharacters(in: .whitespaces)
                        // A line may be the notification's whole body, `{"signedPayload": "…"}`.
                        if text.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                           let payload = object["signedPayload"] as? String {
                            text = payload
                        }
                        let (id, type, change) = try AppStoreNotification.parse(signedPayload: text, verifier: verifier, now: self.now)
                        return try self.take(.apple, id: id, type: type, change: change)
                    }
                }
            }
        } catch {
            throw ServiceError.wrapping(error)
        }
        var results: [BillingResult] = []
        for (index, event) in apply.enumerated() {
            do {
                let result = try event()
                results.append(result)
                taken(result)
            } catch {
                let refusal = ServiceError.wrapping(error)
                try auditReplay(provider, results, total: apply.count, stoppedAt: index + 1, actor: actor, source: source)
                throw .billingReplayStopped(
                    event: index + 1, total: apply.count, reason: refusal.description, transient: refusal.category == .unavailable)
            }
        }
        try auditReplay(provider, results, total: apply.count, stoppedAt: nil, actor: actor, source: source)
        return results
    }

    /// The `billing.replay` entry: the events' count, what became of those taken (by
    /// outcome), the first and last event ids, and where it stopped.
    private func auditReplay(
        _ provider: BillingProvider, _ results: [BillingResult], total: Int, stoppedAt: Int?, actor: AuditActor, source: String
    ) throws(ServiceError) {
        var details = results.outcomeCounts.merging(["provider": provider.rawValue, "source": String(source.prefix(200)), "events": String(total)]) { $1 }
        if let first = results.first { details["first"] = first.eventID }
        if let last = results.last, results.count > 1 { details["last"] = last.eventID }
        if let stoppedAt { details["stoppedAt"] = String(stoppedAt) }
        try mapped { try store.recordAudit(actor: actor, action: "billing.replay", target: "billing", details: details) }
    }

    /// Applies again the events that could not be applied (after a price was mapped or a
    /// customer linked by hand).
    /// Audited as `billing.retry` with what became of the events (who asked, and when, is
    /// what support looks for after a price was mapped).
    ///
    /// Stripe events kept unread (``Store/recordUnreadBillingEvent(provider:eventID:type:occurredAt:body:reason:)``)
    /// are read again first: read, they are applied with the others in their order; still
    /// unreadable, they stay failed, said with why.
    public func retryBillingEvents(actor: AuditActor = .system) throws(ServiceError) -> [BillingResult] {
        var unread: [BillingResult] = []
        for event in try mapped({ try store.unreadBillingEvents() }) where event.provider == .stripe {
            do {
                let (_, _, change) = try StripeEvent.parse(Array(event.body.utf8), grace: configuration.stripeGracePeriod, livemode: configuration.stripeLivemode)
                try mapped { try store.readUnreadBillingEvent(id: event.id, change: change) }
                if change == nil {
                    unread.append(BillingResult(provider: .stripe, eventID: event.eventID, type: event.type, outcome: .ignored, detail: Store.ignoredOnRereadDetail))
                }
            } catch let error as BillingError {
                unread.append(BillingResult(provider: .stripe, eventID: event.eventID, type: event.type, outcome: .failed, detail: Store.unreadDetail(error.description)))
            } catch {
                throw ServiceError.wrapping(error)
            }
        }
        let results = unread + (try mapped { try store.retryBillingEvents(actor: actor) })
        results.forEach { BillingMetrics.count($0.outcome.rawValue, $0.provider, type: $0.type) }
        return results
    }

    /// The appAccountToken the app sets on its purchases for this account (made on first
    /// ask, then always the same): App Store notifications find the account by it.
    public func appAccountToken(account reference: String, actor: AuditActor) throws(ServiceError) -> UUID {
        try mapped {
            let account = try store.account(matching: reference)
            if let link = try store.billingLinks(accountID: account.id).first(where: { $0.provider == .apple }), let token = UUID(uuidString: link.customer) {
                return token
            }
            let token = UUID()
            let results = try store.linkBillingCustomer(provider: .apple, customer: token.uuidString.lowercased(), accountID: account.id, actor: actor)
            results.forEach { BillingMetrics.count($0.outcome.rawValue, $0.provider, type: $0.type) }
            return token
        }
    }

    /// Links a Stripe customer to an account by hand (a customer made outside Checkout);
    /// the events that waited for it are applied.
    public func linkStripeCustomer(_ customer: String, account reference: String, actor: AuditActor) throws(ServiceError) -> [BillingResult] {
        try mapped {
            guard customer.hasPrefix("cus_"), customer.utf8.count <= 255 else {
                throw DomainError.invalidValue(field: "customer", value: customer, expected: "a Stripe customer id such as cus_…")
            }
            let account = try store.account(matching: reference)
            let results = try store.linkBillingCustomer(provider: .stripe, customer: customer, accountID: account.id, actor: actor)
            results.forEach { BillingMetrics.count($0.outcome.rawValue, $0.provider, type: $0.type) }
            return results
        }
    }

    /// Gives a provider subscription whose events wait for an account to one (see
    /// ``Store/linkBillingSubscription(provider:subscription:accountID:actor:)``): for the
    /// App Store its original transaction id, for Stripe its `sub_…` id.
    public func linkBillingSubscription(_ subscription: String, provider: BillingProvider, account reference: String, actor: AuditActor) throws(ServiceError) -> [BillingResult] {
        try mapped {
            let valid = switch provider {
            case .apple: !subscription.isEmpty && subscription.utf8.count <= 64 && subscription.allSatisfy(\.isASCII) && subscription.allSatisfy(\.isNumber)
            case .stripe: subscription.hasPrefix("sub_") && subscription.utf8.count <= 255
            }
            guard valid else {
                throw DomainError.invalidValue(
                    field: "subscription", value: subscription,
                    expected: provider == .apple ? "an App Store original transaction id (digits)" : "a Stripe subscription id such as sub_…")
            }
            let account = try store.account(matching: reference)
            let results = try store.linkBillingSubscription(provider: provider, subscription: subscription, accountID: account.id, actor: actor)
            results.forEach { BillingMetrics.count($0.outcome.rawValue, $0.provider, type: $0.type) }
            return results
        }
    }

    /// Sets aside a pending or failed event that will never apply, with the reason (1 to
    /// 200 characters), audited (``Store/dismissBillingEvent(provider:eventID:reason:actor:)``).
    public func dismissBillingEvent(_ eventID: String, provider: BillingProvider, reason: String, actor: AuditActor) throws(ServiceError) -> BillingEventRecord {
        try mapped {
            let why = try validatedName(reason, kind: "reason")
            return try store.dismissBillingEvent(provider: provider, eventID: eventID, reason: why, actor: actor)
        }
    }

    /// What the payment providers know of an account.
    public struct BillingOverview: Sendable {
        public var account: Account
        public var links: [BillingLink]
        public var subscriptions: [BillingSubscription]
        public var events: [BillingEventRecord]
    }

    /// An account's provider links, subscriptions and recent events.
    public func billingOverview(account reference: String, limit: Int = 20) throws(ServiceError) -> BillingOverview {
        try mapped {
            let account = try store.account(matching: reference)
            return BillingOverview(
                account: account, links: try store.billingLinks(accountID: account.id), subscriptions: try store.billingSubscriptions(accountID: account.id),
                events: try store.billingEvents(accountID: account.id, limit: limit))
        }
    }

    /// Events not applied (pending, failed), newest first, with why.
    public func unappliedBillingEvents(limit: Int = 100) throws(ServiceError) -> [BillingEventRecord] {
        guard (1...1_000).contains(limit) else { throw .invalidInput(.invalidValue(field: "limit", value: String(limit), expected: "1 to 1000")) }
        return try mapped { try store.billingEvents(unappliedOnly: true, limit: limit) }
    }

    /// The same for an admin API call (audited as `admin.billing.events`).
    public func unappliedBillingEvents(limit: Int, by admin: AdminPrincipal) throws(ServiceError) -> [BillingEventRecord] {
        let events = try unappliedBillingEvents(limit: limit)
        return try auditedRead(admin, "admin.billing.events", target: "billing") { events }
    }

    /// An account's provider links, subscriptions and recent events for an admin API call
    /// (audited as `admin.billing.view`).
    public func billingOverview(account reference: String, by admin: AdminPrincipal) throws(ServiceError) -> BillingOverview {
        let overview = try billingOverview(account: reference)
        return try auditedRead(admin, "admin.billing.view", target: "account:\(overview.account.id)") { overview }
    }

    /// Maps a Stripe price or App Store product to a plan.
    public func mapBillingProduct(provider: BillingProvider, externalID: String, plan: String, actor: AuditActor) throws(ServiceError) -> BillingPlanMapping {
        try mapped {
            let id = externalID.trimmingCharacters(in: .whitespaces)
            // Stripe's ids (price_1Pg…) and App Store product ids (com.example.news.monthly)
            // are letters, digits, '.', '_' and '-': anything else is a paste gone wrong, and
            // would map a product no event ever names.
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".unicodeScalars)
            guard !id.isEmpty, id.utf8.count <= 255, id.unicodeScalars.allSatisfy(allowed.contains) else {
                throw DomainError.invalidValue(field: "product", value: externalID, expected: "a Stripe price id or App Store product id (1 to 255 letters, digits, '.', '_' or '-')")
            }
            return try store.mapBillingProduct(provider: provider, externalID: id, planID: try PlanID(validating: plan), actor: actor)
        }
    }

    /// Removes a price or product mapping.
    public func unmapBillingProduct(provider: BillingProvider, externalID: String, actor: AuditActor) throws(ServiceError) {
        try mapped {
            guard try store.unmapBillingProduct(provider: provider, externalID: externalID, actor: actor) else {
                throw StoreError.billingProductNotMapped(provider: provider.rawValue, product: externalID)
            }
        }
    }

    /// Every price and product mapping.
    public func billingMappings() throws(ServiceError) -> [BillingPlanMapping] {
        try mapped { try store.billingMappings() }
    }

    /// The same for an admin API call (audited as `admin.billing.products`, as every admin read is).
    public func billingMappings(by admin: AdminPrincipal) throws(ServiceError) -> [BillingPlanMapping] {
        try auditedRead(admin, "admin.billing.products", target: "billing") { try store.billingMappings() }
    }

    // MARK: - Helpers

    private func takeStripe(body: [UInt8]) throws -> BillingResult {
        let (id, type, change) = try StripeEvent.parse(body, grace: configuration.stripeGracePeriod, livemode: configuration.stripeLivemode)
        return try take(.stripe, id: id, type: type, change: change)
    }

    private func take(_ provider: BillingProvider, id: String, type: String, change: BillingChange?) throws -> BillingResult {
        // Types (and events, such as a refund of a transaction upgraded from) we do not act on
        // are answered, not stored: a redelivery changes nothing either.
        guard let change else {
            BillingMetrics.count("ignored", provider, type: type)
            return BillingResult(provider: provider, eventID: id, type: type, outcome: .ignored, detail: "nothing this service acts on (the type, or what this event says)")
        }
        let result = try store.applyBilling(change)
        BillingMetrics.count(result.outcome.rawValue, provider, type: type)
        return result
    }

    private func appStoreVerifier() throws(BillingError) -> AppStoreVerifier {
        guard let der = configuration.appleRootCertificate, let bundle = configuration.appleBundleID,
              let root = try? X509Certificate(der: der)
        else { throw .notConfigured(.apple) }
        return AppStoreVerifier(root: root, bundleID: bundle, environment: configuration.appleEnvironment)
    }

    /// The events of a replay file: a JSON array of events, or one event per line.
    static func stripeEvents(in contents: [UInt8]) throws -> [[UInt8]] {
        let text = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("[") {
            guard let list = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
                throw BillingError.malformedEvent("the file is not a JSON array of events")
            }
            return try list.map { try Array(JSONSerialization.data(withJSONObject: $0)) }
        }
        return text.split(whereSeparator: \.isNewline).map { Array($0.utf8) }.filter { !$0.isEmpty }
    }
}

/// Billing counters: `paywall_billing_events_total{provider, type, outcome}` where outcome
/// is received, refused (before the type is known: type `unverified`), or what became of
/// the event (applied, duplicate, pending, stale, failed, ignored). Types come from the
/// fixed sets the parsers act on, so the label stays bounded; others count as `other`.
enum BillingMetrics {
    static func count(_ outcome: String, _ provider: BillingProvider, type: String) {
        let known = StripeEvent.handledTypes.contains(type) || type == "unverified" || type.range(of: "^[A-Z_]{1,40}(/[A-Z_]{1,40})?$", options: .regularExpression) != nil
        Counter(label: "paywall_billing_events_total", dimensions: [
            ("provider", provider.rawValue), ("type", known ? type : "other"), ("outcome", outcome),
        ]).increment()
    }
}
