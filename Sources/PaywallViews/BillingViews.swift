import Foundation
import PaywallCore
import PaywallService

/// What became of a provider event (the CLI's replay and retry, the webhooks' answers).
public struct BillingResultView: Encodable, Sendable {
    public var provider: String
    public var event: String
    public var type: String
    public var outcome: String
    public var detail: String?

    public init(_ result: BillingResult) {
        provider = result.provider.rawValue
        event = result.eventID
        type = result.type
        outcome = result.outcome.rawValue
        detail = result.detail
    }
}

/// A stored provider event.
public struct BillingEventView: Encodable, Sendable {
    public var provider: String
    public var event: String
    public var type: String
    public var outcome: String
    public var detail: String?
    public var customer: String?
    public var subscription: String?
    public var account: String?
    public var occurredAt: Date
    public var receivedAt: Date
    public var attempts: Int

    public init(_ record: BillingEventRecord) {
        provider = record.provider.rawValue
        event = record.eventID
        type = record.type
        outcome = record.outcome.rawValue
        detail = record.detail
        customer = record.customer
        subscription = record.subscriptionID
        account = record.accountID?.rawValue
        occurredAt = record.occurredAt
        receivedAt = record.receivedAt
        attempts = record.attempts
    }
}

/// A Stripe price or App Store product and the plan it buys.
public struct BillingProductView: Encodable, Sendable {
    public var provider: String
    public var product: String
    public var plan: String

    public init(_ mapping: BillingPlanMapping) {
        provider = mapping.provider.rawValue
        product = mapping.externalID
        plan = mapping.planID.rawValue
    }
}

/// An account's provider links, subscriptions and recent events.
public struct BillingOverviewView: Encodable, Sendable {
    public struct Link: Encodable, Sendable {
        public var provider: String
        public var customer: String
        public var linkedAt: Date
    }

    public struct Subscription: Encodable, Sendable {
        public var provider: String
        public var id: String
        public var product: String
        public var status: String
        public var providerStatus: String
        public var periodEnd: Date?
        public var cancelAtPeriodEnd: Bool
        public var membership: Int64?
        public var asOf: Date
    }

    public var account: AccountView
    public var links: [Link]
    public var subscriptions: [Subscription]
    public var events: [BillingEventView]

    public init(_ overview: PaywallService.BillingOverview) {
        account = AccountView(overview.account)
        links = overview.links.map { Link(provider: $0.provider.rawValue, customer: $0.customer, linkedAt: $0.createdAt) }
        subscriptions = overview.subscriptions.map {
            Subscription(
                provider: $0.provider.rawValue, id: $0.id, product: $0.product, status: $0.status.rawValue, providerStatus: $0.providerStatus,
                periodEnd: $0.periodEnd, cancelAtPeriodEnd: $0.cancelAtPeriodEnd, membership: $0.membershipID, asOf: $0.asOf)
        }
        events = overview.events.map(BillingEventView.init)
    }
}
