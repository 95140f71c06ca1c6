import Foundation
import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallStore
import PaywallTokens

/// What a reader's app gets from signing up, signing in or refreshing: an access token
/// (minutes long), a refresh token (shown once, stored hashed) and the session they open.
public struct ReaderSession: Sendable {
    public var account: Account
    public var accessToken: IssuedToken
    public var refreshToken: String
    public var refreshTokenExpiresAt: Date
    public var session: ActiveSession
    /// Sessions the cap ended to make room for this one (least recently used first).
    public var endedSessions: [ActiveSession] = []
    /// Reads of the device given at sign-up that now count for the account.
    public var carriedReads = 0
    /// The verification mail queued at sign-up, and what became of it.
    public var mail: MailDelivery?
    /// A password change only: the sessions it ended (every one the account had, this
    /// device's previous one too; this session replaces it).
    public var signedOutSessions: Int?
}

/// A reader's own view of their account (`GET /v1/me`).
public struct ReaderProfile: Sendable {
    public var account: Account
    public var memberships: [Membership]
    public var trial: Trial?
    /// Whether this person may still start a free trial, and how long the policy's is.
    public var trialEligible: Bool
    public var offeredTrialDays: Int?
    public var meters: [MeterStanding]
    public var sessions: [ActiveSession]
    public var now: Date
}

/// A meter of the policy as it stands for one reader.
public struct MeterStanding: Sendable, Equatable {
    public var name: String
    public var limit: Int
    public var used: Int
    public var window: TimeInterval
    /// When the oldest counted read leaves the window (nil: nothing counted).
    public var resetsAt: Date?
    public var remaining: Int { max(0, limit - used) }
}

/// Limits on what a reader sends (stated in the OpenAPI document too).
public enum ReaderLimits {
    /// A device name, in characters.
    public static let deviceName = 64
    /// A refresh token or link token longer than this is not ours (ours are 43).
    public static let token = 256
    /// A device token (as the Authorization header's limit).
    public static let deviceToken = 8_192
}

extension PaywallService {
    // MARK: - Who is asking

    /// The account an access token names. Device tokens and every other kind are refused,
    /// and so is the token of an account deleted since it was issued.
    public func signedInAccount(bearer: String?) throws(ServiceError) -> AccountID {
        guard let bearer else { throw .tokenRequired }
        guard case let .access(claims) = try verifyCached(bearer, kinds: [.access]) else {
            throw .token(.wrongType(expected: TokenKind.access.rawValue, actual: nil))
        }
        return try holdingAccount(AccountID(rawValue: claims.registered.subject), signOuts: claims.signOutsEverywhere).id
    }

    /// ``holding(_:signOuts:)`` for the account with this id, read from the cached facts.
    func holdingAccount(_ id: AccountID, signOuts: Int?) throws(ServiceError) -> Account {
        try Self.holding(try mapped { try store.account(id: id) }, signOuts: signOuts)
    }

    /// The account an access token names, if the token still holds: the account exists
    /// (deleted, its tokens open nothing), and every session of it has not ended since the
    /// token was issued (`signOuts`, the token's count; nil for a reader known from a live
    /// session, such as the web page's cookie). One rule for every route that takes a token.
    ///
    /// A request that passed this check just before a sign-out everywhere committed still
    /// completes (its writes are not made conditional on the count): the window is that
    /// request's own duration, and on other servers the moment until they hear the change.
    static func holding(_ account: Account?, signOuts: Int?) throws(ServiceError) -> Account {
        guard let account else { throw .token(.invalidClaim("sub", reason: "no such account")) }
        if let signOuts, signOuts < account.signOutsEverywhere { throw .token(.revoked) }
        return account
    }

    // MARK: - Signing up and in

    /// Signs a reader up and in: checks everything first (email, password, name, device
    /// token, device name), then in one transaction creates the account and moves the
    /// device's reads to it; starts a session and queues the email verification mail.
    /// `device` is the reader's device token, if they had one (its meter carries over).
    ///
    /// `client` (the adapter's address key) is held to ``signUpLimit`` sign-ups: each costs
    /// a password hash, an account and a mail to an address the caller chooses.
    public func signUpReader(
        email rawEmail: String, password: String, name: String?, deviceToken: String?, deviceName: String?, client: String? = nil
    ) throws(ServiceError) -> ReaderSession {
        let device: String? = try deviceToken.map { (token: String) throws(ServiceError) -> String in
            guard token.utf8.count <= ReaderLimits.deviceToken else { throw .token(.malformed("the device token is longer than \(ReaderLimits.deviceToken) bytes")) }
            guard case let .device(claims) = try verifyCached(token, kinds: [.device]) else {
                throw .token(.wrongType(expected: TokenKind.device.rawValue, actual: nil))
            }
            return claims.deviceID
        }
        let (email, displayName): (EmailAddress, String?) = try mapped {
            let email = try EmailAddress(rawEmail)
            try configuration.passwordPolicy.validate(password, email: email)
            // The name is optional: none, or only white space, is no name.
            var displayName: String?
            if let name, !name.allSatisfy(\.isWhitespace) { displayName = try validatedName(name, kind: "display") }
            _ = try Self.validDeviceName(deviceName)
            return (email, displayName)
        }
        // Only a well-formed sign-up spends the address's budget: readers behind one address
        // (a household, an office) who mistype a password must not lock each other out. The
        // budget is taken before the address is looked up, so asking whether emails are taken
        // costs it as before.
        if let client, let wait = signUps.take(client, at: now) { throw .tooManySignUps(retryAfter: wait) }
        // No key to sign the session's access token: refused before the account exists (a
        // 503 after it, and the retry met "email taken").
        try requireSigningKey()
        let (account, carried): (Account, Int) = try mapped {
            if try store.account(email: email) != nil { throw StoreError.duplicateEmail(email.value) }
            let hash = try hasher.hash(password)
            return try store.createAccount(email: email, displayName: displayName, passwordHash: hash, carryingReadsOf: device, actor: .system)
        }
        var session = try openSession(account: account, deviceName: deviceName)
        session.carriedReads = carried
        // The account exists whatever happens to the mail: a failure to queue it is not a
        // failed sign-up (the reader can ask for another link).
        session.mail = try? sendVerificationLink(accountID: account.id, actor: .account(account.id))
        return session
    }

    /// Signs a reader in. Refused with ``ServiceError/tooManyAttempts(retryAfter:)`` while
    /// the email asked for, or the client address, is throttled (before any hashing, so a
    /// flood costs no scrypt); a failure counts against both. Unknown emails and wrong
    /// passwords answer alike and take about the same time (the same hash work, the same
    /// durable write). `client` is the address key the adapter rate-limits by.
    public func signInReader(email rawEmail: String, password: String, deviceName: String?, client: String) throws(ServiceError) -> ReaderSession {
        _ = try mapped { try Self.validDeviceName(deviceName) }
        // Before the password is tried: no attempt spent, no scrypt, for an answer of 503.
        try requireSigningKey()
        let (account, hash) = try verifiedPassword(email: rawEmail, password: password, client: client)
        return try openSession(account: account, deviceName: deviceName, passwordHash: hash)
    }

    /// The account whose email and password these are, held to the sign-in throttle (see
    /// ``signInReader(email:password:deviceName:client:)``): what signing in and deleting
    /// one's own account share.
    ///
    /// `accountKey`: the account's budget under another key than its email's (a signed-in
    /// reader asked for the password again: ``reverified(_:password:client:)``).
    func verifiedPassword(email rawEmail: String, password: String, client: String, accountKey: String? = nil) throws(ServiceError) -> (Account, passwordHash: String) {
        let throttle = configuration.signInThrottle
        // The account the email names, known or not, keyed exactly as accounts are looked
        // up (`EmailAddress.lookupKey`): any spelling that reaches an account's password
        // shares its budget (a key of its own per variant, e.g. a trailing combining mark
        // the address parser trims, was a fresh budget each). Text that is no address
        // cannot reach a password: only the client's budget applies to it.
        let accountKey = accountKey ?? (try? EmailAddress(rawEmail)).map { Store.signInThrottleKey(email: $0) }
        let clientKey = "client:" + String(client.prefix(128))
        var counted: [(key: String, window: TimeInterval, block: (Int) -> TimeInterval)] = [
            (clientKey, throttle.window, { throttle.wait(failures: $0, free: throttle.clientFree, refuseAfter: throttle.clientRefuseAfter) }),
        ]
        if let accountKey {
            counted.append((accountKey, throttle.window, { throttle.wait(failures: $0, free: throttle.accountFree, refuseAfter: throttle.accountRefuseAfter) }))
        }
        // Counted as a failure before the hash, in the transaction that checks the block, so
        // guesses sent at once cannot all pass the check (see ``Store/claimSignInAttempt``).
        let claim = try mapped { try store.claimSignInAttempt(keys: counted, at: now) }
        if let until = claim.refusedUntil { throw .tooManyAttempts(retryAfter: until.timeIntervalSince(now)) }
        let checked: (Account, passwordHash: String)
        do {
            checked = try checkCredentials(email: rawEmail, password: password)
        } catch .invalidCredentials {
            throw .invalidCredentials  // counted already
        } catch {
            // Not the reader's mistake (overloaded, the database): the attempt does not count.
            try? store.refundSignInAttempt(claim, keys: counted.map(\.key))
            throw error
        }
        // The account's count restarts; the address's loses this attempt only (one account
        // of one's own must not reset the budget for guessing others').
        try mapped {
            try store.refundSignInAttempt(claim, keys: [clientKey])
            if let accountKey { try store.clearSignInFailures(key: accountKey) }
        }
        return checked
    }

    /// A new session within the cap, with its first access token; after a sign-in, only
    /// while `passwordHash` (the one the password was checked against) is still the account's.
    func openSession(account: Account, deviceName: String?, passwordHash: String? = nil) throws(ServiceError) -> ReaderSession {
        // Before the session is written: a 503 after it left a session the client never got
        // and, past the cap, evicted a real one each retry.
        try requireSigningKey()
        return try mapped {
            let name = try Self.validDeviceName(deviceName)
            let started = try store.startSession(
                accountID: account.id, lifetime: configuration.sessionLifetime, deviceName: name, maximum: configuration.maximumSessions,
                passwordHash: passwordHash)
            let (token, active) = try accessToken(for: account.id, session: started.session.familyID)
            return ReaderSession(
                account: account, accessToken: token, refreshToken: started.token,
                refreshTokenExpiresAt: started.session.expiresAt, session: active, endedSessions: started.ended)
        }
    }

    /// An access token for a session of an account, with its entitlements now, and the
    /// session as readers see it; ``ServiceError/sessionRejected`` when the session has
    /// ended meanwhile.
    ///
    /// The token carries the account's sign-outs everywhere (``Account/signOutsEverywhere``),
    /// read as committed *before* the session is checked: a sign-out everywhere committed
    /// before the read has ended the session (refused here), and one committed after it
    /// outnumbers the token (refused where it is used). Read the other way round, a token
    /// could carry the new count for a session the sign-out ended.
    func accessToken(for id: AccountID, session family: String) throws -> (IssuedToken, ActiveSession) {
        guard let signOuts = try store.signOutsEverywhere(accountID: id),
              let active = try store.sessionsInUse(accountID: id).first(where: { $0.id == family })
        else { throw ServiceError.sessionRejected }
        let snapshot = try entitlements(accountID: id)
        let (issuer, created) = try issuer()
        let (token, claims) = try issuer.accessToken(
            subject: id.rawValue, audience: configuration.audience, lifetime: configuration.accessTokenLifetime, entitlements: snapshot,
            signOutsEverywhere: signOuts)
        return (IssuedToken(token: token, kind: .access, kid: issuer.signer.kid, claims: claims.registered, createdKey: created), active)
    }

    static func validDeviceName(_ name: String?) throws -> String? {
        guard let name else { return nil }
        let value = try validatedName(name, kind: "device")
        guard value.count <= ReaderLimits.deviceName else {
            throw DomainError.invalidName(kind: "device", reason: "it is longer than \(ReaderLimits.deviceName) characters")
        }
        return value
    }

    // MARK: - Refreshing and signing out

    /// Exchanges a refresh token for a new one and a fresh access token (rotation with
    /// reuse detection: ``refreshSession(token:)``).
    public func refreshReader(token: String) throws(ServiceError) -> ReaderSession {
        guard !token.isEmpty, token.utf8.count <= ReaderLimits.token else { throw .sessionRejected }
        // Before the rotation: a 503 after it spent the token, and the client's retry past
        // the grace window was taken for theft.
        try requireSigningKey()
        let (next, session) = try refreshSession(token: token)
        return try mapped {
            guard let account = try store.account(id: session.accountID) else { throw ServiceError.sessionRejected }
            let (token, active) = try accessToken(for: account.id, session: session.familyID)
            return ReaderSession(
                account: account, accessToken: token, refreshToken: next,
                refreshTokenExpiresAt: session.expiresAt, session: active)
        }
    }

    /// Ends the session holding this refresh token (sign out on this device).
    public func signOut(refreshToken token: String) throws(ServiceError) -> ActiveSession {
        guard !token.isEmpty, token.utf8.count <= ReaderLimits.token else { throw .sessionRejected }
        return try mapped {
            guard let session = try store.sessionInUse(token: token) else { throw ServiceError.sessionRejected }
            return try store.revokeSession(id: session.id, accountID: session.accountID, actor: .account(session.accountID), bySelf: true)
        }
    }

    /// Ends every session of the account (sign out everywhere), and with them every access
    /// token issued to it so far (``Account/signOutsEverywhere``). Returns how many ended.
    public func signOutEverywhere(accountID: AccountID) throws(ServiceError) -> Int {
        try mapped { try store.revokeSessions(accountID: accountID, actor: .account(accountID)) }
    }

    /// Whether an access token still opens its account, as the API judges it now
    /// (``holding(_:signOuts:)``): for `paywall token verify`, which verifies the signature
    /// and claims only. ``ServiceError/token(_:)`` when it does not.
    public func checkAccessTokenStanding(_ claims: AccessClaims) throws(ServiceError) {
        _ = try holdingAccount(AccountID(rawValue: claims.registered.subject), signOuts: claims.signOutsEverywhere)
    }

    /// Support signs a reader out everywhere (`paywall account sign-out`, `POST
    /// /admin/v1/accounts/{account}/sign-out`): a reader whose device or password was taken.
    /// Every session ends and every access token issued so far is refused, as when the
    /// reader does it; audited (`session.revoke-all`) with the admin as the actor. The
    /// password stays: set a new one too (`paywall account set-password`) if it was taken.
    /// Returns the account and how many sessions ended.
    public func signOutEverywhere(account reference: String, actor: AuditActor) throws(ServiceError) -> (Account, Int) {
        try mapped {
            let account = try store.account(matching: reference)
            return (account, try store.revokeSessions(accountID: account.id, actor: actor))
        }
    }

    /// Ends one of the account's own sessions, by id. Another device's: the account's
    /// access tokens end too, the caller's included (it refreshes). `current` is the
    /// caller's own session when known (the web page's cookie): ending it is signing out.
    public func revokeSession(id: String, accountID: AccountID, current: String? = nil) throws(ServiceError) -> ActiveSession {
        guard !id.isEmpty, id.utf8.count <= 64 else { throw .store(.sessionNotFound) }
        return try mapped { try store.revokeSession(id: id, accountID: accountID, actor: .account(accountID), bySelf: id == current) }
    }

    // MARK: - The reader's own account

    /// The reader deletes their own account (`DELETE /v1/me`): with their password again,
    /// held to the sign-in throttle, so a copied access token alone cannot. Their reads and
    /// sessions go with it; the person's one trial stays spent, and the audit log keeps the
    /// deletion. Refused (409 `subscription_active`) while a payment provider still renews
    /// one of its memberships: the reader would go on paying for an account that is gone.
    public func deleteOwnAccount(accountID: AccountID, password: String, client: String) throws(ServiceError) {
        let account = try ownAccount(accountID)
        let at = now
        let renews = Self.renewsThroughProvider(at: at)
        // Asked first (no password check for an answer that is no), and again in the
        // deletion's transaction: a provider's webhook may create one in between.
        if let first = try mapped({ try store.memberships(accountID: accountID) }).first(where: renews) {
            throw .subscriptionActive(provider: first.source.rawValue)
        }
        _ = try reverified(account, password: password, client: client)
        if let blocker = try mapped({ try store.deleteAccount(id: accountID, actor: .account(accountID), unlessAny: renews, unlessSubscriptionRenews: true) }) {
            throw .subscriptionActive(provider: blocker.provider)
        }
    }

    /// The reader changes their password (`POST /v1/me/password`): the current one again,
    /// held to the sign-in throttle (a copied access token alone cannot), the new one
    /// checked against the policy before that (a password that would be refused spends no
    /// attempt). Every session of the account ends in the change's transaction, so whoever
    /// else held one is out, and this device gets a new session: the one returned, with
    /// ``ReaderSession/signedOutSessions``. The account's address is told, in the same
    /// transaction. Access tokens issued before end too (``Account/signOutsEverywhere``);
    /// the new session's is issued after. Should the new session fail to open (the database gone a moment
    /// after the commit), the change stands and the reader signs in with the new password.
    public func changeOwnPassword(
        accountID: AccountID, currentPassword: String, newPassword: String, deviceName: String?, client: String
    ) throws(ServiceError) -> ReaderSession {
        let account = try ownAccount(accountID)
        try mapped {
            _ = try Self.validDeviceName(deviceName)
            try configuration.passwordPolicy.validate(newPassword, email: try? EmailAddress(account.email))
        }
        if newPassword == currentPassword { throw .invalidInput(.weakPassword(.unchanged)) }
        let verified = try reverified(account, password: currentPassword, client: client)
        let notice = OutgoingMail(
            recipient: verified.email, subject: "Your password was changed",
            body: """
                Hello,

                The password of the account \(verified.email) was changed, and every device signed in to it was signed out.

                If you did not change it, someone else had your password: choose a new one at once with "Forgot your password?" at \(configuration.mailLinkBase)/forgot-password, then sign in again.

                """)
        let ended = try mapped {
            let hash = try hasher.hash(newPassword)
            return try store.setPasswordHash(
                accountID: accountID, hash: hash, actor: .account(accountID), action: "account.change-password", revokeSessions: true, notice: notice)
        }
        nudgeMailCourier()
        var session = try openSession(account: verified, deviceName: deviceName)
        session.signedOutSessions = ended
        return session
    }

    /// The reader changes their email address (`POST /v1/me/email`), with their password
    /// again (held to the sign-in throttle). The new address is unconfirmed until the link
    /// mailed to it now is used (`user.emailVerified` is false meanwhile); links mailed to
    /// the old address stop working; and the old address is told, in the same transaction,
    /// so someone who took a session and the password cannot move the account away
    /// unnoticed. At most three changes, then one an hour, per account (all servers together).
    /// Refused (429 `too_much_mail`) while the new address has had its share of mail this
    /// hour, before anything is written. The same mailbox
    /// respelt (`Ada@` for `ada@`) keeps its confirmation and gets no mail. Returns the
    /// account as changed and the verification mail (nil when none was needed, or it
    /// could not be queued: the reader can ask for another link).
    public func changeOwnEmail(accountID: AccountID, password: String, newEmail rawEmail: String, client: String) throws(ServiceError) -> (Account, MailDelivery?) {
        let account = try ownAccount(accountID)
        let email = try Self.newAddress(rawEmail, for: account)
        let verified = try reverified(account, password: password, client: client)
        return try moveEmail(verified, to: email, confirmed: false, actor: .account(accountID), offerUndo: true, limitedBy: Self.emailChanges)
    }

    /// An admin changes a reader's email address (`paywall account set-email`): as the
    /// reader would (the old address told, its links dead, a link mailed to the new one),
    /// or, `confirmed`, with the new address confirmed by other means (no link mailed).
    public func changeEmail(account reference: String, to rawEmail: String, confirmed: Bool, actor: AuditActor) throws(ServiceError) -> (Account, MailDelivery?) {
        let account = try self.account(reference)
        return try moveEmail(account, to: try Self.newAddress(rawEmail, for: account), confirmed: confirmed, actor: actor)
    }

    /// The address an account is to move to: valid, and not the one it has.
    static func newAddress(_ raw: String, for account: Account) throws(ServiceError) -> EmailAddress {
        let email = try mapped { try EmailAddress(raw) }
        if email.value == account.email {
            throw .invalidInput(.invalidEmail(email.value, reason: "it is the account's address already"))
        }
        return email
    }

    /// What both email changes share: the limit, the mail budget, the notice, the change,
    /// the link. `limit` (the reader's own changes) is taken by every change, refused or
    /// not, a respelling of the same mailbox included: each mails a link or resets the
    /// spelling mail is counted by, and a refusal (`email_taken`) says whether an address
    /// has an account. Its bucket's row is the one thing a refusal writes.
    ///
    /// `offerUndo`: the old address's notice carries a link that puts it back (when it was
    /// confirmed). For the reader's own changes: someone with their session and password
    /// must not keep the account by moving it. Not for support's: a reader who asks support
    /// to move them has often lost the old mailbox, and whoever holds it must not get a way
    /// back in.
    private func moveEmail(
        _ account: Account, to email: EmailAddress, confirmed: Bool, actor: AuditActor, offerUndo: Bool = false, limitedBy limit: StoredRateLimit? = nil
    ) throws(ServiceError) -> (Account, MailDelivery?) {
        let sameMailbox = EmailAddress(stored: account.email).lookupKey == email.lookupKey
        // A respelling of the same mailbox is limited too: the mail budget is counted per
        // spelling, and free respellings (`Victim@`, `VIctim@`…) gave an account's owner a
        // fresh budget of verification mail into one inbox each time (found in review).
        if let limit, let wait = try mapped({ try store.takeRateToken(limit, key: account.id.rawValue) }) {
            throw .tooManyEmailChanges(retryAfter: wait)
        }
        let linkNeeded = !sameMailbox && !confirmed
        if linkNeeded, try mapped({ try store.mailCount(recipient: email.value, since: now.addingTimeInterval(-3_600)) }) >= configuration.mailsPerAddressPerHour {
            throw .tooMuchMail(retryAfter: 3_600)
        }
        // Told even when never confirmed: reset links went there, so it was the account's
        // way back in, and its owner should hear that it no longer is. A confirmed address
        // also gets the link that puts it back (``revertEmail(token:password:)``).
        let base = configuration.mailLinkBase
        let days = Int(Store.emailRevertLifetime / 86_400)
        let notice: ((Account, String?) -> OutgoingMail)? = sameMailbox ? nil : { previous, undo in
            let whatToDo = undo.map { token in
                """
                If you did not ask for this change, someone else has your password. Open this link within \(days) days to put your address back, choose a new password and sign out every device:

                \(base)/undo-email-change#token=\(token)

                """
            } ?? "If you did not ask for this change, write to the publisher's support from this address at once: someone else may have your password. Keep this message.\n"
            return OutgoingMail(
                recipient: previous.email, subject: "Your email address was changed",
                body: """
                    Hello,

                    The email address of the account \(previous.email) was changed to \(Self.masked(email)). Mail about the account goes there from now on.

                    \(whatToDo)
                    """)
        }
        let (_, current) = try mapped {
            try store.changeEmail(accountID: account.id, to: email, confirmed: confirmed, actor: actor, offerUndo: offerUndo, notice: notice)
        }
        nudgeMailCourier()
        guard linkNeeded else { return (current, nil) }
        return (current, try? sendVerificationLink(accountID: account.id, actor: actor))
    }

    /// `n•••@example.com`: enough for the owner of the old address to recognise it, not
    /// a whole address of someone else's in a mail to a mailbox that may be lost.
    static func masked(_ email: EmailAddress) -> String {
        let parts = email.value.split(separator: "@", maxSplits: 1)
        guard parts.count == 2, let first = parts[0].first else { return email.value }
        return "\(first)•••@\(parts[1])"
    }

    /// A signed-in reader's password asked again (deleting the account, changing its
    /// password or address, exporting its data), held to the sign-in throttle: the account
    /// as it is now, or ``ServiceError/invalidCredentials``.
    ///
    /// Its budget is the account's own (`reauth:` and its id), not the email's: anyone may
    /// spend the email's ten failures from the sign-in form, and with one budget a stranger
    /// failing every quarter of an hour kept the owner, signed in, from changing the
    /// password or address, exporting or deleting, the very things done under attack (found
    /// in review). Spending this one takes the reader's session, and the client's budget
    /// still counts every failure.
    func reverified(_ account: Account, password: String, client: String) throws(ServiceError) -> Account {
        let (verified, _) = try verifiedPassword(email: account.email, password: password, client: client, accountKey: Store.reverificationThrottleKey(account.id))
        guard verified.id == account.id else { throw .invalidCredentials }
        return verified
    }

    /// The reader's account by its id (a signed-in reader's own; gone since the token was
    /// issued: refused as the token would be).
    func ownAccount(_ accountID: AccountID) throws(ServiceError) -> Account {
        guard let account = try mapped({ try store.account(id: accountID) }) else {
            throw .token(.invalidClaim("sub", reason: "no such account"))
        }
        return account
    }

    /// The account, memberships, trial, free articles left per meter and sessions in use.
    public func profile(accountID: AccountID) throws(ServiceError) -> ReaderProfile {
        let policy = try policy()
        let at = now
        return try mapped {
            guard let account = try store.account(id: accountID) else { throw StoreError.accountNotFound(accountID.rawValue) }
            let trial = try store.trial(accountID: accountID)
            // By the person's email key, which covers this account's own trial too.
            let eligible = try trialEligible(account)
            let subject = MeterSubject.account(accountID)
            let meters = try policy.meters.map { meter in
                MeterStanding(
                    name: meter.name, limit: meter.limit, used: try store.meterUsage(subject: subject, window: meter.window, at: at).used,
                    window: meter.window,
                    resetsAt: try store.oldestCountedRead(subject: subject, window: meter.window, at: at)?.addingTimeInterval(meter.window))
            }
            return ReaderProfile(
                account: account, memberships: try store.memberships(accountID: accountID), trial: trial, trialEligible: eligible,
                offeredTrialDays: policy.offeredTrialDays, meters: meters, sessions: try store.sessionsInUse(accountID: accountID), now: at)
        }
    }

    /// Starts the reader's free trial, as long as the policy's `offer trial N days` says.
    /// One per person, ever: refused with ``StoreError/trialAlreadyUsed(email:)`` when
    /// this account, or any with the same normalized email, had one.
    public func startOfferedTrial(accountID: AccountID) throws(ServiceError) -> Trial {
        guard let days = try policy().offeredTrialDays else { throw .trialNotOffered }
        if configuration.trialNeedsVerifiedEmail {
            guard let account = try mapped({ try store.account(id: accountID) }) else { throw .store(.accountNotFound(accountID.rawValue)) }
            guard account.emailVerifiedAt != nil else { throw .emailNotVerified }
        }
        return try mapped { try store.startTrial(accountID: accountID, duration: TimeInterval(days) * 86_400, actor: .account(accountID)) }
    }
}
