import Foundation
import Testing
@testable import PaywallCrypto

/// The table path of ES256 verification (P256KeyTable) is our own arithmetic on OpenSSL's
/// primitives, so it is held to everything the plain path (`EVP_DigestVerify`) is.
@Suite("ES256 verification with a key table")
struct P256KeyTableTests {
    @Test("every Wycheproof P-256 vector: each valid verifies, each invalid is refused")
    func wycheproof() throws {
        let root = try Wycheproof.load("ecdsa_secp256r1_sha256_p1363_test.json")
        let groups = try #require(root["testGroups"] as? [[String: Any]])
        var valid = 0, invalid = 0
        var disagreements: [String] = []
        for group in groups {
            let keyObject = try #require(group["publicKey"] as? [String: Any])
            let raw = hex(try #require(keyObject["uncompressed"] as? String))
            let table = try? P256KeyTable(raw: raw)
            for test in try #require(group["tests"] as? [[String: Any]]) {
                let id = test["tcId"] as? Int ?? -1
                let digest = SHA256.hash(hex(test["msg"] as? String ?? ""))
                let verified = table?.verify(signature: hex(test["sig"] as? String ?? ""), digest: digest) ?? false
                switch test["result"] as? String {
                case "valid":
                    valid += 1
                    if !verified { disagreements.append("tcId \(id) valid but rejected") }
                case "invalid":
                    invalid += 1
                    if verified { disagreements.append("tcId \(id) invalid but accepted") }
                default: break
                }
            }
        }
        #expect(disagreements == [])
        #expect(valid == 173)
        #expect(invalid == 89)
    }

    @Test("agrees with EVP_DigestVerify on good, corrupted and random signatures")
    func agreesWithOpenSSL() throws {
        let key = try PrivateKey.generate(.es256)
        let plain = key.publicKey
        let table = try P256KeyTable(raw: plain.raw)
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for round in 0..<300 {
            var message = (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var signature = try key.sign(message)
            switch round % 5 {
            case 1: signature[Int.random(in: 0..<64, using: &generator)] ^= UInt8(1 << Int.random(in: 0..<8, using: &generator))
            case 2: message.append(0)
            case 3: signature = (0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 4: signature = Array(signature[0..<32]) + Self.negated(Array(signature[32...]))  // (r, n − s): valid too
            default: break
            }
            let expected = plain.digestVerify(signature: ECDSASignature.der(fromRaw: signature) ?? [], message: message)
            let got = table.verify(signature: signature, digest: SHA256.hash(message))
            #expect(got == expected, "round \(round)")
            if got { accepted += 1 }
        }
        // Rounds 0 and 4 are valid (120 of 300); a flipped bit or a random signature is not.
        #expect(accepted == 120)
    }

    @Test("r or s out of [1, n−1] is refused, whatever the point")
    func outOfRange() throws {
        let key = try PrivateKey.generate(.es256)
        let table = try P256KeyTable(raw: key.publicKey.raw)
        let message = Array("header.payload".utf8)
        let signature = try key.sign(message)
        let zero = [UInt8](repeating: 0, count: 32)
        for bad in [zero + signature[32...], Array(signature[0..<32]) + zero, P256.order + signature[32...], Array(signature[0..<32]) + P256.order] {
            #expect(!table.verify(signature: bad, digest: SHA256.hash(message)))
        }
        #expect(!table.verify(signature: Array(signature.dropLast()), digest: SHA256.hash(message)))
        #expect(table.verify(signature: signature, digest: SHA256.hash(message)))
    }

    @Test("a point off the curve or malformed makes no table")
    func badPoints() throws {
        var raw = try PrivateKey.generate(.es256).publicKey.raw
        raw[64] ^= 1
        #expect(throws: CryptoError.self) { try P256KeyTable(raw: raw) }
        #expect(throws: CryptoError.self) { try P256KeyTable(raw: [0x04] + [UInt8](repeating: 0, count: 64)) }
        #expect(throws: CryptoError.self) { try P256KeyTable(raw: Array(raw.dropLast())) }
    }

    @Test("a public key builds its table after a few verifications and keeps verifying the same")
    func lazyTable() throws {
        let key = try PrivateKey.generate(.es256)
        let publicKey = try PublicKey(algorithm: .es256, raw: key.publicKey.raw)
        let messages = (0..<(LazyP256KeyTable.threshold + 8)).map { Array("message \($0)".utf8) }
        let signatures = try messages.map { try key.sign($0) }
        let lazy = try #require(publicKey.table)
        for (index, (message, signature)) in zip(messages, signatures).enumerated() {
            // Built by the call that reaches the threshold, and used by it and every one after.
            #expect((lazy.peek() != nil) == (index >= LazyP256KeyTable.threshold))
            let (verified, withTable) = publicKey.verifyES256(signature: signature, message: message)
            #expect(verified)
            #expect(withTable == (index >= LazyP256KeyTable.threshold - 1), "verification \(index + 1)")
        }
        #expect(lazy.peek() != nil)
        for (message, signature) in zip(messages, signatures) {
            #expect(!publicKey.verify(signature: signature, message: message + [1]))
            #expect(publicKey.verify(signature: signature, message: message))
        }
        #expect(try PublicKey(algorithm: .ed25519, raw: PrivateKey.generate(.ed25519).publicKey.raw).table == nil)
    }

    @Test("many threads reaching the threshold at once: one table, every answer right")
    func concurrentThreshold() async throws {
        let key = try PrivateKey.generate(.es256)
        let publicKey = try PublicKey(algorithm: .es256, raw: key.publicKey.raw)
        let message = Array("header.payload".utf8)
        let signature = try key.sign(message)
        let wrong = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    (0..<(LazyP256KeyTable.threshold * 2)).reduce(0) { wrong, index in
                        let verified = publicKey.verify(signature: signature, message: index % 3 == 0 ? message + [1] : message)
                        return wrong + (verified == (index % 3 != 0) ? 0 : 1)
                    }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
        let table = try #require(publicKey.table?.peek())
        #expect(publicKey.table?.table() === table, "built once, kept")
    }

    /// n − s, big-endian.
    static func negated(_ s: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var borrow = 0
        for index in (0..<32).reversed() {
            var value = Int(P256.order[index]) - Int(s[index]) - borrow
            borrow = value < 0 ? 1 : 0
            if value < 0 { value += 256 }
            out[index] = UInt8(value)
        }
        return out
    }
}
