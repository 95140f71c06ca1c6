import Foundation
import PaywallCore
import PaywallCrypto
import PaywallStore
import PaywallTokens

/// Limits on what admins may ask for.
public enum TokenLimits {
    public static let maximumAccessLifetime: TimeInterval = 86_400
    public static let maximumGrantLifetime: TimeInterval = 3_600
    /// Comp grants last whole days, at most 31 (so a superseded key verifies them all).
    public static let maximumCompDays = 31
    /// Admin tokens are short-lived: a leaked one is useful for hours at most.
    public static let maximumAdminLifetime: TimeInterval = 12 * 3_600
    /// A gift link lasts at most 31 days, so a superseded key still verifies every one.
    public static let maximumGiftLifetime: TimeInterval = 31 * 86_400
}

/// An issued token and what it says.
public struct IssuedToken: Sendable {
    public var token: String
    public var kind: TokenKind
    public var kid: String
    public var claims: RegisteredClaims
    /// The development key created on first use to sign this token, if any.
    public var createdKey: KeyRecord?
}

extension PaywallService {
    // MARK: - Keys

    /// The key ring in force (loaded once; see ``reloadKeys()``).
    public func keyRing() throws(ServiceError) -> KeyRing {
        try keys().ring
    }

    /// The configured key folder's keys, their states now, and its JWKS, read from the folder
    /// alone: no database (`paywall keys list`, `keys jwks`, on a machine that holds only the
    /// keys). A folder that does not exist is refused: a mistyped one must fail, not print
    /// an empty set (a JWKS with no keys, published, makes every verifier refuse every token).
    public static func publishedKeys(configuration: ServiceConfiguration) throws(ServiceError) -> (states: [(KeyRecord, KeyState)], jwks: JWKS) {
        let folder = configuration.keysDirectory
        guard FileManager.default.isFolder(atPath: folder.path) else { throw .keys(.noSuchFolder(path: folder.path, missingParent: nil)) }
        let ring: KeyRing
        do { ring = try KeyRing.load(directory: folder) } catch { throw .keys(error) }
        let now = configuration.clock.now()
        return (ring.states(at: now), ring.jwks(at: now))
    }

    /// The ring's JWKS: the public keys a verifier at the edge needs.
    public func jwks() throws(ServiceError) -> JWKS {
        try keyRing().jwks(at: now)
    }

    /// The state of every key at `now`.
    public func keyStates() throws(ServiceError) -> [(KeyRecord, KeyState)] {
        let ring = try keyRing()
        let at = now
        return ring.states(at: at)
    }

    /// Generates a key that signs from now on (the previous signer becomes verify-only).
    public func generateKey(_ algorithm: SignatureAlgorithm, actor: AuditActor) throws(ServiceError) -> KeyRecord {
        try changeKeys(action: "key.generate", actor: actor) { (ring: inout KeyRing, now: Date) throws(KeyRingError) in try ring.add(algorithm, now: now, activatesAt: now) }
    }

    /// What a rotation's publish-ahead needs beyond the JWKS cache time (``rotateKey(_:publishAhead:actor:)``).
    static let keyRolloutMargin: TimeInterval = 60

    /// Generates the next key, published at once and signing after `publishAhead`.
    public func rotateKey(_ algorithm: SignatureAlgorithm, publishAhead: TimeInterval, actor: AuditActor) throws(ServiceError) -> KeyRecord {
        // Shorter than the JWKS cache, a verifier holding the key set from before would
        // refuse the new key's tokens until its copy expires. Zero is the emergency (the
        // signing key is compromised): said explicitly, accepted.
        // And a minute more: a verifier may fetch the key set from a server up to 2 s before
        // that server reloads the folder, and the servers' clocks differ.
        let minimum = configuration.jwksMaxAge + Self.keyRolloutMargin
        guard publishAhead == 0 || publishAhead >= minimum else {
            throw .invalidInput(.invalidValue(
                field: "publish-ahead", value: TimeText.format(duration: publishAhead),
                expected: "at least \(TimeText.format(duration: minimum)): how long verifiers cache the JWKS (\(TimeText.format(duration: configuration.jwksMaxAge))) and a minute for every server to reload the folder (or 0s in an emergency: the new key signs at once, and verifiers with a cached key set refuse its tokens until it expires)"))
        }
        return try changeKeys(action: "key.rotate", actor: actor) { (ring: inout KeyRing, now: Date) throws(KeyRingError) in try ring.add(algorithm, now: now, activatesAt: now.addingTimeInterval(publishAhead)) }
    }

    /// Retires a key (refused for the signing key, or too soon, unless `force`).
    /// Retires a key (see ``KeyRing/retire(kid:now:force:)``); the retirement's
    /// ``KeyRing/Retirement/privateKeyLeft`` says when its private key file is still there,
    /// for the caller to tell the operator (it is in the audit entry too).
    public func retireKey(kid: String, force: Bool, actor: AuditActor) throws(ServiceError) -> KeyRing.Retirement {
        var left: (path: String, reason: String)?
        let record = try changeKeys(action: "key.retire", actor: actor, details: { left.map { ["privateKeyLeft": $0.path] } ?? [:] }) {
            (ring: inout KeyRing, now: Date) throws(KeyRingError) in
            let retirement = try ring.retire(kid: kid, now: now, force: force)
            left = retirement.privateKeyLeft
            return retirement.record
        }
        return KeyRing.Retirement(record: record, privateKeyLeft: left)
    }

    private func changeKeys(
        action: String, actor: AuditActor, details: () -> [String: String] = { [:] }, _ change: (inout KeyRing, Date) throws(KeyRingError) -> KeyRecord
    ) throws(ServiceError) -> KeyRecord {
        let record = try mapped {
            let at = now
            let (_, record) = try KeyRing.modify(directory: configuration.keysDirectory) { (ring: inout KeyRing) throws(KeyRingError) -> KeyRecord in
                let record = try change(&ring, at)
                // Held while the folder is still locked: two changes at once in this
                // process cannot end holding the older ring.
                hold(ring)
                return record
            }
            return record
        }
        // The folder is changed: a failure from here on must say so.
        do {
            try store.recordAudit(actor: actor, action: action, target: "key:\(record.kid)", details: [
                "alg": record.algorithm.rawValue, "activatesAt": TimeText.format(record.activatesAt),
            ].merging(details()) { $1 })
        } catch {
            throw .auditMissing(change: "\(action) of key \(record.kid)", reason: error.description)
        }
        return record
    }

    // MARK: - Issuing

    /// Refuses (503 `keys_unavailable`) when no token could be signed now: asked before a
    /// write whose answer is a token, so that nothing is written for an answer that fails.
    /// Makes no key (with the development setting the token's own signing makes one).
    func requireSigningKey() throws(ServiceError) {
        try mapped {
            let ring = try keys().ring
            if ring.signingRecord(at: now) != nil {
                _ = try signer(ring)  // the private key readable (kept once read)
            } else if !configuration.developmentKeys {
                throw KeyRingError.noSigningKey(path: configuration.keysDirectory.path)
            }
        }
    }

    /// The issuer for the ring's signing key. Without one, a development key is created
    /// when the configuration allows it (returned, so the caller can say so); otherwise
    /// this fails with ``KeyRingError/noSigningKey(path:)``.
    func issuer() throws -> (TokenIssuer, KeyRecord?) {
        var ring = try keys().ring
        var created: KeyRecord?
        if ring.signingRecord(at: now) == nil {
            // Without the development switch this throws noSigningKey: no key is made silently.
            (ring, created) = try KeyRing.loadOrCreate(directory: configuration.keysDirectory, now: now, createDevelopmentKey: configuration.developmentKeys)
            hold(ring)
            if let created {
                try store.recordAudit(actor: .system, action: "key.generate", target: "key:\(created.kid)", details: [
                    "alg": created.algorithm.rawValue, "reason": "development key on first use",
                ])
            }
        }
        return (TokenIssuer(signer: try signer(ring), issuer: configuration.issuer, clock: store.clock), created)
    }

    /// The signer of the ring's signing key, its private key read once and kept: opening,
    /// checking and parsing the PEM file costs about 1 ms, which capped `POST /v1/access`
    /// at ~1,000 grants a second (measured with Benchmarks/HTTPBenchmark/run.sh).
    func signer(_ ring: KeyRing) throws -> JWSSigner {
        guard let record = ring.signingRecord(at: now) else { throw KeyRingError.noSigningKey(path: configuration.keysDirectory.path) }
        if let cached = heldSigner.withLock({ $0 }), cached.kid == record.kid { return cached }
        let (signing, key) = try ring.signingKey(at: now)
        let signer = JWSSigner(key: key, kid: signing.kid)
        heldSigner.withLock { $0 = signer }
        return signer
    }

    /// What an account is entitled to now: memberships that grant access and a running trial,
    /// from its facts as one read (``Store/accountFacts(id:)``, the entry access checks read:
    /// a token and a check never see two states of the account).
    public func entitlements(accountID: AccountID) throws(ServiceError) -> EntitlementSnapshot {
        try mapped {
            guard let facts = try store.accountFacts(id: accountID) else { throw StoreError.accountNotFound(accountID.rawValue) }
            let at = now
            let trial = facts.trial.flatMap { $0.status(at: at) == .active ? $0.endsAt : nil }
            return EntitlementSnapshot(memberships: Self.liveMemberships(facts.memberships, at: at), trialEndsAt: trial)
        }
    }

    /// Of `memberships`, those that grant access at `at`, each with its plan's titles.
    static func liveMemberships(_ memberships: [Store.MembershipWithBundle], at: Date) -> [MembershipEntitlement] {
        memberships.filter { $0.membership.grantsAccess(at: at) }.map { item in
            let (membership, bundle) = (item.membership, item.bundle)
            return MembershipEntitlement(
                status: membership.status, plan: membership.planID, titles: bundle,
                periodEnd: membership.currentPeriodEnd, graceEnd: membership.gracePeriodEnd == nil || membership.status == .active ? nil : membership.accessEnd)
        }
    }

    /// Issues an access token with the account's current entitlements. Audited as
    /// `token.access` (its id, lifetime and audience) by `actor` when given (an operator's
    /// `paywall token issue`: whoever holds it reads as the reader), before it is handed over.
    public func issueAccessToken(account reference: String, lifetime: TimeInterval?, audience: String?, actor: AuditActor? = nil) throws(ServiceError) -> IssuedToken {
        try mapped {
            let ttl = lifetime ?? configuration.accessTokenLifetime
            try Self.checkLifetime(ttl, maximum: TokenLimits.maximumAccessLifetime)
            let audience = try issuingAudience(audience)  // before a first-use key is made
            let account = try store.account(matching: reference)
            guard let signOuts = try store.signOutsEverywhere(accountID: account.id) else { throw StoreError.accountNotFound(reference) }
            let snapshot = try entitlements(accountID: account.id)
            let (issuer, created) = try issuer()
            let (token, claims) = try issuer.accessToken(
                subject: account.id.rawValue, audience: audience, lifetime: ttl, entitlements: snapshot, signOutsEverywhere: signOuts)
            if let actor {
                try store.recordAudit(actor: actor, action: "token.access", target: "account:\(account.id)", details: [
                    "jti": claims.registered.tokenID, "lifetime": String(Int(ttl)), "audience": audience,
                ])
            }
            return IssuedToken(token: token, kind: .access, kid: issuer.signer.kid, claims: claims.registered, createdKey: created)
        }
    }

    /// Issues an article grant for an account (by reference) or an anonymous device.
    public func issueArticleGrant(subject: MeterSubject, title: String, article: String, lifetime: TimeInterval?, audience: String?) throws(ServiceError) -> IssuedToken {
        try mapped {
            let ttl = lifetime ?? configuration.articleGrantLifetime
            try Self.checkLifetime(ttl, maximum: TokenLimits.maximumGrantLifetime)
            let audience = try issuingAudience(audience)
            let titleID = try TitleID(validating: title)
            _ = try store.catalogTitle(id: titleID)
            let articleID = try ArticleRead.validateArticleID(article)
            let (issuer, created) = try issuer()
            var issued = try articleGrant(issuer, subject: subject, title: titleID, article: articleID, lifetime: ttl, audience: audience)
            issued.createdKey = created
            return issued
        }
    }

    /// An article grant for ids already checked (an access check found the title).
    func articleGrant(
        _ issuer: TokenIssuer, subject: MeterSubject, title: TitleID, article: String, lifetime: TimeInterval, audience: String? = nil
    ) throws -> IssuedToken {
        let sub: String
        switch subject {
        case let .account(id): sub = id.rawValue
        case .device: sub = subject.key
        }
        // Checked by the public callers (``issuingAudience(_:)``); an access check names none.
        let (token, claims) = try issuer.articleGrant(subject: sub, audience: audience ?? configuration.audience, title: title.rawValue, article: article, lifetime: lifetime)
        return IssuedToken(token: token, kind: .articleGrant, kid: issuer.signer.kid, claims: claims.registered, createdKey: nil)
    }

    /// The most titles one comp grant names (as `POST /admin/v1/accounts/{account}/comps` takes).
    public static let maximumCompTitles = 100

    /// Issues a comp grant: free access to `titles` for `days` days. Recorded in the audit log.
    public func issueCompGrant(account reference: String, titles: [String], days: Int, audience: String?, actor: AuditActor) throws(ServiceError) -> IssuedToken {
        try mapped {
            guard (1...TokenLimits.maximumCompDays).contains(days) else {
                throw DomainError.invalidValue(field: "days", value: String(days), expected: "1 to \(TokenLimits.maximumCompDays)")
            }
            guard !titles.isEmpty else { throw DomainError.invalidValue(field: "titles", value: "", expected: "at least one title id") }
            // The admin API's cap, for every caller (the CLI had none: found in review); a
            // comp's titles travel in its token.
            guard titles.count <= Self.maximumCompTitles else {
                throw DomainError.invalidValue(field: "titles", value: "\(titles.count) titles", expected: "at most \(Self.maximumCompTitles)")
            }
            let audience = try issuingAudience(audience)
            let account = try store.account(matching: reference)
            var ids: [String] = []
            for title in titles {
                let id = try TitleID(validating: title)
                _ = try store.catalogTitle(id: id)
                if !ids.contains(id.rawValue) { ids.append(id.rawValue) }
            }
            let (issuer, created) = try issuer()
            let (token, claims) = try issuer.compGrant(subject: account.id.rawValue, audience: audience, titles: ids, lifetime: TimeInterval(days) * 86_400)
            try store.recordAudit(actor: actor, action: "token.comp", target: "account:\(account.id)", details: [
                "titles": ids.joined(separator: ","), "days": String(days), "jti": claims.registered.tokenID, "kid": issuer.signer.kid,
            ])
            return IssuedToken(token: token, kind: .comp, kid: issuer.signer.kid, claims: claims.registered, createdKey: created)
        }
    }

    static func checkLifetime(_ ttl: TimeInterval, maximum: TimeInterval) throws {
        guard ttl > 0, ttl <= maximum else {
            throw DomainError.invalidValue(
                field: "lifetime", value: TimeText.format(duration: ttl), expected: "more than 0 and at most \(TimeText.format(duration: maximum))")
        }
    }

    // MARK: - Verifying

    /// A verifier trusting the live keys of the ring in force (built once per ring).
    public func tokenVerifier() throws(ServiceError) -> TokenVerifier {
        try keys().verifier
    }

    /// The `aud` a token is issued for: `audience` when given (1 to 256 printable
    /// characters, as `--audience` is checked), else the configured one. An empty one
    /// would mint a token no verifier accepts.
    func issuingAudience(_ audience: String?) throws(ServiceError) -> String {
        guard let audience else { return configuration.audience }
        guard ServiceConfiguration.isTokenLabel(audience) else {
            throw .invalidInput(.invalidValue(field: "audience", value: audience, expected: "1 to 256 printable characters"))
        }
        return audience
    }

    /// Verifies a token of one of the `kinds` for `audience` (default: the configured one).
    /// Callers name the kind they will act on, so an access token is never taken for an
    /// article grant. An admin token is also looked up in the store (revoked?): a read,
    /// a network round trip on PostgreSQL, so an async caller accepting admin tokens runs
    /// this off the cooperative pool (``authorizeAdmin(bearer:requiring:)``).
    public func verifyToken(_ token: String, kinds: Set<TokenKind>, audience: String? = nil) throws(ServiceError) -> VerifiedToken {
        let verifier = try tokenVerifier()
        let verified: VerifiedToken
        do {
            verified = try verifier.verify(token, expecting: kinds, audience: audience ?? configuration.audience)
        } catch {
            throw .token(error)
        }
        // Admin tokens can be revoked before they expire (`revokeAdminTokens`): the store
        // is asked on every use (admin calls are few; access checks never accept this kind).
        if case let .admin(claims) = verified {
            let registered = claims.registered
            if try mapped({ try store.isAdminTokenRevoked(tokenID: registered.tokenID, subject: registered.subject, issuedAt: registered.issuedAt) }) {
                throw .token(.revoked)
            }
        }
        return verified
    }
}
