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
    /// How many times sessions of the account were ended by anyone but their own device
    /// (sign out everywhere, a password changed or reset, a device signed out from another,
    /// evicted past the session cap, a refresh token stolen). An access token carries the
    /// count it was issued under and is refused once the account's is higher: it ends with
    /// the sessions instead of living out its minutes (the account's other devices refresh
    /// theirs, as they do every 15 minutes). Access tokens name no session, so this is the
    /// account's: a device signing itself out does not count (it drops its own token). A
    /// count, not a time, so that a token issued in the same second as the change (its
    /// `iat` is in whole seconds) is told apart.
    public var signOutsEverywhere: Int

    public init(
        id: AccountID, email: String, displayName: String?, emailVerifiedAt: Date? = nil, createdAt: Date, updatedAt: Date, signOutsEverywhere: Int = 0
    ) {
        self.id = id
        self.email = email
        self.displayName = displayName
        self.emailVerifiedAt = emailVerifiedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.signOutsEverywhere = signOutsEverywhere
    }
}
