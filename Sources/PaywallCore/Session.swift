import Foundation

/// A sign-in session, renewed with a refresh token that the store keeps only as a hash.
/// Each refresh rotates the token within one family; a reused old token revokes the family.
public struct RefreshSession: Hashable, Sendable {
    public var id: String
    public var accountID: AccountID
    public var familyID: String
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    public init(id: String, accountID: AccountID, familyID: String, createdAt: Date, expiresAt: Date, revokedAt: Date?) {
        self.id = id
        self.accountID = accountID
        self.familyID = familyID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Whether the session can be used at `now`.
    public func isUsable(at now: Date) -> Bool { revokedAt == nil && now < expiresAt }
}
