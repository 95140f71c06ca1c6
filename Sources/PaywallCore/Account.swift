import Foundation

/// A reader's account.
public struct Account: Hashable, Sendable, Codable {
    public var id: AccountID
    /// The address as entered (trimmed).
    public var email: String
    public var displayName: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: AccountID, email: String, displayName: String?, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.email = email
        self.displayName = displayName
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
