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

    public var description: String {
        switch self {
        case let .malformed(reason): "malformed token: \(reason)"
        case let .tooLarge(limit): "token larger than \(limit) bytes"
        case let .unsupportedAlgorithm(alg): "algorithm '\(alg)' is not accepted (only ES256 and Ed25519)"
        case let .algorithmMismatch(header, key): "token says '\(header)' but its key is pinned to \(key)"
        case let .unknownKey(kid): "unknown key id '\(kid)' (not in the key ring, or retired)"
        case let .forbiddenHeader(name): "header parameter '\(name)' is not accepted"
        case .unknownCritical: "token has critical header extensions we do not understand"
        case .badSignature: "bad signature"
        case let .wrongType(expected, actual): "token type '\(actual ?? "none")' where '\(expected)' was expected"
        case let .wrongIssuer(issuer): "wrong issuer '\(issuer ?? "none")'"
        case .wrongAudience: "token is not for this audience"
        case let .expired(date): "token expired at \(TokenTime.format(date))"
        case let .notYetValid(date): "token not valid before \(TokenTime.format(date))"
        case let .issuedInFuture(date): "token issued in the future (\(TokenTime.format(date)))"
        case let .missingClaim(name): "missing claim '\(name)'"
        case let .invalidClaim(name, reason): "invalid claim '\(name)': \(reason)"
        }
    }
}

enum TokenTime {
    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }
}
