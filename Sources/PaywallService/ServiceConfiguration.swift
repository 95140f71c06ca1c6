import Foundation
import PaywallCore
import PaywallCrypto
import PaywallStore

/// Settings of the service; the defaults are the production ones.
public struct ServiceConfiguration: Sendable {
    /// Scrypt cost for new password hashes (OWASP's N = 2^17, r = 8, p = 1). Lower it only
    /// in tests. Hashes made with weaker parameters are upgraded at the next sign-in.
    public var passwordHashing: ScryptParameters = .owasp
    /// Rules for new passwords.
    public var passwordPolicy: PasswordPolicy = .standard
    /// How long a refresh token lives (30 days).
    public var sessionLifetime: TimeInterval = 30 * 86_400
    /// The default length of a free trial (14 days).
    public var trialLength: TimeInterval = 14 * 86_400
    /// How the database is opened.
    public var store = StoreConfiguration()

    public init() {}
}
