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
    /// or not the account exists.
    public func signIn(email rawEmail: String, password: String) throws(ServiceError) -> SignIn {
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
                if needsRehash {
                    let upgraded = try hasher.hash(password)
                    try store.setPasswordHash(accountID: account.id, hash: upgraded, actor: .system, action: "account.rehash-password")
                }
            }
            let (token, session) = try startSession(accountID: account.id)
            return SignIn(account: account, refreshToken: token, session: session)
        }
    }

    /// Sets a new password (checked against the policy) and signs the account out
    /// everywhere.
    public func setPassword(account reference: String, password: String, actor: AuditActor) throws(ServiceError) {
        try mapped {
            let account = try store.account(matching: reference)
            let email = try? EmailAddress(account.email)
            try configuration.passwordPolicy.validate(password, email: email)
            let hash = try hasher.hash(password)
            try store.setPasswordHash(accountID: account.id, hash: hash, actor: actor)
            try store.revokeSessions(accountID: account.id, actor: actor)
        }
    }

    /// Resolves an account by id or email.
    public func account(_ reference: String) throws(ServiceError) -> Account {
        try mapped { try store.account(matching: reference) }
    }

    /// Deletes an account (its trial stays recorded against the person).
    public func deleteAccount(_ reference: String, actor: AuditActor) throws(ServiceError) -> Account {
        try mapped {
            let account = try store.account(matching: reference)
            try store.deleteAccount(id: account.id, actor: actor)
            return account
        }
    }

    // MARK: - Sessions

    /// Starts a session: returns the refresh token (to hand to the reader, once) and the
    /// stored session, which keeps only the token's SHA-256.
    public func startSession(accountID: AccountID) throws(ServiceError) -> (String, RefreshSession) {
        try mapped {
            let token = try Self.newRefreshToken()
            let session = try store.createSession(accountID: accountID, tokenHash: SHA256.hash(token), lifetime: configuration.sessionLifetime)
            return (token, session)
        }
    }

    /// Exchanges a refresh token for a new one. A token used twice revokes its family.
    public func refreshSession(token: String) throws(ServiceError) -> (String, RefreshSession) {
        try mapped {
            let next = try Self.newRefreshToken()
            switch try store.rotateSession(tokenHash: SHA256.hash(token), newTokenHash: SHA256.hash(next), lifetime: configuration.sessionLifetime) {
            case let .rotated(session): return (next, session)
            case .reuseDetected: throw ServiceError.sessionReused
            case .rejected: throw ServiceError.sessionRejected
            }
        }
    }

    /// 32 random bytes, base64url without padding.
    static func newRefreshToken() throws -> String {
        let bytes = try SecureRandom.bytes(32)
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
