import Foundation
import PaywallCore
import PaywallCrypto
import PaywallStore

/// A successful sign-in: the account and a new refresh token (shown once, stored hashed).
public struct SignIn: Sendable {
    public var account: Account
    public var refreshToken: String
    public var session: RefreshSession
}

extension PaywallService {
    /// Creates an account after checking the email's shape and the password's strength.
    public func signUp(email rawEmail: String, password: String, displayName: String?, actor: AuditActor) throws(ServiceError) -> Account {
        try mapped {
            let email = try EmailAddress(rawEmail)
            try configuration.passwordPolicy.validate(password, email: email)
            let name = try displayName.map { try validatedName($0, kind: "display") }
            if try store.account(email: email) != nil { throw StoreError.duplicateEmail(email.value) }
            let hash = try hasher.hash(password)
            return try store.createAccount(email: email, displayName: name, passwordHash: hash, actor: actor)
        }
    }

    /// Checks an email and password. On success starts a session; when the stored hash is
    /// weaker than the configured parameters it is upgraded. Takes the same time whether
    /// or not the account exists. Not throttled: readers sign in through
    /// ``signInReader(email:password:deviceName:client:)``, which counts failures; this is
    /// the core of it, kept internal so no adapter can skip the throttle.
    func signIn(email rawEmail: String, password: String) throws(ServiceError) -> SignIn {
        let (account, hash) = try checkCredentials(email: rawEmail, password: password)
        let (token, session) = try startSession(accountID: account.id, passwordHash: hash)
        return SignIn(account: account, refreshToken: token, session: session)
    }

    /// The account whose email and password these are, or ``ServiceError/invalidCredentials``
    /// (the same error, after the same hash work, for an unknown email and a wrong
    /// password), with the account's hash as checked (or as upgraded: a hash weaker than
    /// the configured parameters is replaced), for the session to start only while it is
    /// still the account's (``Store/startSession(accountID:lifetime:deviceName:maximum:passwordHash:)``).
    func checkCredentials(email rawEmail: String, password: String) throws(ServiceError) -> (Account, passwordHash: String) {
        try mapped {
            guard let email = try? EmailAddress(rawEmail),
                  let account = try store.account(email: email),
                  let stored = try store.passwordHash(accountID: account.id)
            else {
                try hasher.burnVerificationTime(password)
                throw ServiceError.invalidCredentials
            }
            switch try hasher.verify(password, against: stored) {
            case .mismatch:
                throw ServiceError.invalidCredentials
            case let .match(needsRehash):
                if needsRehash { return (account, try upgradedHash(account.id, password: password, checked: stored)) }
            }
            return (account, stored)
        }
    }

    /// The account's hash once `password`, checked against `stored`, is upgraded to the
    /// configured parameters: the upgrade, or, when the hash changed since it was read,
    /// another sign-in's upgrade of this same password (two at once: a form sent twice,
    /// phone and web), which this password still opens (found in review: it was refused as
    /// a wrong password). A new password (a reset) does not open: `stored` is returned, and
    /// the session is then refused on it. One more hash's work, only in this race.
    func upgradedHash(_ accountID: AccountID, password: String, checked stored: String) throws -> String {
        let upgraded = try hasher.hash(password)
        if try store.upgradePasswordHash(accountID: accountID, checked: stored, upgraded: upgraded) { return upgraded }
        if let now = try store.passwordHash(accountID: accountID), now != stored, case .match = try hasher.verify(password, against: now) {
            return now
        }
        return stored
    }

    /// Sets a new password (checked against the policy) and signs the account out
    /// everywhere, in one transaction: there is no moment where the new password is set
    /// and an old session still refreshes.
    public func setPassword(account reference: String, password: String, actor: AuditActor) throws(ServiceError) {
        try mapped {
            let account = try store.account(matching: reference)
            let email = try? EmailAddress(account.email)
            try configuration.passwordPolicy.validate(password, email: email)
            let hash = try hasher.hash(password)
            try store.setPasswordHash(accountID: account.id, hash: hash, actor: actor, revokeSessions: true)
        }
    }

    /// Resolves an account by id or email.
    public func account(_ reference: String) throws(ServiceError) -> Account {
        try mapped { try store.account(matching: reference) }
    }

    /// Deletes an account (its trial stays recorded against the person). Refused (409
    /// `subscription_active`) while a payment provider still renews one of its memberships,
    /// as the reader's own deletion is: the reader would go on paying for an account that
    /// is gone. `evenIfRenewing` deletes anyway (support has cancelled it with the provider,
    /// or the provider's record is wrong).
    public func deleteAccount(_ reference: String, evenIfRenewing: Bool = false, actor: AuditActor) throws(ServiceError) -> Account {
        let renews = Self.renewsThroughProvider(at: now)
        let account = try mapped { try store.account(matching: reference) }
        let blocker = try mapped {
            try store.deleteAccount(id: account.id, actor: actor, unlessAny: { !evenIfRenewing && renews($0) }, unlessSubscriptionRenews: !evenIfRenewing)
        }
        if let blocker { throw .subscriptionActive(provider: blocker.provider) }
        return account
    }

    /// Whether a membership is one a payment provider will charge for again: the reader's
    /// subscription is live there.
    static func renewsThroughProvider(at: Date) -> @Sendable (Membership) -> Bool {
        { $0.source.isProvider && $0.grantsAccess(at: at) && $0.status != .canceled && !$0.cancelAtPeriodEnd }
    }

    // MARK: - Sessions

    /// Starts a session after a checked sign-in (internal: an adapter must never start one
    /// without credentials): returns the refresh token (to hand to the reader, once) and the
    /// stored session, which keeps only the token's SHA-256.
    func startSession(accountID: AccountID, passwordHash: String) throws(ServiceError) -> (String, RefreshSession) {
        try mapped { try store.createSession(accountID: accountID, lifetime: configuration.sessionLifetime, passwordHash: passwordHash) }
    }

    /// Exchanges a refresh token for a new one. The same token sent again within a few
    /// seconds (a client's concurrent refresh, RFC 9700 §4.14.2) gets the same successor;
    /// later, or once the successor was used, it is reuse: the whole family is revoked
    /// and the reuse audited.
    public func refreshSession(token: String) throws(ServiceError) -> (String, RefreshSession) {
        try mapped {
            switch try store.refreshSession(token: token, lifetime: configuration.sessionLifetime) {
            case let .rotated(next, session), let .alreadyRotated(next, session): return (next, session)
            case .reuseDetected: throw ServiceError.sessionReused
            case .rejected: throw ServiceError.sessionRejected
            }
        }
    }
}
