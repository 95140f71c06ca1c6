import COpenSSL

/// A private signing key pinned to one algorithm.
public struct PrivateKey: Sendable {
    public let algorithm: SignatureAlgorithm
    let key: EVPKey

    /// Generates a new key.
    public static func generate(_ algorithm: SignatureAlgorithm) throws(CryptoError) -> PrivateKey {
        let generated = algorithm == .es256 ? paywall_keygen_p256() : paywall_keygen_ed25519()
        guard let generated else { throw CryptoError.fromQueue("EVP_PKEY_Q_keygen") }
        return PrivateKey(algorithm: algorithm, key: EVPKey(generated))
    }

    init(algorithm: SignatureAlgorithm, key: EVPKey) {
        self.algorithm = algorithm
        self.key = key
    }

    /// Reads a PKCS#8 PEM private key, which must be of `algorithm`.
    public init(pem: String, algorithm: SignatureAlgorithm) throws(CryptoError) {
        guard pem.contains("-----BEGIN PRIVATE KEY-----") else {
            throw .invalidKey("expected a PKCS#8 PEM ('-----BEGIN PRIVATE KEY-----')")
        }
        let bytes = Array(pem.utf8)
        let parsed: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let parsed else { throw CryptoError.fromQueue("PEM_read_bio_PrivateKey").asInvalidKey }
        let key = EVPKey(parsed)
        try PublicKey.checkType(key, algorithm)
        self.init(algorithm: algorithm, key: key)
    }

    /// The key as PKCS#8 PEM (unencrypted: protect the file with mode 0600).
    public func pem() throws(CryptoError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CryptoError.fromQueue("BIO_new") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key.pointer, nil, nil, 0, nil, nil) == 1 else {
            throw CryptoError.fromQueue("PEM_write_bio_PrivateKey")
        }
        var data: UnsafeMutablePointer<CChar>?
        let length = paywall_bio_mem_data(bio, &data)
        guard length > 0, let data else { throw CryptoError.fromQueue("BIO_get_mem_data") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// The matching public key.
    public var publicKey: PublicKey {
        // Re-reading our own SubjectPublicKeyInfo cannot fail for a key OpenSSL made.
        var output: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(key.pointer, &output)
        let der = (length > 0 && output != nil) ? Array(UnsafeBufferPointer(start: output, count: Int(length))) : []
        if let output { paywall_openssl_free(output) }
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        return PublicKey(algorithm: algorithm, key: parsed.map(EVPKey.init) ?? key)
    }

    /// Signs `message`; returns the JWS form (ES256: r‖s; Ed25519: 64 bytes).
    public func sign(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError.fromQueue("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        let digestName = algorithm == .es256 ? Digests.sha256.map { EVP_MD_get0_name($0) } ?? nil : nil
        guard EVP_DigestSignInit_ex(context, nil, digestName, nil, nil, key.pointer, nil) == 1 else {
            throw CryptoError.fromQueue("EVP_DigestSignInit_ex")
        }
        var length = 80
        var signature = [UInt8](repeating: 0, count: length)
        let ok = signature.withUnsafeMutableBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestSign(context, sig.baseAddress, &length, msg.baseAddress, msg.count)
            }
        }
        guard ok == 1 else { throw CryptoError.fromQueue("EVP_DigestSign") }
        signature.removeSubrange(length...)
        guard algorithm == .es256 else { return signature }
        guard let raw = ECDSASignature.raw(fromDER: signature) else { throw CryptoError.fromQueue("d2i_ECDSA_SIG") }
        return raw
    }
}
