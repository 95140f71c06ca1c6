import Foundation

/// A membership's state.
public enum MembershipStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// Paid up (or comped) for the current period.
    case active
    /// A payment failed; access continues until the grace period ends.
    case pastDue = "past_due"
    /// Canceled; access continues until the current period ends (or, if it was canceled
    /// while past due, until the grace end when that comes first).
    case canceled
    /// Over: no access.
    case expired
}

/// Where a membership came from.
public struct MembershipSource: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// Granted by an administrator.
    public static let admin = MembershipSource(rawValue: "admin")
    /// Complimentary access granted by support staff.
    public static let comp = MembershipSource(rawValue: "comp")
    public var description: String { rawValue }
    /// Paid through a payment provider (`stripe`, `apple`): the provider's events change it,
    /// not an administrator (its next event would undo the change).
    public var isProvider: Bool { rawValue == "stripe" || rawValue == "apple" }
}

/// An account's membership of a plan.
public struct Membership: Hashable, Sendable {
    public var id: Int64
    public var accountID: AccountID
    public var planID: PlanID
    public var status: MembershipStatus
    public var currentPeriodEnd: Date
    public var gracePeriodEnd: Date?
    public var cancelAtPeriodEnd: Bool
    public var source: MembershipSource
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: Int64, accountID: AccountID, planID: PlanID, status: MembershipStatus,
        currentPeriodEnd: Date, gracePeriodEnd: Date?, cancelAtPeriodEnd: Bool,
        source: MembershipSource, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.accountID = accountID
        self.planID = planID
        self.status = status
        self.currentPeriodEnd = currentPeriodEnd
        self.gracePeriodEnd = gracePeriodEnd
        self.cancelAtPeriodEnd = cancelAtPeriodEnd
        self.source = source
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The status at `now`: an active or canceled membership past its period end, or a
    /// past-due one past its grace period, has expired even before a job stores it so.
    public func effectiveStatus(at now: Date) -> MembershipStatus {
        grantsAccess(at: now) ? status : .expired
    }

    /// Whether the membership gives access at `now`: before ``accessEnd``, unless expired.
    public func grantsAccess(at now: Date) -> Bool {
        status != .expired && now < accessEnd
    }

    /// When access ends: for an active membership its period end; for a past-due one its
    /// grace end; for a canceled one its period end, or its grace end if it was canceled
    /// while past due (a reader whose payment failed must not read on to the end of a period
    /// nobody paid for because the membership was then canceled; the grace end is kept
    /// through the cancellation for that, and cleared when a membership becomes active).
    public var accessEnd: Date {
        switch status {
        case .active, .expired: currentPeriodEnd
        case .pastDue: gracePeriodEnd ?? currentPeriodEnd
        case .canceled: min(currentPeriodEnd, gracePeriodEnd ?? currentPeriodEnd)
        }
    }
}

/// One entry of a membership's status history.
public struct MembershipStatusChange: Hashable, Sendable {
    public var membershipID: Int64
    public var from: MembershipStatus?
    public var to: MembershipStatus
    public var at: Date
    public var actor: String
    public var reason: String?

    public init(membershipID: Int64, from: MembershipStatus?, to: MembershipStatus, at: Date, actor: String, reason: String?) {
        self.membershipID = membershipID
        self.from = from
        self.to = to
        self.at = at
        self.actor = actor
        self.reason = reason
    }
}
