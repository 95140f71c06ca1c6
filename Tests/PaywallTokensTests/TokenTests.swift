import Foundation
import Testing
import PaywallCore
import PaywallCrypto
@testable import PaywallTokens

@Suite("Issuing and verifying tokens")
struct TokenTests {
    @Test("an access token round trips with its entitlements", arguments: SignatureAlgorithm.allCases)
    func accessRoundTrip(_ algorithm: SignatureAlgorithm) throws {
        let f = try TokenFixture(algorithm)
        let snapshot = EntitlementSnapshot(
            memberships: [
                MembershipEntitlement(status: .active, plan: PlanID(rawValue: "monthly-all"), titles: .all,
                                      periodEnd: Date(timeIntervalSince1970: 1_792_000_000), graceEnd: nil),
                MembershipEntitlement(status: .pastDue, plan: PlanID(rawValue: "news"), titles: .titles([TitleID(rawValue: "euronews")]),
                                      periodEnd: Date(timeIntervalSince1970: 1_790_000_100), graceEnd: Date(timeIntervalSince1970: 1_790_600_000)),
            ],
            trialEndsAt: Date(timeIntervalSince1970: 1_791_000_000))
        let (token, issued) = try f.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 900, entitlements: snapshot)
        let header = try JSONValue.parse(Base64URL.decode(token.split(separator: ".")[0])!)
        #expect(header == .object(["alg": .string(algorithm.rawValue), "kid": .string(f.kid), "typ": .string("at+jwt")]))
        let verified = try f.verifier.verifyAccess(token, audience: "api")
        #expect(verified == issued)
        #expect(verified.entitlements == snapshot)
        #expect(verified.registered.expiresAt.timeIntervalSince(verified.registered.issuedAt) == 900)
    }

    @Test("each kind verifies only as itself")
    func kindsAreDistinct() throws {
        let f = try TokenFixture()
        let (grant, _) = try f.issuer.articleGrant(subject: "device:d1", audience: "cdn", title: "euronews", article: "a1", lifetime: 300)
        let (comp, _) = try f.issuer.compGrant(subject: "acc-1", audience: "api", titles: ["euronews"], lifetime: 7 * 86_400)
        let (access, _) = try f.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 900, entitlements: .none)
        #expect(try f.verifier.verifyArticleGrant(grant, audience: "cdn").article == "a1")
        #expect(try f.verifier.verifyComp(comp, audience: "api").titles == ["euronews"])
        #expect(throws: TokenError.wrongType(expected: "at+jwt", actual: "paywall-article+jwt")) { try f.verifier.verifyAccess(grant, audience: "cdn") }
        #expect(throws: TokenError.wrongType(expected: "at+jwt", actual: "paywall-comp+jwt")) { try f.verifier.verifyAccess(comp, audience: "api") }
        #expect(throws: TokenError.wrongType(expected: "paywall-article+jwt", actual: "at+jwt")) { try f.verifier.verifyArticleGrant(access, audience: "api") }
        #expect(throws: TokenError.wrongType(expected: "paywall-comp+jwt", actual: "at+jwt")) { try f.verifier.verifyComp(access, audience: "api") }
        // A token with the right claims but no typ, or a JWT typ, is not an access token.
        let untyped = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)"}"#, payload: f.claims())
        #expect(throws: TokenError.wrongType(expected: "at+jwt", actual: nil)) { try f.verifier.verifyAccess(untyped, audience: "api") }
        let jwt = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"JWT"}"#, payload: f.claims())
        #expect(throws: TokenError.wrongType(expected: "at+jwt", actual: "JWT")) { try f.verifier.verifyAccess(jwt, audience: "api") }
        let mediaType = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"application/AT+JWT"}"#, payload: f.claims())
        #expect(try f.verifier.verifyAccess(mediaType, audience: "api").registered.subject == "acc-1")
    }

    @Test("time: expired by one second past the leeway is refused, within it accepted")
    func expiry() throws {
        let f = try TokenFixture()
        let (token, _) = try f.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 60, entitlements: .none)
        f.clock.advance(by: 60 + 30)
        _ = try f.verifier.verifyAccess(token, audience: "api")
        f.clock.advance(by: 1)
        #expect(throws: TokenError.expired(Date(timeIntervalSince1970: 1_790_000_060))) { try f.verifier.verifyAccess(token, audience: "api") }
    }

    @Test("nbf and iat in the future, beyond the leeway, are refused")
    func future() throws {
        let f = try TokenFixture()
        let later = f.now + 31
        let notYet = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt"}"#,
                                 payload: #"{"iss":"paywall","sub":"s","aud":"api","iat":\#(f.now),"nbf":\#(later),"exp":\#(later + 600),"jti":"j","ent":{}}"#)
        #expect(throws: TokenError.notYetValid(Date(timeIntervalSince1970: Double(later)))) { try f.verifier.verifyAccess(notYet, audience: "api") }
        let futureIat = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt"}"#,
                                    payload: #"{"iss":"paywall","sub":"s","aud":"api","iat":\#(later),"exp":\#(later + 600),"jti":"j","ent":{}}"#)
        #expect(throws: TokenError.issuedInFuture(Date(timeIntervalSince1970: Double(later)))) { try f.verifier.verifyAccess(futureIat, audience: "api") }
    }

    @Test("an access token carries the account's sign-outs everywhere (soe) it was issued under; one without the claim counts as 0")
    func signOutsEverywhere() throws {
        let f = try TokenFixture()
        let (token, issued) = try f.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 600, entitlements: .none, signOutsEverywhere: 7)
        #expect(issued.signOutsEverywhere == 7)
        #expect(try f.verifier.verifyAccess(token, audience: "api").signOutsEverywhere == 7)
        let payload = try #require(token.split(separator: ".").dropFirst().first)
        #expect(String(decoding: try #require(Base64URL.decode(String(payload))), as: UTF8.self).contains(#""soe":7"#))
        let older = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt"}"#, payload: f.claims())
        #expect(try f.verifier.verifyAccess(older, audience: "api").signOutsEverywhere == 0)
    }

    @Test("issuer, audience and required claims are enforced", arguments: [
        (#"{"iss":"evil","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{}}"#, TokenError.wrongIssuer("evil")),
        (#"{"iss":"paywall","sub":"s","aud":"other","iat":NOW,"exp":EXP,"jti":"j","ent":{}}"#, .wrongAudience),
        (#"{"iss":"paywall","sub":"s","aud":["x","y"],"iat":NOW,"exp":EXP,"jti":"j","ent":{}}"#, .wrongAudience),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"jti":"j","ent":{}}"#, .missingClaim("exp")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":"soon","jti":"j","ent":{}}"#, .invalidClaim("exp", reason: "must be a NumericDate")),
        (#"{"iss":"paywall","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{}}"#, .missingClaim("sub")),
        (#"{"iss":"paywall","sub":"s","iat":NOW,"exp":EXP,"jti":"j","ent":{}}"#, .missingClaim("aud")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"ent":{}}"#, .missingClaim("jti")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j"}"#, .missingClaim("ent")),
        (#"{"iss":"paywall","sub":"s","sub":"t","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{}}"#, .malformed("claims: duplicate member name \"sub\" at byte 27")),
        (#"["not","an","object"]"#, .malformed("claims are not a JSON object")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{},"soe":-1}"#, .invalidClaim("soe", reason: "must be a whole number from 0")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{},"soe":1.5}"#, .invalidClaim("soe", reason: "must be a whole number from 0")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{},"soe":"2"}"#, .invalidClaim("soe", reason: "must be a whole number from 0")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{},"soe":1e300}"#, .invalidClaim("soe", reason: "must be a whole number from 0")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{},"soe":9007199254740994}"#, .invalidClaim("soe", reason: "must be a whole number from 0")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{},"soe":null}"#, .invalidClaim("soe", reason: "must be a whole number from 0")),
        (#"{"iss":"paywall","sub":"s","aud":"api","iat":NOW,"exp":EXP,"jti":"j","ent":{},"soe":true}"#, .invalidClaim("soe", reason: "must be a whole number from 0")),
    ] as [(String, TokenError)])
    func claims(_ template: String, expected: TokenError) throws {
        let f = try TokenFixture()
        let payload = template.replacingOccurrences(of: "NOW", with: String(f.now)).replacingOccurrences(of: "EXP", with: String(f.now + 600))
        let token = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt"}"#, payload: payload)
        #expect(throws: expected) { try f.verifier.verifyAccess(token, audience: "api") }
    }
}

@Suite("Attacks")
struct AttackTests {
    @Test("alg switched to HS256 with the public key as the HMAC secret")
    func algorithmConfusion() throws {
        let f = try TokenFixture()
        let header = Base64URL.encode(Array(#"{"alg":"HS256","kid":"\#(f.kid)","typ":"at+jwt"}"#.utf8))
        let input = header + "." + Base64URL.encode(Array(f.claims().utf8))
        for secret in [f.key.publicKey.raw, Array(JWK(publicKey: f.key.publicKey).json.serialized())] {
            let token = input + "." + Base64URL.encode(hmacSHA256(key: secret, message: Array(input.utf8)))
            #expect(throws: TokenError.unsupportedAlgorithm("HS256")) { try f.verifier.verifyAccess(token, audience: "api") }
        }
    }

    @Test("alg none, in any spelling, with or without a signature", arguments: ["none", "None", "NONE", "nOnE"])
    func none(_ alg: String) throws {
        let f = try TokenFixture()
        let input = Base64URL.encode(Array(#"{"alg":"\#(alg)","kid":"\#(f.kid)","typ":"at+jwt"}"#.utf8)) + "." + Base64URL.encode(Array(f.claims().utf8))
        #expect(throws: TokenError.malformed("empty header or signature")) { try f.verifier.verifyAccess(input + ".", audience: "api") }
        #expect(throws: TokenError.malformed("expected three dot-separated parts (JWS compact serialization)")) { try f.verifier.verifyAccess(input, audience: "api") }
        #expect(throws: TokenError.unsupportedAlgorithm(alg)) { try f.verifier.verifyAccess(input + ".AAAA", audience: "api") }
    }

    @Test("r = s = 0, r or s = n, and garbage signatures")
    func degenerateSignatures() throws {
        let f = try TokenFixture()
        let (token, _) = try f.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 600, entitlements: .none)
        let input = token.split(separator: ".")[0...1].joined(separator: ".")
        let n = [UInt8](arrayLiteral: 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51)
        let zero = [UInt8](repeating: 0, count: 32)
        for signature in [zero + zero, n + n, zero + n, n + zero, [UInt8](repeating: 0xFF, count: 64), [UInt8](repeating: 1, count: 63)] {
            #expect(throws: TokenError.badSignature) { try f.verifier.verifyAccess(input + "." + Base64URL.encode(signature), audience: "api") }
        }
    }

    @Test("high-s: the mirrored ECDSA signature is mathematically valid and yields the very same claims")
    func highS() throws {
        let f = try TokenFixture()
        let (token, issued) = try f.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 600, entitlements: .none)
        let parts = token.split(separator: ".").map(String.init)
        let signature = try #require(Base64URL.decode(parts[2]))
        // s' = n - s, big-endian subtraction.
        let n: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                          0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51]
        var mirrored = [UInt8](repeating: 0, count: 32)
        var borrow = 0
        for index in (0..<32).reversed() {
            var value = Int(n[index]) - Int(signature[32 + index]) - borrow
            borrow = value < 0 ? 1 : 0
            if value < 0 { value += 256 }
            mirrored[index] = UInt8(value)
        }
        let malleated = parts[0] + "." + parts[1] + "." + Base64URL.encode(Array(signature[0..<32]) + mirrored)
        #expect(malleated != token)
        // Accepted (as by OpenSSL and Wycheproof), but it names the same token: same jti,
        // same claims, so replay checks keyed on jti are not fooled.
        let verified = try f.verifier.verifyAccess(malleated, audience: "api")
        #expect(verified == issued)
    }

    @Test("embedded jwk, jku, x5u, x5c and unknown crit headers are refused", arguments: [
        #""jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#, #""jku":"https://evil.example/jwks""#,
        #""x5u":"https://evil.example/cert""#, #""x5c":["MIIB"]"#, #""crit":["exp"]"#, #""crit":[]"#, #""b64":false"#, #""zip":"DEF""#,
    ])
    func forbiddenHeaders(_ member: String) throws {
        let f = try TokenFixture()
        let token = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt",\#(member)}"#, payload: f.claims())
        #expect(throws: TokenError.self) { try f.verifier.verifyAccess(token, audience: "api") }
    }

    @Test("a token signed by an attacker's key with its own jwk embedded")
    func attackerKey() throws {
        let f = try TokenFixture()
        let attacker = try PrivateKey.generate(.es256)
        let jwk = String(decoding: JWK(publicKey: attacker.publicKey).json.serialized(), as: UTF8.self)
        let token = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt","jwk":\#(jwk)}"#, payload: f.claims(), key: attacker)
        #expect(throws: TokenError.forbiddenHeader("jwk")) { try f.verifier.verifyAccess(token, audience: "api") }
        let plain = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt"}"#, payload: f.claims(), key: attacker)
        #expect(throws: TokenError.badSignature) { try f.verifier.verifyAccess(plain, audience: "api") }
        let ownKid = try f.forge(header: #"{"alg":"ES256","kid":"\#(JWK.thumbprint(attacker.publicKey))","typ":"at+jwt"}"#, payload: f.claims(), key: attacker)
        #expect(throws: TokenError.unknownKey(JWK.thumbprint(attacker.publicKey))) { try f.verifier.verifyAccess(ownKid, audience: "api") }
    }

    @Test("the algorithm is the key's: ES256 claimed for an Ed25519 key, and EdDSA accepted as Ed25519")
    func pinned() throws {
        let f = try TokenFixture(.ed25519)
        let claimedES = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt"}"#, payload: f.claims())
        #expect(throws: TokenError.algorithmMismatch(header: "ES256", key: "Ed25519")) { try f.verifier.verifyAccess(claimedES, audience: "api") }
        let legacy = try f.forge(header: #"{"alg":"EdDSA","kid":"\#(f.kid)","typ":"at+jwt"}"#, payload: f.claims())
        #expect(try f.verifier.verifyAccess(legacy, audience: "api").registered.subject == "acc-1")
        let lower = try f.forge(header: #"{"alg":"ed25519","kid":"\#(f.kid)","typ":"at+jwt"}"#, payload: f.claims())
        #expect(throws: TokenError.unsupportedAlgorithm("ed25519")) { try f.verifier.verifyAccess(lower, audience: "api") }
    }

    @Test("a 1 MB token is refused before any parsing; oversized headers and payloads too")
    func size() throws {
        let f = try TokenFixture()
        let huge = String(repeating: "A", count: 1 << 20)
        #expect(throws: TokenError.tooLarge(limit: 8_192)) { try f.verifier.verifyAccess(huge + "." + huge + "." + huge, audience: "api") }
        let bigClaims = f.claims(extra: #","pad":"\#(String(repeating: "x", count: 9_000))""#)
        let token = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt"}"#, payload: bigClaims)
        #expect(throws: TokenError.tooLarge(limit: 8_192)) { try f.verifier.verifyAccess(token, audience: "api") }
    }

    @Test("malformed encodings", arguments: [
        "", ".", "..", "a.b", "a.b.c.d", "eyJhbGciOiJFUzI1NiJ9.e30.", "====.e30.AAAA", "eyJhbGciOiJFUzI1NiJ9=.e30.AAAA",
        "eyJhbGciOiJFUzI1NiJ9.e30=.AAAA", "eyJhbGciOiJFUzI1NiJ9.e30.AA AA", "e30.e30.AAAA", "W10.e30.AAAA",
    ])
    func malformed(_ token: String) throws {
        let f = try TokenFixture()
        #expect {
            _ = try f.verifier.verifyAccess(token, audience: "api")
        } throws: { error in
            guard case .malformed = error as? TokenError else { return false }
            return true
        }
    }

    @Test("duplicate header members are refused")
    func duplicateHeader() throws {
        let f = try TokenFixture()
        let token = try f.forge(header: #"{"alg":"ES256","kid":"\#(f.kid)","typ":"at+jwt","typ":"x"}"#, payload: f.claims())
        #expect {
            _ = try f.verifier.verifyAccess(token, audience: "api")
        } throws: { error in
            guard case let .malformed(reason) = error as? TokenError else { return false }
            return reason.contains("duplicate")
        }
    }
}
