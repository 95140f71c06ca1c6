import Foundation
import PaywallCore
import PaywallStore

extension PaywallService {
    /// Starts the one free trial of the account's person (default length from the
    /// configuration).
    public func startTrial(account reference: String, length: TimeInterval? = nil, actor: AuditActor) throws(ServiceError) -> Trial {
        try mapped {
            let account = try store.account(matching: reference)
            return try store.startTrial(accountID: account.id, duration: length ?? configuration.trialLength, actor: actor)
        }
    }

    /// Grants a membership of `plan` until `until` (default: one billing period from now).
    /// `reason`, kept in the membership's history, is 1 to 200 characters without control
    /// characters (it is printed on admins' terminals).
    public func grantMembership(
        account reference: String, plan: String, until: Date?, source: MembershipSource, actor: AuditActor, reason: String? = nil
    ) throws(ServiceError) -> Membership {
        try mapped {
            let reason = try reason.map { text throws(DomainError) in try validatedName(text, kind: "reason") }
            let account = try store.account(matching: reference)
            let planID = try PlanID(validating: plan)
            guard let found = try store.plan(id: planID) else { throw StoreError.planNotFound(planID.rawValue) }
            let end = until ?? now.addingTimeInterval(found.period.approximateLength)
            try Self.checkFutureEnd(end, field: "period end", now: now)
            return try store.grantMembership(accountID: account.id, planID: planID, periodEnd: end, source: source, actor: actor, reason: reason)
        }
    }

    /// An end an admin sets (a membership's period, a grace period): after now and at most
    /// 100 years ahead. "9999-12-31" for "forever" is refused with the limit named: no date
    /// that far fits a token's claims, and none is needed.
    static func checkFutureEnd(_ end: Date, field: String, now: Date) throws(DomainError) {
        guard end > now, end.timeIntervalSince(now) <= TimeText.maximumDuration else {
            throw DomainError.invalidValue(field: field, value: TimeText.format(end), expected: "a time in the future, at most 100 years ahead")
        }
    }

    /// How a membership is canceled.
    public enum Cancellation: Sendable {
        /// Status `canceled`: access until the period ends.
        case canceled
        /// Status `expired`: access ends now.
        case immediately
        /// Stays `active`, marked not to renew at the period end.
        case atPeriodEnd
    }

    /// Cancels an account's membership of `plan` (or its only live membership when `plan`
    /// is nil). `immediately` ends access now; otherwise at the end of the period.
    public func cancelMembership(account reference: String, plan: String?, immediately: Bool, actor: AuditActor) throws(ServiceError) -> Membership {
        try cancelMembership(account: reference, plan: plan, how: immediately ? .immediately : .canceled, actor: actor)
    }

    /// Cancels a membership in the way asked.
    public func cancelMembership(account reference: String, plan: String?, how: Cancellation, actor: AuditActor) throws(ServiceError) -> Membership {
        try mapped {
            let target = try liveMembership(account: reference, plan: plan)
            switch how {
            case .canceled: return try store.cancelMembership(id: target.id, immediately: false, actor: actor)
            case .immediately: return try store.cancelMembership(id: target.id, immediately: true, actor: actor)
            case .atPeriodEnd: return try store.scheduleCancellation(id: target.id, actor: actor)
            }
        }
    }

    /// Records that a reader opened an article.
    ///
    /// `actor`: an operator's read (`paywall meter record`) is audited as `meter.import`;
    /// nil for a reader's own.
    public func recordRead(subject: MeterSubject, title: String, article: String, at: Date? = nil, actor: AuditActor? = nil) throws(ServiceError) {
        let read = try articleRead(subject: subject, title: title, article: article, at: at)
        try mapped { try store.recordReads([read], actor: actor) }
    }
}
