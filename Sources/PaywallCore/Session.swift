import Foundation

/// A sign-in session, renewed with a refresh token that the store keeps only as a hash.
/// Each refresh rotates the token within one family; a reused old token revokes the family.
/// A family lives at most a fixed time from its first sign-in, however often it rotates.
public struct RefreshSession: Hashable, Sendable {
    public var id: String
    public var accountID: AccountID
    public var familyID: String
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?
    /// When the family began (the sign-in that created its first session).
    public var familyStartedAt: Date

    /// `familyStartedAt` defaults to `createdAt` (the first session of a family).
    public init(id: String, accountID: AccountID, familyID: String, createdAt: Date, expiresAt: Date, revokedAt: Date?,
                familyStartedAt: Date? = nil) {
        self.id = id
        self.accountID = accountID
        self.familyID = familyID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.familyStartedAt = familyStartedAt ?? createdAt
    }

    /// Whether the session can be used at `now`.
    public func isUsable(at now: Date) -> Bool { revokedAt == nil && now < expiresAt }
}
