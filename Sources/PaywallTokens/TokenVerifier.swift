import Foundation
import PaywallCore
import PaywallCrypto

/// A verified token of any of our kinds.
public enum VerifiedToken: Equatable, Sendable {
    case access(AccessClaims)
    case articleGrant(ArticleGrantClaims)
    case comp(CompGrantClaims)
    case device(DeviceClaims)
    case admin(AdminClaims)
    case gift(GiftClaims)

    public var registered: RegisteredClaims {
        switch self {
        case let .access(claims): claims.registered
        case let .articleGrant(claims): claims.registered
        case let .comp(claims): claims.registered
        case let .device(claims): claims.registered
        case let .admin(claims): claims.registered
        case let .gift(claims): claims.registered
        }
    }

    public var kind: TokenKind {
        switch self {
        case .access: .access
        case .articleGrant: .articleGrant
        case .comp: .comp
        case .device: .device
        case .admin: .admin
        case .gift: .gift
        }
    }
}

/// Verifies our tokens end to end: the JWS (see ``JWSVerifier``), then `typ`, `iss`,
/// `aud`, `exp`, `nbf` and `iat` with a small leeway, then the kind's own claims.
public struct TokenVerifier: Sendable {
    public let jws: JWSVerifier
    public let issuer: String
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    public let leeway: TimeInterval
    public let clock: any PaywallClock

    public init(jws: JWSVerifier, issuer: String, leeway: TimeInterval = 30, clock: any PaywallClock = SystemClock()) {
        self.jws = jws
        self.issuer = issuer
        self.leeway = leeway
        self.clock = clock
    }

    /// Verifies an access token for `audience`.
    public func verifyAccess(_ token: String, audience: String) throws(TokenError) -> AccessClaims {
        guard case let .access(claims) = try verify(token, expecting: [.access], audience: audience) else { throw .wrongType(expected: TokenKind.access.rawValue, actual: nil) }
        return claims
    }

    /// Verifies an article grant for `audience`.
    public func verifyArticleGrant(_ token: String, audience: String) throws(TokenError) -> ArticleGrantClaims {
        guard case let .articleGrant(claims) = try verify(token, expecting: [.articleGrant], audience: audience) else { throw .wrongType(expected: TokenKind.articleGrant.rawValue, actual: nil) }
        return claims
    }

    /// Verifies a comp grant for `audience`.
    public func verifyComp(_ token: String, audience: String) throws(TokenError) -> CompGrantClaims {
        guard case let .comp(claims) = try verify(token, expecting: [.comp], audience: audience) else { throw .wrongType(expected: TokenKind.comp.rawValue, actual: nil) }
        return claims
    }

    /// Verifies a token that must be one of `kinds`.
    public func verify(_ token: String, expecting kinds: Set<TokenKind>, audience: String) throws(TokenError) -> VerifiedToken {
        let verified = try jws.verify(token)
        let typ = verified.header["typ"]?.stringValue
        guard let kind = typ.flatMap(TokenKind.init(typ:)), kinds.contains(kind) else {
            throw .wrongType(expected: kinds.map(\.rawValue).sorted().joined(separator: " or "), actual: typ)
        }
        let object: JSONObject
        do {
            guard case let .object(parsed) = try JSONValue.parse(verified.payload, maxDepth: 8) else { throw TokenError.malformed("claims are not a JSON object") }
            object = parsed
        } catch let error as JSONError {
            throw .malformed("claims: \(error)")
        } catch {
            throw .malformed("claims are not a JSON object")
        }
        let registered = try RegisteredClaims(object)
        guard registered.issuer == issuer else { throw .wrongIssuer(registered.issuer) }
        guard registered.audience.contains(audience) else { throw .wrongAudience }
        let now = clock.now()
        if now.timeIntervalSince(registered.expiresAt) > leeway { throw .expired(registered.expiresAt) }
        if registered.issuedAt.timeIntervalSince(now) > leeway { throw .issuedInFuture(registered.issuedAt) }
        if registered.notBefore.timeIntervalSince(now) > leeway { throw .notYetValid(registered.notBefore) }
        switch kind {
        case .access: return .access(try AccessClaims(object))
        case .articleGrant: return .articleGrant(try ArticleGrantClaims(object))
        case .comp: return .comp(try CompGrantClaims(object))
        case .device: return .device(try DeviceClaims(object))
        case .admin: return .admin(try AdminClaims(object))
        case .gift: return .gift(try GiftClaims(object))
        }
    }
}

extension VerifiedToken {
    /// The claims as JSON.
    public var json: JSONValue {
        switch self {
        case let .access(claims): claims.json
        case let .articleGrant(claims): claims.json
        case let .comp(claims): claims.json
        case let .device(claims): claims.json
        case let .admin(claims): claims.json
        case let .gift(claims): claims.json
        }
    }
}
