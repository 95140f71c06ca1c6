import Foundation
import PaywallCore

/// The registered claims every token of ours carries (RFC 7519 §4.1).
public struct RegisteredClaims: Equatable, Sendable {
    public var issuer: String
    /// The account id, or `device:<id>` for an anonymous reader's article grant.
    public var subject: String
    public var audience: [String]
    public var issuedAt: Date
    public var notBefore: Date
    public var expiresAt: Date
    public var tokenID: String

    public init(issuer: String, subject: String, audience: [String], issuedAt: Date, notBefore: Date, expiresAt: Date, tokenID: String) {
        self.issuer = issuer
        self.subject = subject
        self.audience = audience
        self.issuedAt = issuedAt
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.tokenID = tokenID
    }

    func write(to writer: inout JSONWriter) {
        writer.string("iss", issuer)
        writer.string("sub", subject)
        if audience.count == 1 {
            writer.string("aud", audience[0])
        } else {
            writer.arrayValue("aud")
            for value in audience { writer.string(value) }
            writer.endArray()
        }
        writer.seconds("iat", issuedAt.timeIntervalSince1970)
        writer.seconds("nbf", notBefore.timeIntervalSince1970)
        writer.seconds("exp", expiresAt.timeIntervalSince1970)
        writer.string("jti", tokenID)
    }

    init(_ object: JSONObject) throws(TokenError) {
        issuer = try Self.string(object, "iss")
        subject = try Self.string(object, "sub")
        switch object["aud"] {
        case let .string(value)?: audience = [value]
        case let .array(values)?:
            audience = values.compactMap(\.stringValue)
            guard audience.count == values.count, !audience.isEmpty else { throw .invalidClaim("aud", reason: "must be a string or an array of strings") }
        case nil: throw .missingClaim("aud")
        default: throw .invalidClaim("aud", reason: "must be a string or an array of strings")
        }
        issuedAt = try Self.date(object, "iat")
        expiresAt = try Self.date(object, "exp")
        notBefore = object["nbf"] == nil ? issuedAt : try Self.date(object, "nbf")
        tokenID = try Self.string(object, "jti")
    }

    static func string(_ object: JSONObject, _ name: String) throws(TokenError) -> String {
        guard let value = object[name] else { throw .missingClaim(name) }
        guard let text = value.stringValue, !text.isEmpty else { throw .invalidClaim(name, reason: "must be a non-empty string") }
        return text
    }

    static func date(_ object: JSONObject, _ name: String) throws(TokenError) -> Date {
        guard let value = object[name] else { throw .missingClaim(name) }
        guard let seconds = value.numberValue, seconds >= 0, seconds < 1e11 else { throw .invalidClaim(name, reason: "must be a NumericDate") }
        return Date(timeIntervalSince1970: seconds)
    }
}

/// An access token's claims: who, and the entitlements the policy needs offline.
public struct AccessClaims: Equatable, Sendable {
    public var registered: RegisteredClaims
    public var entitlements: EntitlementSnapshot
    /// `soe`: how many times every session of the account had ended when the token was
    /// issued (``Account/signOutsEverywhere``). The API refuses the token once the account's
    /// count is higher. A token without it (issued before the claim) counts as 0.
    public var signOutsEverywhere: Int

    public init(registered: RegisteredClaims, entitlements: EntitlementSnapshot, signOutsEverywhere: Int = 0) {
        self.registered = registered
        self.entitlements = entitlements
        self.signOutsEverywhere = signOutsEverywhere
    }

    /// The largest `soe` read: an integer a JSON number holds exactly.
    static let maximumSignOuts = 1 << 53

    /// The claims as JSON bytes, as signed.
    func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        registered.write(to: &writer)
        writer.objectValue("ent")
        writer.arrayValue("memberships")
        for membership in entitlements.memberships {
            writer.beginObject()
            writer.string("status", membership.status.rawValue)
            writer.string("plan", membership.plan.rawValue)
            switch membership.titles {
            case .all: writer.string("titles", "all")
            case let .titles(set):
                writer.arrayValue("titles")
                for title in set.sorted() { writer.string(title.rawValue) }
                writer.endArray()
            }
            writer.seconds("periodEnd", membership.periodEnd.timeIntervalSince1970)
            if let grace = membership.graceEnd { writer.seconds("graceEnd", grace.timeIntervalSince1970) }
            writer.endObject()
        }
        writer.endArray()
        if let trial = entitlements.trialEndsAt { writer.seconds("trialEnd", trial.timeIntervalSince1970) }
        writer.endObject()
        writer.key("soe")
        writer.integer(Int64(signOutsEverywhere))
        writer.endObject()
        return writer.bytes
    }

    public var json: JSONValue { (try? JSONValue.parse(encoded())) ?? .null }

    init(_ object: JSONObject) throws(TokenError) {
        registered = try RegisteredClaims(object)
        guard let ent = object["ent"]?.objectValue else { throw .missingClaim("ent") }
        var memberships: [MembershipEntitlement] = []
        for item in ent["memberships"]?.arrayValue ?? [] {
            guard let member = item.objectValue,
                  let status = member["status"]?.stringValue.flatMap(MembershipStatus.init(rawValue:)),
                  let plan = member["plan"]?.stringValue
            else { throw .invalidClaim("ent.memberships", reason: "each needs a known status and a plan") }
            let titles: TitleBundle
            switch member["titles"] {
            case .string("all")?: titles = .all
            case let .array(list)?: titles = .titles(Set(list.compactMap(\.stringValue).map(TitleID.init(rawValue:))))
            default: throw .invalidClaim("ent.memberships", reason: "titles must be \"all\" or a list")
            }
            let periodEnd = try RegisteredClaims.date(member, "periodEnd")
            let grace = member["graceEnd"] == nil ? nil : try RegisteredClaims.date(member, "graceEnd")
            memberships.append(MembershipEntitlement(status: status, plan: PlanID(rawValue: plan), titles: titles, periodEnd: periodEnd, graceEnd: grace))
        }
        let trial = ent["trialEnd"] == nil ? nil : try RegisteredClaims.date(ent, "trialEnd")
        entitlements = EntitlementSnapshot(memberships: memberships, trialEndsAt: trial)
        switch object["soe"] {
        case nil: signOutsEverywhere = 0
        case let .number(value)?:
            guard value >= 0, value <= Double(Self.maximumSignOuts), value.rounded(.towardZero) == value else {
                throw .invalidClaim("soe", reason: "must be a whole number from 0")
            }
            signOutsEverywhere = Int(value)
        default: throw .invalidClaim("soe", reason: "must be a whole number from 0")
        }
    }
}

/// An article grant's claims: this subject may read this article of this title in full.
/// Gift links carry the same claims (``GiftClaims``).
public struct ArticleGrantClaims: Equatable, Sendable {
    public var registered: RegisteredClaims
    public var title: String
    public var article: String

    public init(registered: RegisteredClaims, title: String, article: String) {
        self.registered = registered
        self.title = title
        self.article = article
    }

    /// The claims as JSON bytes, as signed.
    func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        registered.write(to: &writer)
        writer.string("title", title)
        writer.string("article", article)
        writer.endObject()
        return writer.bytes
    }

    public var json: JSONValue { (try? JSONValue.parse(encoded())) ?? .null }

    init(_ object: JSONObject) throws(TokenError) {
        registered = try RegisteredClaims(object)
        title = try RegisteredClaims.string(object, "title")
        article = try RegisteredClaims.string(object, "article")
    }
}

/// A comp grant's claims: free access to these titles until the token expires.
public struct CompGrantClaims: Equatable, Sendable {
    public var registered: RegisteredClaims
    public var titles: [String]

    public init(registered: RegisteredClaims, titles: [String]) {
        self.registered = registered
        self.titles = titles
    }

    /// The claims as JSON bytes, as signed.
    func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        registered.write(to: &writer)
        writer.arrayValue("titles")
        for title in titles { writer.string(title) }
        writer.endArray()
        writer.endObject()
        return writer.bytes
    }

    public var json: JSONValue { (try? JSONValue.parse(encoded())) ?? .null }

    init(_ object: JSONObject) throws(TokenError) {
        registered = try RegisteredClaims(object)
        guard let list = object["titles"]?.arrayValue, !list.isEmpty else { throw .missingClaim("titles") }
        titles = list.compactMap(\.stringValue)
        guard titles.count == list.count else { throw .invalidClaim("titles", reason: "must be strings") }
    }
}

/// A device token's claims: the registered ones, with `sub` = `device:<id>`.
public struct DeviceClaims: Equatable, Sendable {
    public var registered: RegisteredClaims

    public init(registered: RegisteredClaims) {
        self.registered = registered
    }

    /// The device id (`sub` without its `device:` prefix).
    public var deviceID: String { String(registered.subject.dropFirst(DeviceClaims.prefix.count)) }

    static let prefix = "device:"

    /// The claims as JSON bytes, as signed.
    func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        registered.write(to: &writer)
        writer.endObject()
        return writer.bytes
    }

    public var json: JSONValue { (try? JSONValue.parse(encoded())) ?? .null }

    init(_ object: JSONObject) throws(TokenError) {
        registered = try RegisteredClaims(object)
        guard registered.subject.hasPrefix(Self.prefix), registered.subject.count > Self.prefix.count else {
            throw .invalidClaim("sub", reason: "must be device:<id>")
        }
    }
}

/// What an admin token allows: each scope opens one part of `/admin/v1`.
public enum AdminScope: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// Titles and plans.
    case catalog
    /// Accounts, memberships, trials and comps.
    case members
    /// The audit log and the reads report (what publishers are paid on).
    case audit
    /// The policy in force and its reload.
    case policy
    /// A reader's own data: the export of it and the account's erasure (data-protection
    /// requests). Apart from `members`: staff who grant memberships and end trials need
    /// not be able to download every reader's data or delete accounts.
    case privacy

    public var description: String { rawValue }
    public static func < (lhs: AdminScope, rhs: AdminScope) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// An admin token's claims: who (`sub`, the admin's name) and what they may do (`scope`,
/// space-separated as in RFC 8693 §4.2).
public struct AdminClaims: Equatable, Sendable {
    public var registered: RegisteredClaims
    public var scopes: Set<AdminScope>

    public init(registered: RegisteredClaims, scopes: Set<AdminScope>) {
        self.registered = registered
        self.scopes = scopes
    }

    /// The claims as JSON bytes, as signed.
    func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        registered.write(to: &writer)
        writer.string("scope", scopes.sorted().map(\.rawValue).joined(separator: " "))
        writer.endObject()
        return writer.bytes
    }

    public var json: JSONValue { (try? JSONValue.parse(encoded())) ?? .null }

    init(_ object: JSONObject) throws(TokenError) {
        registered = try RegisteredClaims(object)
        let text = try RegisteredClaims.string(object, "scope")
        var scopes: Set<AdminScope> = []
        for name in text.split(separator: " ") {
            // A scope this version does not know is ignored: a route opens only for a scope
            // it names, so ignoring one can only take rights away, never give them. Refused
            // instead (until the sixteenth session), a token minted by a newer server for a
            // new scope (`privacy`) was refused whole on the older servers of a rolling
            // upgrade: 401 on every route, and the admin pages signed out at random (found
            // in review). A name is never reused for another meaning.
            if let scope = AdminScope(rawValue: String(name)) { scopes.insert(scope) }
        }
        guard !scopes.isEmpty else { throw .invalidClaim("scope", reason: "must name at least one scope this server knows") }
        self.scopes = scopes
    }
}

/// A gift link's claims: the same shape as an article grant's (this article of this
/// title, until the token expires); the token kind (`paywall-gift+jwt`) is what differs.
/// `sub` is the giving member's account id; `jti` is the gift's id (the service refuses a
/// gift it has no record of).
public typealias GiftClaims = ArticleGrantClaims
