import Foundation

/// A payment provider whose events keep memberships in step.
public enum BillingProvider: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Stripe Billing (the web shop).
    case stripe
    /// The App Store (the app), through App Store Server Notifications V2.
    case apple

    public var description: String { rawValue }
    /// The source memberships made from this provider's events carry.
    public var membershipSource: MembershipSource { MembershipSource(rawValue: rawValue) }
    /// Who changes memberships on this provider's behalf (history and audit log).
    public var actor: AuditActor { AuditActor(rawValue: "billing:\(rawValue)") }
}

extension MembershipSource {
    /// Paid through Stripe.
    public static let stripe = MembershipSource(rawValue: "stripe")
    /// Paid through the App Store.
    public static let apple = MembershipSource(rawValue: "apple")
}

/// What a provider says a subscription gives access to.
public enum BillingStatus: String, Hashable, Sendable, Codable {
    /// Paid (or in a trial) until the period end.
    case active
    /// A payment failed: access until the grace end.
    case pastDue = "past_due"
    /// No access (ended, refunded, unpaid, never paid).
    case expired
}

/// A subscription as one event shows it. Nil fields are not in the event (an invoice
/// does not say whether the subscription will renew): what is stored stays.
public struct SubscriptionState: Hashable, Sendable, Codable {
    /// Stripe's subscription id, or the App Store's original transaction id.
    public var id: String
    /// Stripe price ids or the App Store product id, most relevant first: the first one
    /// mapped to a plan decides the plan. Empty: unchanged.
    public var products: [String]
    public var status: BillingStatus?
    /// The provider's own word for the state (`trialing`, `DID_RENEW/BILLING_RECOVERY`…).
    public var providerStatus: String
    /// ``providerStatus`` of a Stripe `invoice.payment_failed`.
    public static let failedPayment = "invoice payment failed"
    /// ``providerStatus`` of a Stripe `invoice.paid`.
    public static let paidInvoice = "invoice paid"
    public var periodEnd: Date?
    public var graceEnd: Date?
    public var cancelAtPeriodEnd: Bool?
    /// Nothing later can revive the subscription (a deleted Stripe subscription): later
    /// events for it are stale.
    public var isFinal: Bool

    public init(
        id: String, products: [String] = [], status: BillingStatus?, providerStatus: String, periodEnd: Date? = nil,
        graceEnd: Date? = nil, cancelAtPeriodEnd: Bool? = nil, isFinal: Bool = false
    ) {
        self.id = id
        self.products = products
        self.status = status
        self.providerStatus = providerStatus
        self.periodEnd = periodEnd
        self.graceEnd = graceEnd
        self.cancelAtPeriodEnd = cancelAtPeriodEnd
        self.isFinal = isFinal
    }
}

/// One verified provider event, reduced to what it asks of our memberships. Stored as it
/// is with the event (JSON), so a pending or failed event can be applied later.
public struct BillingChange: Hashable, Sendable, Codable {
    public var provider: BillingProvider
    /// Stripe's event id, or the App Store's notificationUUID: each is applied once.
    public var eventID: String
    /// The event's type (`invoice.paid`, `DID_FAIL_TO_RENEW/GRACE_PERIOD`).
    public var type: String
    /// When the provider made the event: an older snapshot never overwrites a newer one.
    public var occurredAt: Date
    /// The provider's customer: a Stripe customer id, or the appAccountToken we gave the app.
    public var customer: String?
    /// The account (our id) the customer is to be linked to (`client_reference_id` of a
    /// Stripe Checkout session).
    public var linkAccount: String?
    /// The account (our id) the subscription itself names, whatever account its customer is
    /// linked to: Stripe's `metadata.paywall_account` on a subscription (set through a
    /// Checkout session's `subscription_data.metadata`) or on an invoice's subscription,
    /// carried by every event of the subscription, so it holds in any order of delivery.
    /// Also set on an event waiting for an account when an admin links its subscription to
    /// one (`paywall billing link-subscription`).
    public var subscriptionAccount: String?
    /// The subscription a Stripe Checkout session started (its `subscription`): when the
    /// session's customer is already another account's, whether the session did what it
    /// should depends on the account that subscription went to.
    public var checkoutSubscription: String?
    public var subscription: SubscriptionState?

    public init(
        provider: BillingProvider, eventID: String, type: String, occurredAt: Date, customer: String? = nil,
        linkAccount: String? = nil, subscription: SubscriptionState? = nil
    ) {
        self.provider = provider
        self.eventID = eventID
        self.type = type
        self.occurredAt = occurredAt
        self.customer = customer
        self.linkAccount = linkAccount
        self.subscription = subscription
    }
}

/// What became of an event.
public enum BillingOutcome: String, Hashable, Sendable, Codable, CaseIterable {
    /// Its change is in the memberships.
    case applied
    /// Seen before (same event id): nothing done again.
    case duplicate
    /// Kept until its customer is linked to an account (or its subscription is known).
    case pending
    /// Older than what is already applied for its subscription: recorded, not applied.
    case stale
    /// Could not be applied (no plan for its price, no such account…): recorded with the
    /// reason, applied again by `paywall billing retry` or a redelivery.
    case failed
    /// A type or shape we do not act on (a one-off invoice, a TEST notification).
    case ignored
}

/// The result of taking one event.
public struct BillingResult: Hashable, Sendable {
    public var provider: BillingProvider
    public var eventID: String
    public var type: String
    public var outcome: BillingOutcome
    /// Why it is pending, stale, failed or ignored.
    public var detail: String?
    public var accountID: AccountID?
    public var membershipID: Int64?

    public init(
        provider: BillingProvider, eventID: String, type: String, outcome: BillingOutcome, detail: String? = nil,
        accountID: AccountID? = nil, membershipID: Int64? = nil
    ) {
        self.provider = provider
        self.eventID = eventID
        self.type = type
        self.outcome = outcome
        self.detail = detail
        self.accountID = accountID
        self.membershipID = membershipID
    }
}

/// A stored event.
public struct BillingEventRecord: Hashable, Sendable {
    public var id: Int64
    public var provider: BillingProvider
    public var eventID: String
    public var type: String
    public var outcome: BillingOutcome
    public var detail: String?
    public var customer: String?
    public var subscriptionID: String?
    public var accountID: AccountID?
    public var occurredAt: Date
    public var receivedAt: Date
    public var attempts: Int

    public init(
        id: Int64, provider: BillingProvider, eventID: String, type: String, outcome: BillingOutcome, detail: String?, customer: String?,
        subscriptionID: String?, accountID: AccountID?, occurredAt: Date, receivedAt: Date, attempts: Int
    ) {
        self.id = id
        self.provider = provider
        self.eventID = eventID
        self.type = type
        self.outcome = outcome
        self.detail = detail
        self.customer = customer
        self.subscriptionID = subscriptionID
        self.accountID = accountID
        self.occurredAt = occurredAt
        self.receivedAt = receivedAt
        self.attempts = attempts
    }
}

/// A provider customer linked to an account.
public struct BillingLink: Hashable, Sendable {
    public var provider: BillingProvider
    /// A Stripe customer id, or the appAccountToken given to the app.
    public var customer: String
    public var accountID: AccountID
    public var createdAt: Date

    public init(provider: BillingProvider, customer: String, accountID: AccountID, createdAt: Date) {
        self.provider = provider
        self.customer = customer
        self.accountID = accountID
        self.createdAt = createdAt
    }
}

/// A provider subscription as last applied.
public struct BillingSubscription: Hashable, Sendable {
    public var provider: BillingProvider
    public var id: String
    public var accountID: AccountID
    public var membershipID: Int64?
    public var product: String
    public var status: BillingStatus
    public var providerStatus: String
    public var periodEnd: Date?
    public var cancelAtPeriodEnd: Bool
    /// The provider time of the newest event applied.
    public var asOf: Date

    public init(
        provider: BillingProvider, id: String, accountID: AccountID, membershipID: Int64?, product: String, status: BillingStatus,
        providerStatus: String, periodEnd: Date?, cancelAtPeriodEnd: Bool, asOf: Date
    ) {
        self.provider = provider
        self.id = id
        self.accountID = accountID
        self.membershipID = membershipID
        self.product = product
        self.status = status
        self.providerStatus = providerStatus
        self.periodEnd = periodEnd
        self.cancelAtPeriodEnd = cancelAtPeriodEnd
        self.asOf = asOf
    }
}

/// A provider's price (Stripe) or product (App Store) and the plan it buys.
public struct BillingPlanMapping: Hashable, Sendable {
    public var provider: BillingProvider
    public var externalID: String
    public var planID: PlanID

    public init(provider: BillingProvider, externalID: String, planID: PlanID) {
        self.provider = provider
        self.externalID = externalID
        self.planID = planID
    }
}

extension Sequence where Element == BillingResult {
    /// How many results of each outcome, as audit details (`applied: "2"`, …; none for an
    /// outcome no result has).
    public var outcomeCounts: [String: String] {
        Dictionary(grouping: self, by: \.outcome.rawValue).mapValues { String($0.count) }
    }
}
