import Foundation

/// A reader's account.
public struct Account: Hashable, Sendable, Codable {
    public var id: AccountID
    /// The address as entered (trimmed).
    public var email: String
    public var displayName: String?
    /// When the reader proved they receive mail at `email` (nil: not verified). Policies
    /// read it as `user.emailVerified`, e.g. to trust the email's domain.
    public var emailVerifiedAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: AccountID, email: String, displayName: String?, emailVerifiedAt: Date? = nil, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.email = email
        self.displayName = displayName
        self.emailVerifiedAt = emailVerifiedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
