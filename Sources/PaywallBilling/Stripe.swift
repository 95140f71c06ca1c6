import Foundation
import PaywallCore
import PaywallCrypto

/// Verifies Stripe's webhook signatures as Stripe documents them: the `Stripe-Signature`
/// header is `t=<unix seconds>,v1=<hex>,v1=<hex>,…` (other schemes, such as `v0`, are
/// ignored); a `v1` is HMAC-SHA256 of `"<t>.<raw body>"` under the endpoint's secret. Any
/// `v1` matching under any configured secret passes (Stripe sends one per live secret
/// while a secret is rolled), compared in constant time, and `t` must be within the
/// tolerance of now so a captured request cannot be replayed later.
public struct StripeSignatureVerifier: Sendable {
    public let secrets: [String]
    public let tolerance: TimeInterval

    public init(secrets: [String], tolerance: TimeInterval = 300) {
        self.secrets = secrets
        self.tolerance = tolerance
    }

    public func verify(body: [UInt8], header: String?, now: Date) throws(BillingError) {
        guard let header, !header.isEmpty else { throw .missingSignature }
        // A header far larger than any Stripe sends is not worth parsing.
        guard header.utf8.count <= 4096 else { throw .malformedSignature("longer than 4096 bytes") }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            switch key {
            case "t":
                guard timestamp == nil, let seconds = Int64(value), seconds > 0 else { throw .malformedSignature("the timestamp 't' is not one whole number") }
                timestamp = seconds
            case "v1":
                // A value that is not 64 hex digits cannot match: skip it, as Stripe's libraries do.
                if let bytes = Self.hex(value) { signatures.append(bytes) }
            default:
                continue
            }
        }
        guard let timestamp else { throw .malformedSignature("no timestamp 't'") }
        guard !signatures.isEmpty else { throw .malformedSignature("no v1 signature") }
        let message = Array("\(timestamp).".utf8) + body
        var matched = false
        // Every secret against every value, without stopping early: the time taken says
        // nothing about which one matched.
        for secret in secrets {
            guard let expected = HMACSHA256.authenticate(key: Array(secret.utf8), message: message) else { continue }  // matches nothing
            for signature in signatures where ConstantTime.equal(expected, signature) { matched = true }
        }
        guard matched else { throw .signatureMismatch }
        let age = now.timeIntervalSince1970 - TimeInterval(timestamp)
        guard abs(age) <= tolerance else { throw .timestampOutOfTolerance(seconds: Int(age.rounded())) }
    }

    /// Signs as Stripe does (for tests, replays and the CLI's examples).
    public static func header(body: [UInt8], secret: String, timestamp: Int64) -> String {
        let mac = HMACSHA256.authenticate(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + body) ?? []
        return "t=\(timestamp),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    static func hex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Reads a verified Stripe event into the change it asks of our memberships.
public enum StripeEvent {
    /// The event types we act on; Stripe sends only those the endpoint subscribes to.
    public static let handledTypes: Set<String> = [
        "checkout.session.completed", "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
        "invoice.paid", "invoice.payment_failed",
    ]

    /// An event's id, type and time as far as they can be read, for an event whose
    /// ``parse(_:grace:livemode:)`` failed: nil when not even those are there.
    public static func identity(_ body: [UInt8]) -> (id: String, type: String, created: Date?)? {
        guard let event = try? JSONFields.parse(body), let (id, type) = try? identity(of: event), !id.isEmpty else { return nil }
        return (id, type, (try? event.seconds("created")) ?? nil)
    }

    /// An event's id and type, as every event must have them.
    static func identity(of event: JSONFields) throws(BillingError) -> (id: String, type: String) {
        let id = try event.requiredString("id")
        let type = try event.requiredString("type")
        guard id.utf8.count <= 255, type.utf8.count <= 255 else { throw .malformedEvent("the id or type is longer than 255 bytes") }
        return (id, type)
    }

    /// The event's id and type, and its change (nil for a type we do not act on).
    /// `grace` is how long a failed payment keeps access (Stripe retries meanwhile).
    /// `livemode`, when given, is the only mode taken (Stripe's `livemode` on the event).
    public static func parse(_ body: [UInt8], grace: TimeInterval, livemode expected: Bool? = nil) throws(BillingError) -> (id: String, type: String, change: BillingChange?) {
        let event = try JSONFields.parse(body)
        let (id, type) = try identity(of: event)
        if let expected {
            guard let livemode = try event.bool("livemode") else { throw .malformedEvent("'livemode' is required when PAYWALL_STRIPE_MODE is set") }
            if livemode != expected { throw .wrongEnvironment(livemode ? "live" : "test") }
        }
        guard handledTypes.contains(type) else { return (id, type, nil) }
        guard let created = try event.seconds("created") else { throw .malformedEvent("'created' is required") }
        guard let object = try event.fields("data")?.fields("object") else { throw .malformedEvent("'data.object' is required") }
        var change = BillingChange(provider: .stripe, eventID: id, type: type, occurredAt: created)
        switch type {
        case "checkout.session.completed":
            change.customer = try object.id("customer")
            change.linkAccount = try object.string("client_reference_id")
            change.checkoutSubscription = try object.id("subscription")
        case "customer.subscription.deleted":
            change.customer = try object.id("customer")
            change.subscriptionAccount = try accountInMetadata(object)
            var state = try subscription(object, grace: grace, at: created)
            // Deleted: the subscription is over for good, whatever status it shows.
            state.status = .expired
            state.isFinal = true
            state.providerStatus = "deleted (\(state.providerStatus))"
            change.subscription = state
        case "customer.subscription.created", "customer.subscription.updated":
            change.customer = try object.id("customer")
            change.subscriptionAccount = try accountInMetadata(object)
            change.subscription = try subscription(object, grace: grace, at: created)
        case "invoice.paid", "invoice.payment_failed":
            // Only a renewal's or a first invoice's failure says the subscription is unpaid.
            // An upgrade's invoice that fails (`subscription_update`; with Stripe's
            // `pending_if_incomplete` the subscription stays active on its old price) or a
            // one-off invoice leaves it as it is: taken as past due, the reader lost at the
            // grace's end the period paid for (found in review). Should Stripe make the
            // subscription past due, its own `customer.subscription.updated` says so.
            if type == "invoice.payment_failed", let reason = try object.string("billing_reason"),
               !["subscription_cycle", "subscription_create", "subscription", "subscription_threshold"].contains(reason) {
                return (id, type, nil)
            }
            change.customer = try object.id("customer")
            // Current API versions name the subscription under `parent.subscription_details`;
            // older ones on the invoice itself. An invoice of no subscription is not ours.
            var details = try object.fields("parent")?.fields("subscription_details")
            if details == nil { details = try object.fields("subscription_details") }
            var subscriptionID = try details?.id("subscription")
            if subscriptionID == nil { subscriptionID = try object.id("subscription") }
            if let details { change.subscriptionAccount = try accountInMetadata(details) }
            guard let subscriptionID else { return (id, type, change) }
            let lines = try object.fields("lines")?.list("data") ?? []
            var prices: [String] = []
            var periodEnd: Date?
            for line in lines {
                // Proration lines (a plan change's credit for unused time on the old price, or
                // its remainder) do not say what the reader now has: the first mapped price of
                // an upgrade's invoice would otherwise put them back on the old plan.
                // Where the flag is: on the line (older API versions), or under its parent's
                // details, of a subscription item or of an invoice item (a pending proration
                // invoiced later: with the default `create_prorations`, a renewal invoice
                // carries the positive lines of a mid-period change; found in review).
                var proration = try line.bool("proration")
                let parent = try line.fields("parent")
                if proration != true, try parent?.fields("subscription_item_details")?.bool("proration") == true { proration = true }
                if proration != true, try parent?.fields("invoice_item_details")?.bool("proration") == true { proration = true }
                let amount = try line.integer("amount") ?? 0
                if proration == true || amount < 0 { continue }
                // Current versions: `pricing.price_details.price`; older: `price`.
                var price = try line.fields("pricing")?.fields("price_details")?.id("price")
                if price == nil { price = try line.id("price") }
                if let price { prices.append(price) }
                if let end = try line.fields("period")?.seconds("end") { periodEnd = max(periodEnd ?? end, end) }
            }
            if type == "invoice.paid" {
                change.subscription = SubscriptionState(
                    id: subscriptionID, products: prices, status: .active, providerStatus: SubscriptionState.paidInvoice, periodEnd: periodEnd)
            } else {
                change.subscription = SubscriptionState(
                    id: subscriptionID, products: prices, status: .pastDue, providerStatus: SubscriptionState.failedPayment,
                    graceEnd: created.addingTimeInterval(grace))
            }
        default:
            return (id, type, nil)
        }
        return (id, type, change)
    }

    /// The metadata key naming the account a subscription is for: set it through the
    /// Checkout session (`subscription_data[metadata][paywall_account]`, our account id).
    public static let accountMetadataKey = "paywall_account"

    /// The account an object's `metadata` names (nil: none, or empty).
    static func accountInMetadata(_ object: JSONFields) throws(BillingError) -> String? {
        guard let account = try object.fields("metadata")?.string(accountMetadataKey), !account.isEmpty else { return nil }
        return account
    }

    /// A subscription object as our state: Stripe's status mapped, the period end read
    /// from the items (current API versions) or the subscription (older ones).
    static func subscription(_ object: JSONFields, grace: TimeInterval, at created: Date) throws(BillingError) -> SubscriptionState {
        let id = try object.requiredString("id")
        let status = try object.requiredString("status")
        let items = try object.fields("items")?.list("data") ?? []
        var prices: [String] = []
        var itemEnd: Date?
        for item in items {
            var price = try item.id("price")
            if price == nil { price = try item.fields("plan")?.string("id") }
            if let price { prices.append(price) }
            if let end = try item.seconds("current_period_end") { itemEnd = max(itemEnd ?? end, end) }
        }
        var periodEnd = itemEnd
        if periodEnd == nil { periodEnd = try object.seconds("current_period_end") }
        if periodEnd == nil, status == "trialing" { periodEnd = try object.seconds("trial_end") }
        // `cancel_at` set (a date chosen to end it) means no renewal, as cancel at period end does.
        let cancelAt = try object.integer("cancel_at")
        let cancel = try object.bool("cancel_at_period_end") ?? false || cancelAt != nil
        var state = SubscriptionState(id: id, products: prices, status: nil, providerStatus: status, periodEnd: periodEnd, cancelAtPeriodEnd: cancel)
        switch status {
        case "trialing", "active":
            state.status = .active
        case "past_due":
            // Stripe retries the payment meanwhile; access lasts the grace period.
            state.status = .pastDue
            state.graceEnd = created.addingTimeInterval(grace)
        case "unpaid", "paused", "incomplete":
            // Retries exhausted, a trial ended without a payment method, a first payment not
            // made: no access, but the subscription may still become active.
            state.status = .expired
        case "canceled", "incomplete_expired":
            state.status = .expired
            state.isFinal = true
        default:
            throw .malformedEvent("unknown subscription status '\(status.prefix(32))'")
        }
        return state
    }
}
