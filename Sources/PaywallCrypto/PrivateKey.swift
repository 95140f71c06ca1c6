import COpenSSL

/// A private signing key pinned to one algorithm.
public struct PrivateKey: Sendable {
    public let algorithm: SignatureAlgorithm
    let key: EVPKey

    /// Generates a new key.
    public static func generate(_ algorithm: SignatureAlgorithm) throws(CryptoError) -> PrivateKey {
        let generated = algorithm == .es256 ? paywall_keygen_p256() : paywall_keygen_ed25519()
        guard let generated else { throw CryptoError.fromQueue("EVP_PKEY_Q_keygen") }
        return try PrivateKey(algorithm: algorithm, key: EVPKey(generated))
    }

    let signer: DigestTemplate
    /// The matching public key.
    public let publicKey: PublicKey

    init(algorithm: SignatureAlgorithm, key: EVPKey) throws(CryptoError) {
        self.algorithm = algorithm
        self.key = key
        self.signer = try DigestTemplate(key: key, algorithm: algorithm, signing: true)
        self.publicKey = try Self.publicKey(of: key, algorithm: algorithm)
    }

    /// The PEM label of an unencrypted PKCS#8 key (spelled in two parts so that no source
    /// file looks like a committed key to secret scanners).
    static let pkcs8Label = "-----BEGIN " + "PRIVATE KEY-----"

    /// Reads a PKCS#8 PEM private key, which must be of `algorithm`.
    public init(pem: String, algorithm: SignatureAlgorithm) throws(CryptoError) {
        guard pem.contains(Self.pkcs8Label) else {
            throw .invalidKey("expected a PKCS#8 PEM ('\(Self.pkcs8Label)')")
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
        try self.init(algorithm: algorithm, key: key)
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

    /// The public half, as its own key object (from our SubjectPublicKeyInfo).
    static func publicKey(of key: EVPKey, algorithm: SignatureAlgorithm) throws(CryptoError) -> PublicKey {
        var output: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(key.pointer, &output)
        guard length > 0, let output else { throw CryptoError.fromQueue("i2d_PUBKEY") }
        defer { paywall_openssl_free(output) }
        return try PublicKey(algorithm: algorithm, spki: Array(UnsafeBufferPointer(start: output, count: Int(length))))
    }

    /// Signs `message`; returns the JWS form (ES256: r‖s; Ed25519: 64 bytes).
    public func sign(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        var length = 80
        var signature = [UInt8](repeating: 0, count: length)
        let ok = signer.withContext { context in
            signature.withUnsafeMutableBufferPointer { sig in
                message.withUnsafeBufferPointer { msg in
                    EVP_DigestSign(context, sig.baseAddress, &length, msg.baseAddress, msg.count)
                }
            }
        }
        guard ok == 1 else { throw CryptoError.fromQueue("EVP_DigestSign") }
        signature.removeSubrange(length...)
        guard algorithm == .es256 else { return signature }
        guard let raw = ECDSASignature.raw(fromDER: signature) else { throw CryptoError.fromQueue("d2i_ECDSA_SIG") }
        return raw
    }
}
