import Foundation

/// Why a token was refused, precisely. The HTTP layer maps these to a generic answer and
/// never echoes the detail to a caller.
public enum TokenError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case tooLarge(limit: Int)
    case unsupportedAlgorithm(String)
    case algorithmMismatch(header: String, key: String)
    case unknownKey(String)
    case forbiddenHeader(String)
    case unknownCritical
    case badSignature
    case wrongType(expected: String, actual: String?)
    case wrongIssuer(String?)
    case wrongAudience
    case expired(Date)
    case notYetValid(Date)
    case issuedInFuture(Date)
    case missingClaim(String)
    case invalidClaim(String, reason: String)
    /// Valid, but revoked before it expired (admin tokens: `paywall token revoke-admin`).
    case revoked

    /// Every value that may come from a token (`kid`, `alg`, `typ`, `iss`, claim names)
    /// is escaped and cut to ``printableLimit`` characters (see ``printable(_:limit:)``),
    /// so a token cannot write newlines or terminal escapes into a log.
    public var description: String {
        func p(_ text: String) -> String { Self.printable(text) }
        switch self {
        case let .malformed(reason): return "malformed token: \(Self.printable(reason, limit: 200))"
        case let .tooLarge(limit): return "token larger than \(limit) bytes"
        case let .unsupportedAlgorithm(alg): return "algorithm '\(p(alg))' is not accepted (only ES256 and Ed25519)"
        case let .algorithmMismatch(header, key): return "token says '\(p(header))' but its key is pinned to \(p(key))"
        case let .unknownKey(kid): return "unknown key id '\(p(kid))' (not in the key ring, or retired)"
        case let .forbiddenHeader(name): return "header parameter '\(p(name))' is not accepted"
        case .unknownCritical: return "token has critical header extensions we do not understand"
        case .badSignature: return "bad signature"
        case let .wrongType(expected, actual): return "token type '\(actual.map(p) ?? "none")' where '\(p(expected))' was expected"
        case let .wrongIssuer(issuer): return "wrong issuer '\(issuer.map(p) ?? "none")'"
        case .wrongAudience: return "token is not for this audience"
        case let .expired(date): return "token expired at \(TokenTime.format(date))"
        case let .notYetValid(date): return "token not valid before \(TokenTime.format(date))"
        case let .issuedInFuture(date): return "token issued in the future (\(TokenTime.format(date)))"
        case let .missingClaim(name): return "missing claim '\(p(name))'"
        case let .invalidClaim(name, reason): return "invalid claim '\(p(name))': \(Self.printable(reason, limit: 200))"
        case .revoked: return "token was revoked before it expired"
        }
    }

    /// The most characters of a token-supplied value an error description shows.
    public static let printableLimit = 64

    /// `text` made safe to print on one line of a log or terminal: control characters
    /// (C0, DEL, C1), line and paragraph separators and bidirectional overrides are
    /// written as escapes (`\n`, `\r`, `\t`, `\u{1B}`); `\` and `'` are escaped so a value
    /// cannot close its quotes; only the first `limit` characters are kept, followed by
    /// `…(N more)`.
    public static func printable(_ text: String, limit: Int = printableLimit) -> String {
        var out = ""
        var kept = 0
        var total = 0
        for scalar in text.unicodeScalars {
            total += 1
            guard kept < limit else { continue }
            kept += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            default:
                if Self.mustEscape(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        if total > kept { out += "…(\(total - kept) more)" }
        return out
    }

    static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F: true
        // Line and paragraph separators; bidirectional embeddings, overrides and isolates.
        case 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}

enum TokenTime {
    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }
}
