import Foundation
import PaywallCore
import PaywallPolicy
import PaywallStore
import PaywallTokens

/// An administrator as an admin token establishes them: their name (the token's `sub`)
/// and scopes. Every admin operation is audited with ``actor``.
public struct AdminPrincipal: Sendable, Equatable {
    public var name: String
    public var scopes: Set<AdminScope>
    /// The token's `jti`, recorded with reads so an entry leads back to the token.
    public var tokenID: String
    /// When the token expires (the admin pages' cookie lasts as long).
    public var expiresAt: Date?

    public var actor: AuditActor { .admin(name) }

    public init(name: String, scopes: Set<AdminScope>, tokenID: String) {
        self.name = name
        self.scopes = scopes
        self.tokenID = tokenID
    }
}

/// A page of the audit log, newest first.
public struct AuditPage: Sendable {
    public var entries: [AuditEntry]
    /// Pass as `before` for the next (older) page; nil on the last page.
    public var nextBefore: Int64?
}

/// The policy in force, as an admin sees it.
public struct PolicySummary: Sendable {
    public var revision: String
    public var rules: [String]
    public var meters: [MeterDefinition]
    /// After a reload: the revision that was in force before it.
    public var previousRevision: String?
}

/// Reads per title over a period (what publishers are paid on).
public struct ReadsReport: Sendable {
    public var from: Date
    public var to: Date
    public var titles: [TitleReadCounts]
}

extension PaywallService {
    /// The most entries one page of the audit log holds.
    public static let maximumAuditPage = 1_000
    /// The longest period one reads report covers (about 10 years).
    public static let maximumReportPeriod: TimeInterval = 3_660 * 86_400

    // MARK: - Admin tokens

    /// Issues an admin token for `subject` (the admin's name: 1 to 64 of letters, digits,
    /// `.`, `_`, `-`, `@`) with `scopes`, for `lifetime` (default from the configuration,
    /// at most ``TokenLimits/maximumAdminLifetime``). Audited: who minted which token.
    public func issueAdminToken(
        subject: String, scopes: Set<AdminScope>, lifetime: TimeInterval?, audience: String?, actor: AuditActor
    ) throws(ServiceError) -> IssuedToken {
        try mapped {
            let name = try Self.validatedAdminName(subject)
            guard !scopes.isEmpty else {
                throw DomainError.invalidValue(field: "scope", value: "", expected: "at least one of \(AdminScope.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let ttl = lifetime ?? configuration.adminTokenLifetime
            try Self.checkLifetime(ttl, maximum: TokenLimits.maximumAdminLifetime)
            let audience = try issuingAudience(audience)
            let (issuer, created) = try issuer()
            let (token, claims) = try issuer.adminToken(subject: name, audience: audience, scopes: scopes, lifetime: ttl)
            try store.recordAudit(actor: actor, action: "token.admin", target: "admin:\(name)", details: [
                "scope": scopes.sorted().map(\.rawValue).joined(separator: " "), "jti": claims.registered.tokenID, "kid": issuer.signer.kid,
                "expiresAt": TimeText.format(claims.registered.expiresAt),
            ])
            return IssuedToken(token: token, kind: .admin, kid: issuer.signer.kid, claims: claims.registered, createdKey: created)
        }
    }

    /// What ``revokeAdminTokens(tokenID:subject:force:actor:)`` revoked.
    public struct AdminRevocationReport: Sendable, Equatable {
        public var revocation: Store.AdminRevocation
        /// For one token: the admin it was minted for and when it expires (from the audit
        /// entry of its minting); nil when it was not minted here (`force`).
        public var mintedFor: String?
        public var expiresAt: String?
    }

    /// Revokes admin tokens before they expire, on every server at once: one token by its
    /// `jti` (`tokenID`: the audit log's `token.admin` entry names it), or every token of the
    /// admin `subject` issued until now by this machine's clock (their `iat` is in whole
    /// seconds: a token minted in the same second is revoked too; mint a new one a second
    /// later). Exactly one of the two. An id no `token.admin` entry names is refused (a typo
    /// would leave the leaked token working) unless `force`. Audited. The revocation is kept
    /// as long as a token it covers could still be valid.
    @discardableResult
    public func revokeAdminTokens(tokenID: String?, subject: String?, force: Bool = false, actor: AuditActor) throws(ServiceError) -> AdminRevocationReport {
        try mapped {
            var report: AdminRevocationReport
            switch (tokenID, subject) {
            case let (id?, nil):
                // Our jtis are 16 random bytes in base64url (``TokenIssuer``): 22 characters.
                guard id.utf8.count <= 64, Base64URL.decode(id)?.count == 16 else {
                    // A whole token pasted here is a secret: not echoed into the message.
                    let shown = id.contains(".") || id.utf8.count > 64 ? "(\(id.utf8.count) characters, not shown)" : id
                    throw DomainError.invalidValue(field: "id", value: shown, expected: "an admin token's jti (22 letters, digits, '-' and '_', as the audit log shows it), not the token")
                }
                report = AdminRevocationReport(revocation: .token(id: id))
                if let minted = try store.mintedAdminToken(id: id) {
                    report.mintedFor = minted.subject
                    report.expiresAt = minted.expiresAt
                } else if !force {
                    throw StoreError.adminTokenNotFound(id)
                }
            case let (nil, name?):
                let name = try Self.validatedAdminName(name)
                // As for an id: a typo must not look like a revocation while the real
                // admin's tokens keep working.
                if !force, try store.auditEntries(filter: AuditFilter(action: "token.admin", target: "admin:\(name)"), limit: 1).isEmpty {
                    throw StoreError.adminNeverMinted(name)
                }
                // Through the verifier's leeway past now: a token minted just before this on
                // a host whose clock runs a few seconds ahead says it was issued after now,
                // and passed (found in review). Tokens minted in that leeway go too.
                report = AdminRevocationReport(revocation: .subject(name, issuedUntil: now.addingTimeInterval(configuration.tokenLeeway)))
            default:
                throw DomainError.invalidValue(field: "id", value: "", expected: "either a token's id or an admin's name, not both and not neither")
            }
            // Past this no token it covers is valid: the longest admin lifetime, plus the
            // verifier's leeway and a margin for clocks.
            try store.revokeAdminTokens(report.revocation, keepUntil: now.addingTimeInterval(TokenLimits.maximumAdminLifetime + 3_600), actor: actor)
            return report
        }
    }

    /// Revokes the admin token `token` itself (a leaked token at hand): it must verify now,
    /// since an expired or forged one opens nothing and needs no revocation (refused with
    /// its reason), and one already revoked says so. Then as ``revokeAdminTokens(tokenID:subject:force:actor:)``
    /// with its `jti`.
    @discardableResult
    public func revokeAdminToken(_ token: String, actor: AuditActor) throws(ServiceError) -> AdminRevocationReport {
        guard case let .admin(claims) = try verifyToken(token, kinds: [.admin]) else { throw .adminTokenRequired }
        return try revokeAdminTokens(tokenID: claims.registered.tokenID, subject: nil, force: true, actor: actor)
    }

    /// An admin's name as it appears in `sub` and the audit log (`admin:<name>`): the CLI's
    /// `--actor` is checked with it too (the audit log is append-only; a bad name in it
    /// stays for good).
    public static func validatedAdminName(_ raw: String) throws(DomainError) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@".unicodeScalars)
        guard (1...64).contains(raw.unicodeScalars.count), raw.unicodeScalars.allSatisfy(allowed.contains) else {
            throw .invalidValue(field: "subject", value: raw, expected: "1 to 64 letters, digits, '.', '_', '-' or '@'")
        }
        return raw
    }

    /// The administrator a bearer token names, if it is a valid admin token with `scope`.
    /// No token: ``ServiceError/tokenRequired`` (401); a token that fails verification:
    /// ``ServiceError/token(_:)`` (401); a valid token of another kind (a reader's):
    /// ``ServiceError/adminTokenRequired`` (403); without the scope:
    /// ``ServiceError/missingScope(_:)`` (403).
    public func adminPrincipal(bearer: String?, requiring scope: AdminScope) throws(ServiceError) -> AdminPrincipal {
        let admin = try adminPrincipal(bearer: bearer)
        guard admin.scopes.contains(scope) else { throw .missingScope(scope.rawValue) }
        return admin
    }

    /// ``adminPrincipal(bearer:requiring:)`` (any scope when `scope` is nil) for a request:
    /// the signature and claims are checked on the caller's task, and whether the token was
    /// revoked is asked of the store there too on SQLite (a local read), on the blocking pool
    /// on PostgreSQL (a round trip). A request with no token or a forged one never takes a
    /// blocking-pool thread.
    public func authorizeAdmin(bearer: String?, requiring scope: AdminScope?) async throws(ServiceError) -> AdminPrincipal {
        try await offCooperativePoolIfShared { service throws(ServiceError) in
            if let scope { try service.adminPrincipal(bearer: bearer, requiring: scope) } else { try service.adminPrincipal(bearer: bearer) }
        }
    }

    /// The administrator a valid admin token names, whatever its scopes (the admin pages'
    /// sign-in; each page then asks for its own scope), with when the token expires.
    public func adminPrincipal(bearer: String?) throws(ServiceError) -> AdminPrincipal {
        guard let bearer else { throw .tokenRequired }
        // Every kind is verified in full (signature, iss, aud, times) before its kind is
        // judged: a forged or expired token is 401 whatever its typ says; only a genuine
        // token of another kind is "forbidden". Not cached: admin calls are few.
        guard case let .admin(claims) = try verifyToken(bearer, kinds: Set(TokenKind.allCases)) else { throw .adminTokenRequired }
        var admin = AdminPrincipal(name: claims.registered.subject, scopes: claims.scopes, tokenID: claims.registered.tokenID)
        admin.expiresAt = claims.registered.expiresAt
        return admin
    }

    /// Runs an admin read and records it (admins reading readers' data is itself audited);
    /// a read that fails records nothing.
    func auditedRead<T>(_ admin: AdminPrincipal, _ action: String, target: String, details: [String: String] = [:], _ body: () throws -> T) throws(ServiceError) -> T {
        try mapped {
            let value = try body()
            var details = details
            details["jti"] = admin.tokenID
            try store.recordAudit(actor: admin.actor, action: action, target: target, details: details)
            return value
        }
    }

    // MARK: - Catalog

    /// Every title (audited as `admin.titles.list`).
    public func adminTitles(by admin: AdminPrincipal) throws(ServiceError) -> [Title] {
        try auditedRead(admin, "admin.titles.list", target: "catalog") { try store.titles() }
    }

    /// One title by id.
    public func adminTitle(_ id: String, by admin: AdminPrincipal) throws(ServiceError) -> Title {
        try auditedRead(admin, "admin.title.view", target: "title:\(id)") {
            let titleID = try TitleID(validating: id)
            guard let title = try store.title(id: titleID) else { throw StoreError.titleNotFound(titleID.rawValue) }
            return title
        }
    }

    /// Every plan.
    public func adminPlans(by admin: AdminPrincipal) throws(ServiceError) -> [Plan] {
        try auditedRead(admin, "admin.plans.list", target: "catalog") { try store.plans() }
    }

    /// One plan by id.
    public func adminPlan(_ id: String, by admin: AdminPrincipal) throws(ServiceError) -> Plan {
        try auditedRead(admin, "admin.plan.view", target: "plan:\(id)") {
            let planID = try PlanID(validating: id)
            guard let plan = try store.plan(id: planID) else { throw StoreError.planNotFound(planID.rawValue) }
            return plan
        }
    }

    // MARK: - Members

    /// An account (by id or email) with its trial and memberships.
    public func adminAccount(_ reference: String, by admin: AdminPrincipal) throws(ServiceError) -> AccountDetail {
        let detail = try accountDetail(reference)
        return try auditedRead(admin, "admin.account.view", target: "account:\(detail.account.id)") { detail }
    }

    /// An account's memberships with their histories.
    public func adminMemberships(account reference: String, by admin: AdminPrincipal) throws(ServiceError) -> (Account, [MembershipRecord]) {
        let records = try membershipRecords(account: reference)
        return try auditedRead(admin, "admin.memberships.view", target: "account:\(records.0.id)") { records }
    }

    /// Marks the account's membership of `plan` (or its only live one) past due: access
    /// continues until `graceEnd`, which must be in the future.
    public func markPastDue(account reference: String, plan: String?, graceEnd: Date, actor: AuditActor) throws(ServiceError) -> Membership {
        try mapped {
            try Self.checkFutureEnd(graceEnd, field: "graceEnd", now: now)
            let target = try liveMembership(account: reference, plan: plan)
            return try store.changeStatus(id: target.id, to: .pastDue, graceEnd: graceEnd, actor: actor, reason: "payment failed")
        }
    }

    /// The account's one live (not expired) membership of `plan`, or its only live one,
    /// among those an administrator manages: a membership paid through Stripe or the App
    /// Store is the provider's (an admin cancel would be undone by its next event, and an
    /// admin grant beside it is a membership of its own).
    func liveMembership(account reference: String, plan: String?) throws -> Membership {
        let account = try store.account(matching: reference)
        let live = try store.memberships(accountID: account.id).filter { $0.status != .expired && !$0.source.isProvider }
        let candidates: [Membership]
        if let plan {
            let planID = try PlanID(validating: plan)
            candidates = live.filter { $0.planID == planID }
        } else {
            candidates = live
        }
        guard let target = candidates.first else {
            throw StoreError.membershipNotFound("for account '\(account.email)'\(plan.map { " and plan '\($0)'" } ?? "")")
        }
        guard candidates.count == 1 else {
            throw DomainError.invalidValue(
                field: "plan", value: "",
                expected: "one of \(candidates.map(\.planID.rawValue).joined(separator: ", ")) (the account has several memberships)")
        }
        return target
    }

    /// Ends an account's running trial now (the person still cannot start another).
    public func endTrial(account reference: String, actor: AuditActor) throws(ServiceError) -> Trial {
        try mapped {
            let account = try store.account(matching: reference)
            return try store.cancelTrial(accountID: account.id, actor: actor)
        }
    }

    // MARK: - Audit and reports

    /// A page of the audit log matching `filter`, optionally about one account (by id or
    /// email, instead of `filter.target`), newest first.
    public func adminAuditPage(filter: AuditFilter, account: String?, limit: Int, by admin: AdminPrincipal) throws(ServiceError) -> AuditPage {
        guard (1...Self.maximumAuditPage).contains(limit) else {
            throw .invalidInput(.invalidValue(field: "limit", value: String(limit), expected: "1 to \(Self.maximumAuditPage)"))
        }
        let filter = try resolvedAuditFilter(filter, account: account)
        return try auditedRead(admin, "admin.audit.list", target: "audit") {
            // One more than asked: whether an older page exists, without a count.
            let found = try store.auditEntries(filter: filter, limit: limit + 1)
            let entries = Array(found.prefix(limit))
            return AuditPage(entries: entries, nextBefore: found.count > limit ? entries.last?.id : nil)
        }
    }

    /// Reads per title in `[from, to)`: metered and through gift links.
    public func readsReport(from: Date, to: Date, title: String?, by admin: AdminPrincipal) throws(ServiceError) -> ReadsReport {
        guard from < to, to.timeIntervalSince(from) <= Self.maximumReportPeriod else {
            throw .invalidInput(.invalidValue(field: "to", value: TimeText.format(to), expected: "later than from, and at most 3660 days after it"))
        }
        return try auditedRead(admin, "admin.reads.report", target: "catalog", details: ["from": TimeText.format(from), "to": TimeText.format(to)]) {
            let titleID = try title.map { try TitleID(validating: $0) }
            if let titleID, try store.title(id: titleID) == nil { throw StoreError.titleNotFound(titleID.rawValue) }
            return ReadsReport(from: from, to: to, titles: try store.readsByTitle(from: from, to: to, title: titleID))
        }
    }

    // MARK: - Policy

    /// The policy in force.
    public func adminPolicy(by admin: AdminPrincipal) throws(ServiceError) -> PolicySummary {
        let policy = try policy()
        return try auditedRead(admin, "admin.policy.view", target: "policy") {
            PolicySummary(revision: policy.revision, rules: policy.ruleNames, meters: policy.meters)
        }
    }

    /// Loads the policy folder again and puts it in force when it checks (the running
    /// one stays otherwise); audited with both revisions.
    public func adminReloadPolicy(by admin: AdminPrincipal) throws(ServiceError) -> PolicySummary {
        let previous = try? policy().revision
        let loaded: Policy
        do {
            loaded = try reloadPolicy()
        } catch {
            // Refused, the old policy in force: audited too (who tried, and the first reason).
            if case let .policy(errors) = error {
                let first = errors.diagnostics.first.map { "\($0.location): \($0.message)" } ?? ""
                _ = try? mapped {
                    try store.recordAudit(actor: admin.actor, action: "policy.reload-refused", target: "policy", details: [
                        "errors": String(errors.diagnostics.count), "first": String(first.prefix(300)), "kept": previous ?? "none", "jti": admin.tokenID,
                    ])
                }
            }
            throw error
        }
        // In force already: a failure from here on says so (answered as a plain database
        // error, the caller took the reload for not done; found in review).
        do {
            try store.recordAudit(actor: admin.actor, action: "policy.reload", target: "policy", details: [
                "from": previous ?? "none", "to": loaded.revision, "jti": admin.tokenID,
            ])
        } catch {
            throw .auditMissing(change: "the reload of the policy (revision \(loaded.revision) in force)", reason: error.description)
        }
        return PolicySummary(revision: loaded.revision, rules: loaded.ruleNames, meters: loaded.meters, previousRevision: previous)
    }
}
