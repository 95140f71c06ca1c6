import Foundation
import Testing
import PaywallCore
import PaywallCrypto
import PaywallTestSupport
@testable import PaywallTokens

/// Tokens checked by a JWT library we did not write: joserfc (Python), installed by .ci/run.
@Suite("Interoperability with joserfc")
struct InteropTests {
    func python(_ script: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let run = try runProgram("/usr/bin/env", ["python3", "-c", script] + arguments)
        return (run.status, run.stdout, run.stderr)
    }

    static let verifyScript = """
        import json, sys
        from joserfc import jwt
        from joserfc.jwk import KeySet
        keys = KeySet.import_key_set(json.loads(open(sys.argv[1]).read()))
        token = jwt.decode(sys.argv[2], keys, algorithms=["ES256", "Ed25519", "EdDSA"])
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": "paywall"}, aud={"essential": True, "value": "api"}).validate(token.claims)
        print(json.dumps({"header": token.header, "claims": token.claims}, sort_keys=True))
        """

    static let signScript = """
        import json, sys, time
        from joserfc import jwt
        from joserfc.jwk import ECKey, OKPKey
        pem = open(sys.argv[1], "rb").read()
        alg, kid = sys.argv[2], sys.argv[3]
        key = ECKey.import_key(pem) if alg == "ES256" else OKPKey.import_key(pem)
        now = int(time.time())
        claims = {"iss": "paywall", "sub": "acc-py", "aud": "api", "iat": now, "nbf": now, "exp": now + 300,
                  "jti": "from-python", "ent": {"memberships": [{"status": "active", "plan": "monthly-all", "titles": "all", "periodEnd": now + 86400}]}}
        print(jwt.encode({"alg": alg, "kid": kid, "typ": "at+jwt"}, claims, key, algorithms=[alg]))
        """

    @Test("our tokens verify with joserfc using only our JWKS", arguments: SignatureAlgorithm.allCases)
    func oursVerifyThere(_ algorithm: SignatureAlgorithm) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-interop-\(UUID().uuidString)")
        var ring = try KeyRing.load(directory: dir)
        let record = try ring.add(algorithm, now: Date(), activatesAt: Date())
        let jwksPath = dir.appendingPathComponent("jwks.json")
        try Data(ring.jwks(at: Date()).json.serialized()).write(to: jwksPath)
        let issuer = TokenIssuer(signer: JWSSigner(key: try ring.signingKey(at: Date()).1, kid: record.kid), issuer: "paywall")
        let snapshot = EntitlementSnapshot(memberships: [MembershipEntitlement(status: .active, plan: PlanID(rawValue: "monthly-all"), titles: .all, periodEnd: Date().addingTimeInterval(86_400), graceEnd: nil)], trialEndsAt: nil)
        let (token, claims) = try issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 900, entitlements: snapshot)

        let (status, output, error) = try python(Self.verifyScript, [jwksPath.path, token])
        #expect(status == 0, "\(error)")
        let decoded = try JSONValue.parse(Array(output.utf8)).objectValue
        #expect(decoded?["header"]?.objectValue?["alg"]?.stringValue == algorithm.rawValue)
        #expect(decoded?["header"]?.objectValue?["typ"]?.stringValue == "at+jwt")
        #expect(decoded?["claims"]?.objectValue?["sub"]?.stringValue == "acc-1")
        #expect(decoded?["claims"]?.objectValue?["jti"]?.stringValue == claims.registered.tokenID)

        // A token altered by one character is refused there too.
        var tampered = Array(token)
        let index = tampered.count / 2
        tampered[index] = tampered[index] == "A" ? "B" : "A"
        #expect(try python(Self.verifyScript, [jwksPath.path, String(tampered)]).0 != 0)
    }

    @Test("a token signed there with our private key verifies here", arguments: SignatureAlgorithm.allCases)
    func theirsVerifyHere(_ algorithm: SignatureAlgorithm) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-interop-\(UUID().uuidString)")
        var ring = try KeyRing.load(directory: dir)
        let record = try ring.add(algorithm, now: Date(), activatesAt: Date())
        let pem = dir.appendingPathComponent("\(record.kid).pem").path
        let (status, output, error) = try python(Self.signScript, [pem, algorithm.rawValue, record.kid])
        #expect(status == 0, "\(error)")
        let token = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let verifier = TokenVerifier(jws: JWSVerifier(keys: ring.verificationKeys(at: Date())), issuer: "paywall")
        let claims = try verifier.verifyAccess(token, audience: "api")
        #expect(claims.registered.subject == "acc-py")
        #expect(claims.registered.tokenID == "from-python")
        #expect(claims.entitlements.memberships.first?.titles == .all)
    }
}
