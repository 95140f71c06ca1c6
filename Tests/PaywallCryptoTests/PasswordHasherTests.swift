import Testing
@testable import PaywallCrypto

func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

@Suite("scrypt password hashing")
struct PasswordHasherTests {
    @Test("RFC 7914 §12 test vectors through EVP_PBE_scrypt")
    func rfcVectors() throws {
        let v1 = try PasswordHasher.derive(password: "", salt: [], parameters: ScryptParameters(logN: 4, r: 1, p: 1), length: 64)
        #expect(v1 == hex("77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"))
        let v2 = try PasswordHasher.derive(password: "password", salt: Array("NaCl".utf8), parameters: ScryptParameters(logN: 10, r: 8, p: 16), length: 64)
        #expect(v2 == hex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"))
    }

    @Test("hash then verify; the wrong password does not match")
    func roundTrip() throws {
        let hasher = try PasswordHasher(parameters: .testing)
        let encoded = try hasher.hash("correct horse battery staple")
        #expect(encoded.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(try hasher.verify("correct horse battery staple", against: encoded) == .match(needsRehash: false))
        #expect(try hasher.verify("correct horse battery stapl", against: encoded) == .mismatch)
        #expect(try hasher.verify("", against: encoded) == .mismatch)
        // A fresh salt every time.
        #expect(try hasher.hash("correct horse battery staple") != encoded)
    }

    @Test("a hash made with weaker parameters asks to be upgraded")
    func rehash() throws {
        let old = try PasswordHasher(parameters: ScryptParameters(logN: 8, r: 8, p: 1)).hash("a long passphrase")
        let current = try PasswordHasher(parameters: .testing)
        #expect(try current.verify("a long passphrase", against: old) == .match(needsRehash: true))
        #expect(try PasswordHasher.parameters(of: old) == ScryptParameters(logN: 8, r: 8, p: 1))
    }

    @Test("the default is OWASP's N = 2^17, r = 8, p = 1")
    func defaults() throws {
        #expect(try PasswordHasher().parameters == ScryptParameters(logN: 17, r: 8, p: 1))
        #expect(ScryptParameters.owasp.memoryBytes > 128 * 1024 * 1024)
    }

    @Test("malformed or hostile stored hashes are refused, not computed", arguments: [
        "", "plain", "$scrypt$", "$bcrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=10,r=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=10,r=8,p=1,x=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=10,ln=10,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=20,r=32,p=16$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=10,r=8,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$aGFzaA",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA$extra",
    ])
    func malformed(_ encoded: String) throws {
        let hasher = try PasswordHasher(parameters: .testing)
        #expect(throws: CryptoError.self) { try hasher.verify("whatever password", against: encoded) }
    }

    @Test("parameters out of bounds are refused at configuration")
    func bounds() {
        #expect(throws: CryptoError.self) { try PasswordHasher(parameters: ScryptParameters(logN: 0, r: 8, p: 1)) }
        #expect(throws: CryptoError.self) { try PasswordHasher(parameters: ScryptParameters(logN: 23, r: 8, p: 1)) }
        #expect(throws: CryptoError.self) { try PasswordHasher(parameters: ScryptParameters(logN: 10, r: 0, p: 1)) }
    }
}

@Suite("Primitives")
struct PrimitiveTests {
    @Test("SHA-256 of 'abc' and of nothing (FIPS 180-2 vectors)")
    func sha256() {
        #expect(SHA256.hash("abc") == hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
        #expect(SHA256.hash([UInt8]()) == hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
    }

    @Test("constant-time equality")
    func constantTime() {
        #expect(ConstantTime.equal([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equal([], []))
    }

    @Test("random bytes")
    func random() throws {
        let a = try SecureRandom.bytes(32)
        let b = try SecureRandom.bytes(32)
        #expect(a.count == 32)
        #expect(a != b)
        #expect(try SecureRandom.bytes(0).isEmpty)
    }
}
