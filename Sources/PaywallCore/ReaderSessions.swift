import Foundation

/// A session as a reader sees it: one sign-in on one device. Each refresh replaces the
/// refresh token (a new row of the same family), so the session's stable id is its family's.
public struct ActiveSession: Hashable, Sendable {
    /// The family id: stable across refreshes (what `DELETE /v1/me/sessions/{id}` names).
    public var id: String
    public var accountID: AccountID
    /// The name the reader's app gave at sign-in ("Rita's phone"), if any.
    public var deviceName: String?
    /// The sign-in that began the session.
    public var startedAt: Date
    /// The last sign-in, refresh or (web pages, noted at most hourly) page seen.
    public var lastUsedAt: Date
    /// When the current refresh token expires.
    public var expiresAt: Date

    public init(id: String, accountID: AccountID, deviceName: String?, startedAt: Date, lastUsedAt: Date, expiresAt: Date) {
        self.id = id
        self.accountID = accountID
        self.deviceName = deviceName
        self.startedAt = startedAt
        self.lastUsedAt = lastUsedAt
        self.expiresAt = expiresAt
    }
}

/// What a single-use email link is for.
public enum EmailLinkPurpose: String, Hashable, Sendable, CaseIterable {
    case verifyEmail = "verify-email"
    case resetPassword = "reset-password"
}

/// A message in the outbox (waiting for the sendmail command, or sent).
public struct OutboxMessage: Hashable, Sendable {
    public var id: Int64
    public var recipient: String
    public var subject: String
    /// Erased once sent (it may hold a single-use link).
    public var body: String
    public var createdAt: Date
    /// After this the message is not sent any more (its link would have expired).
    public var expiresAt: Date
    public var sentAt: Date?
    public var attempts: Int
    /// Why the last delivery failed (the command's exit status), if it did.
    public var lastError: String?

    public init(id: Int64, recipient: String, subject: String, body: String, createdAt: Date, expiresAt: Date, sentAt: Date?, attempts: Int, lastError: String?) {
        self.id = id
        self.recipient = recipient
        self.subject = subject
        self.body = body
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.sentAt = sentAt
        self.attempts = attempts
        self.lastError = lastError
    }
}
