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
    /// The key ring's folder (default `./Keys`).
    public var keysDirectory = URL(fileURLWithPath: "Keys")
    /// The policy folder (default `./Policies`).
    public var policyDirectory = URL(fileURLWithPath: "Policies")
    /// The `iss` of every token we issue and the only one we accept.
    public var issuer = "paywall"
    /// The default `aud` of tokens (the HTTP API).
    public var audience = "paywall-api"
    /// Lifetime of an access token (15 minutes; at most a day).
    public var accessTokenLifetime: TimeInterval = 15 * 60
    /// Lifetime of an article grant (5 minutes; at most an hour).
    public var articleGrantLifetime: TimeInterval = 5 * 60
    /// Clock skew tolerated when verifying (30 s).
    public var tokenLeeway: TimeInterval = 30

    public init() {}
}
