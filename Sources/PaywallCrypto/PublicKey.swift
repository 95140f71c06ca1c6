import COpenSSL

/// A public key that verifies signatures of exactly one algorithm.
public struct PublicKey: Sendable {
    /// The algorithm this key is pinned to.
    public let algorithm: SignatureAlgorithm
    let key: EVPKey
    let verifier: DigestTemplate
    /// ES256: a table of the key's multiples, built once it has verified a few signatures.
    let table: LazyP256KeyTable?

    init(algorithm: SignatureAlgorithm, key: EVPKey) throws(CryptoError) {
        self.algorithm = algorithm
        self.key = key
        self.verifier = try DigestTemplate(key: key, algorithm: algorithm, signing: false)
        self.table = algorithm == .es256 ? LazyP256KeyTable(raw: Self.raw(of: key, algorithm)) : nil
    }

    /// Imports a raw public key: for ES256 the uncompressed point `0x04‖x‖y` (65 bytes),
    /// for Ed25519 the 32-byte key. The point is checked to be on the curve.
    public init(algorithm: SignatureAlgorithm, raw: [UInt8]) throws(CryptoError) {
        guard raw.count == SPKI.rawLength(algorithm), algorithm == .ed25519 || raw.first == 0x04 else {
            throw .invalidKey("a raw \(algorithm) public key must be \(SPKI.rawLength(algorithm)) bytes\(algorithm == .es256 ? " starting with 0x04" : "")")
        }
        try self.init(algorithm: algorithm, spki: SPKI.prefix(algorithm) + raw)
    }

    /// Imports a DER SubjectPublicKeyInfo of the given algorithm.
    public init(algorithm: SignatureAlgorithm, spki der: [UInt8]) throws(CryptoError) {
        guard der.starts(with: SPKI.prefix(algorithm)), der.count == SPKI.prefix(algorithm).count + SPKI.rawLength(algorithm) else {
            throw .invalidKey("not a \(algorithm) SubjectPublicKeyInfo")
        }
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let parsed else { throw CryptoError.fromQueue("d2i_PUBKEY").asInvalidKey }
        let key = EVPKey(parsed)
        try Self.checkType(key, algorithm)
        try self.init(algorithm: algorithm, key: key)
    }

    /// The raw public key: `0x04‖x‖y` for ES256, 32 bytes for Ed25519.
    public var raw: [UInt8] { Self.raw(of: key, algorithm) }

    static func raw(of key: EVPKey, _ algorithm: SignatureAlgorithm) -> [UInt8] {
        var output: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(key.pointer, &output)
        guard length > 0, let output else { return [] }
        defer { paywall_openssl_free(output) }
        let der = Array(UnsafeBufferPointer(start: output, count: Int(length)))
        return Array(der.dropFirst(SPKI.prefix(algorithm).count))
    }

    /// Verifies a JWS-form signature (ES256: r‖s, 64 bytes; Ed25519: 64 bytes) over
    /// `message`. For ES256, r and s must each be in [1, n-1] before OpenSSL sees them.
    public func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        guard signature.count == 64 else { return false }
        switch algorithm {
        case .es256:
            return verifyES256(signature: signature, message: message).verified
        case .ed25519:
            return digestVerify(signature: signature, message: message)
        }
    }

    /// ES256 by the key's table once it has one, else by `EVP_DigestVerify`; says which.
    func verifyES256(signature: [UInt8], message: [UInt8]) -> (verified: Bool, withTable: Bool) {
        guard P256.isScalarInRange(signature[0..<32]), P256.isScalarInRange(signature[32..<64]) else { return (false, false) }
        if let table = table?.table() { return (table.verify(signature: signature, digest: SHA256.hash(message)), true) }
        guard let der = ECDSASignature.der(fromRaw: signature) else { return (false, false) }
        return (digestVerify(signature: der, message: message), false)
    }

    func digestVerify(signature: [UInt8], message: [UInt8]) -> Bool {
        let result = verifier.withContext { context in
            signature.withUnsafeBufferPointer { sig in
                message.withUnsafeBufferPointer { msg in
                    EVP_DigestVerify(context, sig.baseAddress, sig.count, msg.baseAddress, msg.count)
                }
            }
        }
        if result != 1 { ERR_clear_error() }
        return result == 1
    }

    static func checkType(_ key: EVPKey, _ algorithm: SignatureAlgorithm) throws(CryptoError) {
        switch algorithm {
        case .es256:
            guard EVP_PKEY_is_a(key.pointer, "EC") == 1 else { throw .invalidKey("not an EC key") }
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            guard EVP_PKEY_get_group_name(key.pointer, &name, name.count, &length) == 1,
                  ["prime256v1", "P-256", "secp256r1"].contains(String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            else { throw .invalidKey("the EC key is not on P-256") }
        case .ed25519:
            guard EVP_PKEY_is_a(key.pointer, "ED25519") == 1 else { throw .invalidKey("not an Ed25519 key") }
        }
    }
}

extension CryptoError {
    var asInvalidKey: CryptoError {
        if case let .openSSL(_, reason) = self { return .invalidKey(reason) }
        return self
    }
}
