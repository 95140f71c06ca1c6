import Foundation
import Testing
@testable import PaywallCrypto
@testable import PaywallTokens

/// ``JWSVerifier/knownHeaders``: our own signer's headers skip decoding and parsing, and
/// must come out exactly as parsing them would; anything else takes the full path.
@Suite("JWS: headers our signer writes")
struct KnownHeaderTests {
    @Test("each kind of token our signer writes for each key is known, and its header is what parsing gives")
    func knownHeadersParseAlike() throws {
        let keys = try [SignatureAlgorithm.es256, .ed25519].map { algorithm in
            let key = try PrivateKey.generate(algorithm)
            return (key, JWK.thumbprint(key.publicKey))
        }
        let verifier = JWSVerifier(keys: keys.map { VerificationKey(kid: $0.1, publicKey: $0.0.publicKey) })
        #expect(verifier.knownHeaders.count == keys.count * TokenKind.allCases.count)
        for (key, kid) in keys {
            let signer = JWSSigner(key: key, kid: kid)
            for kind in TokenKind.allCases {
                let token = try signer.sign(type: kind.rawValue, payload: Array(#"{"sub":"x"}"#.utf8))
                let encodedHeader = Array(token.utf8.prefix { $0 != UInt8(ascii: ".") })
                #expect(verifier.knownHeaders.contains { $0.encoded == encodedHeader }, "\(kind) \(key.algorithm)")
                let verified = try verifier.verify(token)
                let parsed = try JSONValue.parse(try #require(Base64URL.decode(utf8: encodedHeader[...])), maxDepth: 4)
                #expect(JSONValue.object(verified.header) == parsed)
                #expect(verified.kid == kid && verified.header["typ"]?.stringValue == kind.rawValue)
            }
        }
    }

    @Test("the same header in another order is not known: it is parsed and checked, and verifies alike; a known header over another key's signature is refused")
    func otherHeadersTakeTheFullPath() throws {
        let t = try TokenFixture()
        let payload = t.claims()
        let reordered = #"{"typ":"at+jwt","kid":"\#(t.kid)","alg":"ES256"}"#
        let token = try t.forge(header: reordered, payload: payload)
        #expect(!t.verifier.jws.knownHeaders.contains { $0.encoded == Array(Base64URL.encode(Array(reordered.utf8)).utf8) })
        #expect(try t.verifier.jws.verify(token).kid == t.kid)
        // A header naming a forbidden member, in any order, is refused on the full path.
        let withKey = try t.forge(header: #"{"alg":"ES256","kid":"\#(t.kid)","typ":"at+jwt","jwk":{}}"#, payload: payload)
        #expect(throws: TokenError.forbiddenHeader("jwk")) { try t.verifier.jws.verify(withKey) }
        // Our header, byte for byte, signed by a key that is not the one it names.
        let own = String(decoding: JWSSigner.encodedHeader(algorithm: .es256, kid: t.kid, type: "at+jwt"), as: UTF8.self)
        let input = own + "." + Base64URL.encode(Array(payload.utf8))
        let stranger = try PrivateKey.generate(.es256)
        let forged = input + "." + Base64URL.encode(try stranger.sign(Array(input.utf8)))
        #expect(throws: TokenError.badSignature) { try t.verifier.jws.verify(forged) }
    }
}
