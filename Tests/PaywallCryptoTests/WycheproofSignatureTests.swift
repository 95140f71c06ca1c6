import Foundation
import Testing
@testable import PaywallCrypto

/// The shared Wycheproof vectors, read by a path relative to the repository root.
enum Wycheproof {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/testdata/wycheproof").standardizedFileURL

    static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

@Suite("Wycheproof signature vectors")
struct WycheproofSignatureTests {
    struct Outcome {
        var valid = 0, invalid = 0, acceptable = 0
        var disagreements: [String] = []
    }

    func run(_ file: String, algorithm: SignatureAlgorithm, publicKey: ([String: Any]) -> [UInt8]?) throws -> Outcome {
        let root = try Wycheproof.load(file)
        let groups = try #require(root["testGroups"] as? [[String: Any]])
        var outcome = Outcome()
        defer { #expect(outcome.valid + outcome.invalid + outcome.acceptable == root["numberOfTests"] as? Int) }
        for group in groups {
            let keyObject = try #require(group["publicKey"] as? [String: Any])
            let key = publicKey(keyObject).flatMap { try? PublicKey(algorithm: algorithm, raw: $0) }
            for test in try #require(group["tests"] as? [[String: Any]]) {
                let id = test["tcId"] as? Int ?? -1
                let message = hex(test["msg"] as? String ?? "")
                let signature = hex(test["sig"] as? String ?? "")
                let verified = key?.verify(signature: signature, message: message) ?? false
                switch test["result"] as? String {
                case "valid":
                    outcome.valid += 1
                    if !verified { outcome.disagreements.append("tcId \(id) valid but rejected") }
                case "invalid":
                    outcome.invalid += 1
                    if verified { outcome.disagreements.append("tcId \(id) invalid but accepted") }
                default:
                    outcome.acceptable += 1
                }
            }
        }
        return outcome
    }

    @Test("ECDSA P-256 / SHA-256, P1363 (r‖s) signatures: every valid verifies, every invalid is refused")
    func ecdsa() throws {
        let outcome = try run("ecdsa_secp256r1_sha256_p1363_test.json", algorithm: .es256) { key in
            (key["uncompressed"] as? String).map(hex)
        }
        #expect(outcome.disagreements == [])
        #expect(outcome.valid == 173)
        #expect(outcome.invalid == 89)
    }

    @Test("Ed25519: every valid verifies, every invalid is refused")
    func ed25519() throws {
        let outcome = try run("ed25519_test.json", algorithm: .ed25519) { key in
            (key["pk"] as? String).map(hex)
        }
        #expect(outcome.disagreements == [])
        #expect(outcome.valid == 88)
        #expect(outcome.invalid == 63)
    }
}

@Suite("Signing keys")
struct SigningKeyTests {
    @Test("sign and verify round trip; a changed message or signature fails", arguments: SignatureAlgorithm.allCases)
    func roundTrip(_ algorithm: SignatureAlgorithm) throws {
        let key = try PrivateKey.generate(algorithm)
        let message = Array("header.payload".utf8)
        let signature = try key.sign(message)
        #expect(signature.count == 64)
        #expect(key.publicKey.verify(signature: signature, message: message))
        #expect(!key.publicKey.verify(signature: signature, message: Array("header.payloaD".utf8)))
        var flipped = signature
        flipped[10] ^= 1
        #expect(!key.publicKey.verify(signature: flipped, message: message))
        #expect(!key.publicKey.verify(signature: Array(signature.dropLast()), message: message))
        let other = try PrivateKey.generate(algorithm)
        #expect(!other.publicKey.verify(signature: signature, message: message))
    }

    @Test("PKCS#8 PEM round trip, and a key of the wrong type is refused", arguments: SignatureAlgorithm.allCases)
    func pem(_ algorithm: SignatureAlgorithm) throws {
        let key = try PrivateKey.generate(algorithm)
        let pem = try key.pem()
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let loaded = try PrivateKey(pem: pem, algorithm: algorithm)
        #expect(loaded.publicKey.raw == key.publicKey.raw)
        let signature = try loaded.sign([1, 2, 3])
        #expect(key.publicKey.verify(signature: signature, message: [1, 2, 3]))
        let wrong: SignatureAlgorithm = algorithm == .es256 ? .ed25519 : .es256
        #expect(throws: CryptoError.self) { try PrivateKey(pem: pem, algorithm: wrong) }
        #expect(throws: CryptoError.self) { try PrivateKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", algorithm: algorithm) }
        #expect(throws: CryptoError.self) { try PrivateKey(pem: "not a key", algorithm: algorithm) }
    }

    @Test("raw public keys: lengths and points off the curve are refused")
    func rawKeys() throws {
        let key = try PrivateKey.generate(.es256)
        let raw = key.publicKey.raw
        #expect(raw.count == 65 && raw[0] == 0x04)
        _ = try PublicKey(algorithm: .es256, raw: raw)
        var offCurve = raw
        offCurve[64] ^= 1
        #expect(throws: CryptoError.self) { try PublicKey(algorithm: .es256, raw: offCurve) }
        #expect(throws: CryptoError.self) { try PublicKey(algorithm: .es256, raw: Array(raw.dropLast())) }
        #expect(throws: CryptoError.self) { try PublicKey(algorithm: .ed25519, raw: raw) }
        #expect(try PrivateKey.generate(.ed25519).publicKey.raw.count == 32)
    }

    @Test("ECDSA r and s outside [1, n-1] are refused before OpenSSL sees them")
    func scalarRange() {
        #expect(!P256.isScalarInRange(ArraySlice([UInt8](repeating: 0, count: 32))))
        #expect(P256.isScalarInRange(ArraySlice([UInt8](repeating: 0, count: 31) + [1])))
        #expect(!P256.isScalarInRange(ArraySlice(P256.order)))
        var nMinus1 = P256.order
        nMinus1[31] -= 1
        #expect(P256.isScalarInRange(ArraySlice(nMinus1)))
        #expect(!P256.isScalarInRange(ArraySlice([UInt8](repeating: 0xFF, count: 32))))
    }
}

@Suite("ECDSA signature encodings")
struct ECDSAEncodingTests {
    @Test("our DER encoder and parser agree with OpenSSL's parser on real and edge-case signatures")
    func derParsers() throws {
        let key = try PrivateKey.generate(.es256)
        for index in 0..<300 {
            let raw = try key.sign(Array("message \(index)".utf8))
            let der = try #require(ECDSASignature.der(fromRaw: raw))
            #expect(ECDSASignature.parseDirect(der) == raw)
            #expect(ECDSASignature.parseWithOpenSSL(der) == raw)
        }
        // Short r (leading zero bytes dropped by DER) and high bit set (a 0x00 prefix added).
        var small = [UInt8](repeating: 0, count: 64)
        small[31] = 1
        small[32] = 0x80
        small[63] = 7
        let der = try #require(ECDSASignature.der(fromRaw: small))
        #expect(ECDSASignature.parseDirect(der) == small)
        #expect(ECDSASignature.parseWithOpenSSL(der) == small, "OpenSSL reads our DER the same way")
        #expect(ECDSASignature.parseDirect([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01]) == nil)
        #expect(ECDSASignature.parseDirect([0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]) == nil)
    }
}
