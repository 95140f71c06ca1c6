/// The kinds of token we issue, each with its own `typ` so that one can never be
/// accepted as another (RFC 8725 §3.11).
public enum TokenKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// A reader's entitlements, minutes long (RFC 9068's `at+jwt`).
    case access = "at+jwt"
    /// Proof that one reader may read one article in full, for a content server or CDN.
    case articleGrant = "paywall-article+jwt"
    /// Complimentary access to listed titles for some days, issued by support staff.
    case comp = "paywall-comp+jwt"
    /// An anonymous reader's device (`sub` = `device:<id>`), so the meter is kept on the
    /// server and not in a cookie the reader can clear. Renewed by presenting it.
    case device = "paywall-device+jwt"
    /// An administrator's bearer token for `/admin/v1` (`sub` = the admin's name, `scope` =
    /// what they may do), minutes to hours long. Its own `typ` so a reader's token can never
    /// be taken for one, nor one of these for a reader's.
    case admin = "paywall-admin+jwt"
    /// A gift link: anyone holding it may read one article in full for some days
    /// (`sub` = the giving member's account id).
    case gift = "paywall-gift+jwt"

    public var description: String {
        switch self {
        case .access: "access token"
        case .articleGrant: "article grant"
        case .comp: "comp grant"
        case .device: "device token"
        case .admin: "admin token"
        case .gift: "gift link"
        }
    }

    /// The kind a `typ` header names (case-insensitive; `application/` prefix allowed).
    public init?(typ: String) {
        var value = typ.lowercased()
        if value.hasPrefix("application/") { value.removeFirst("application/".count) }
        guard let kind = TokenKind(rawValue: value) else { return nil }
        self = kind
    }

    /// The short name used on the command line: `access`, `article`, `comp`, `device`, `admin` or `gift`.
    public var name: String {
        switch self {
        case .access: "access"
        case .articleGrant: "article"
        case .comp: "comp"
        case .device: "device"
        case .admin: "admin"
        case .gift: "gift"
        }
    }

    /// The kind a short name (`access`, `article`, `comp`) or a `typ` names; nil for
    /// anything else. For `paywall token verify --kind NAME`:
    /// `verifier.verify(token, expecting: [kind], audience: audience)`.
    public init?(name: String) {
        switch name.lowercased() {
        case "access": self = .access
        case "article", "article-grant": self = .articleGrant
        case "comp": self = .comp
        case "device": self = .device
        case "admin": self = .admin
        case "gift": self = .gift
        default:
            guard let kind = TokenKind(typ: name) else { return nil }
            self = kind
        }
    }
}
