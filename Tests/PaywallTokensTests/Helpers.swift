import Foundation
import PaywallCore
import PaywallCrypto
@testable import PaywallTokens

/// HMAC-SHA256 (RFC 2104) over our SHA-256, for forging HS256 tokens in attack tests.
func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
    var block = key.count > 64 ? SHA256.hash(key) : key
    block += [UInt8](repeating: 0, count: 64 - block.count)
    let inner = SHA256.hash(block.map { $0 ^ 0x36 } + message)
    return SHA256.hash(block.map { $0 ^ 0x5C } + inner)
}

/// A signing key with its kid, a verifier trusting it, and an issuer.
struct TokenFixture {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_790_000_000))
    let key: PrivateKey
    let kid: String
    let verifier: TokenVerifier
    let issuer: TokenIssuer

    init(_ algorithm: SignatureAlgorithm = .es256) throws {
        key = try PrivateKey.generate(algorithm)
        kid = JWK.thumbprint(key.publicKey)
        verifier = TokenVerifier(jws: JWSVerifier(keys: [VerificationKey(kid: kid, publicKey: key.publicKey)]), issuer: "paywall", clock: clock)
        issuer = TokenIssuer(signer: JWSSigner(key: key, kid: kid), issuer: "paywall", clock: clock)
    }

    /// Signs arbitrary header and payload bytes with the fixture's key.
    func forge(header: String, payload: String, key signingKey: PrivateKey? = nil) throws -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let signature = try (signingKey ?? key).sign(Array(input.utf8))
        return input + "." + Base64URL.encode(signature)
    }

    var now: Int { Int(clock.now().timeIntervalSince1970) }

    func claims(exp: Int? = nil, extra: String = "") -> String {
        #"{"iss":"paywall","sub":"acc-1","aud":"api","iat":\#(now),"nbf":\#(now),"exp":\#(exp ?? now + 600),"jti":"j1","ent":{"memberships":[]}\#(extra)}"#
    }
}
