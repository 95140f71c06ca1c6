import Foundation
import PaywallCrypto
import PaywallTokens

/// Signed double-submit CSRF tokens. A browser holds a random `paywall_csrf` cookie; every
/// form carries HMAC(key, cookie | session token) and every POST must send it back. A
/// cross-site page can make the browser send the cookies but cannot read them or the page,
/// so it cannot compute the field. Binding the session's token too means a form made before
/// signing in (or for another session) stops working once the session changes. The key is
/// the database's (``PaywallService/webFormKey()``): every server behind a load balancer
/// accepts the forms every other made, and a restart leaves open forms working.
struct CSRF: Sendable {
    private let key: [UInt8]

    init(key: [UInt8]) { self.key = key }

    /// Nil when the MAC cannot be made: the form then carries none, and nothing is valid.
    func token(seed: String, session: String?) -> String? {
        HMACSHA256.authenticate(key: key, message: Array((seed + "|" + (session ?? "")).utf8)).map(Base64URL.encode)
    }

    func isValid(_ presented: String?, seed: String?, session: String?) -> Bool {
        guard let presented, let seed, Cookies.isToken(seed), let expected = token(seed: seed, session: session) else { return false }
        return ConstantTime.equal(Array(presented.utf8), Array(expected.utf8))
    }
}

/// The cookies the pages set.
enum Cookies {
    /// The session's refresh token (HttpOnly: no script reads it; the page never holds an
    /// access token).
    static let session = "paywall_session"
    /// The CSRF seed (see ``CSRF``).
    static let csrf = "paywall_csrf"

    /// A value we could have made: base64url, 16 to 128 characters. Anything else in a
    /// cookie is ignored rather than looked up.
    static func isToken(_ value: String) -> Bool {
        (16...128).contains(value.utf8.count) && isBase64URL(value)
    }

    /// Only base64url characters (and, with `dots`, the `.` between a JWT's parts).
    static func isBase64URL(_ value: String, dots: Bool = false) -> Bool {
        value.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"): true
            case UInt8(ascii: "."): dots
            default: false
            }
        }
    }
}

/// A submitted `application/x-www-form-urlencoded` form.
struct Form: Sendable {
    private var fields: [String: String] = [:]

    /// At most this many bytes of form: ours have four short fields.
    static let limit = 16 * 1024

    init(urlEncoded body: String) {
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]) else { continue }
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            // The first value of a repeated field wins: a second one cannot override the CSRF field.
            if fields[name] == nil, let value { fields[name] = value }
        }
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    subscript(_ name: String) -> String? { fields[name] }

    /// A text field trimmed, or "" when absent.
    func text(_ name: String) -> String {
        (fields[name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Where to send the reader back after a form: a path of this site only (never another
/// host: `//evil.example` and `/\evil.example` are refused), without a query.
enum NextPath {
    static func validated(_ raw: String?) -> String? {
        guard let raw, raw.hasPrefix("/"), !raw.hasPrefix("//"), raw.utf8.count <= 300 else { return nil }
        let allowed = raw.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "/"): true
            default: false
            }
        }
        return allowed ? raw : nil
    }
}
