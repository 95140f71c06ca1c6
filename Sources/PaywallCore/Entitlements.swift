import Foundation

/// What a membership grants, as carried in an access token.
public struct MembershipEntitlement: Hashable, Sendable {
    public var status: MembershipStatus
    public var plan: PlanID
    public var titles: TitleBundle
    public var periodEnd: Date
    public var graceEnd: Date?

    public init(status: MembershipStatus, plan: PlanID, titles: TitleBundle, periodEnd: Date, graceEnd: Date?) {
        self.status = status
        self.plan = plan
        self.titles = titles
        self.periodEnd = periodEnd
        self.graceEnd = graceEnd
    }
}

/// A reader's entitlements at one instant: what the policy needs to decide offline.
public struct EntitlementSnapshot: Hashable, Sendable {
    /// Memberships that still grant access (active, canceled before period end, past due in grace).
    public var memberships: [MembershipEntitlement]
    /// When the reader's running trial ends, if one runs.
    public var trialEndsAt: Date?

    public init(memberships: [MembershipEntitlement], trialEndsAt: Date?) {
        self.memberships = memberships
        self.trialEndsAt = trialEndsAt
    }

    public static let none = EntitlementSnapshot(memberships: [], trialEndsAt: nil)
}
