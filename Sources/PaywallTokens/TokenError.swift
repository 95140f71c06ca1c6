import Foundation
import PaywallCore

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
    /// Valid, but revoked before it expired (admin tokens: `paywall token revoke-admin`;
    /// access tokens: every session of the account ended since it was issued).
    case revoked

    /// Every value that may come from a token (`kid`, `alg`, `typ`, `iss`, claim names)
    /// is escaped and cut to ``PrintableText/quotedLimit`` characters (``PrintableText/quoted(_:limit:)``),
    /// so a token cannot write newlines or terminal escapes into a log.
    public var description: String {
        func p(_ text: String) -> String { PrintableText.quoted(text) }
        switch self {
        case let .malformed(reason): return "malformed token: \(PrintableText.quoted(reason, limit: 200))"
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
        case let .invalidClaim(name, reason): return "invalid claim '\(p(name))': \(PrintableText.quoted(reason, limit: 200))"
        case .revoked: return "token was revoked before it expired"
        }
    }
}

enum TokenTime {
    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }
}
