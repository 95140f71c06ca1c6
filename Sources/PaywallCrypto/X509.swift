import COpenSSL
import Foundation

/// An X.509 certificate parsed from DER (OpenSSL's `X509`).
public final class X509Certificate: @unchecked Sendable {
    let pointer: OpaquePointer
    /// The DER it was parsed from.
    public let der: [UInt8]

    /// Parses one DER certificate; trailing bytes are refused.
    public init(der: [UInt8]) throws(CryptoError) {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            let certificate = d2i_X509(nil, &cursor, buffer.count)
            // All of the input must be the certificate.
            if let certificate, let base = buffer.baseAddress, let cursor, cursor != base + buffer.count {
                X509_free(certificate)
                return nil
            }
            return certificate
        }
        guard let parsed else {
            ERR_clear_error()
            throw .invalidCertificate("not a DER X.509 certificate")
        }
        pointer = parsed
        self.der = der
    }

    /// Parses a PEM (`-----BEGIN CERTIFICATE-----`) or DER file's contents.
    public convenience init(pemOrDER bytes: [UInt8]) throws(CryptoError) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("-----BEGIN CERTIFICATE-----") else {
            try self.init(der: bytes)
            return
        }
        let body = text.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: body) else { throw .invalidCertificate("the PEM body is not base64") }
        try self.init(der: Array(der))
    }

    deinit { X509_free(pointer) }

    /// Whether the certificate carries an extension with this dotted OID (any criticality).
    public func hasExtension(oid: String) -> Bool {
        guard let object = OBJ_txt2obj(oid, 1) else {
            ERR_clear_error()
            return false
        }
        defer { ASN1_OBJECT_free(object) }
        return X509_get_ext_by_OBJ(pointer, object, -1) >= 0
    }

    /// The certificate's public key, pinned to ES256 (refused when it is not a P-256 key).
    public func es256PublicKey() throws(CryptoError) -> PublicKey {
        guard let key = X509_get0_pubkey(pointer) else {
            ERR_clear_error()
            throw .invalidKey("the certificate's public key cannot be read")
        }
        // get0 borrows: take a reference of our own for the EVPKey that frees it.
        EVP_PKEY_up_ref(key)
        let owned = EVPKey(key)
        try PublicKey.checkType(owned, .es256)
        return try PublicKey(algorithm: .es256, key: owned)
    }
}

/// Chain verification with OpenSSL's verifier, trusting one root only.
public enum X509Chain {
    /// Verifies that `leaf` chains through `intermediates` (untrusted helpers) to `root`
    /// (the only trust anchor) at the instant `at`: signatures, validity periods, CA flags
    /// and path length, as `X509_verify_cert` checks them. Nothing from the system's trust
    /// store is used, and a partial chain (ending below `root`) is refused.
    public static func verify(leaf: X509Certificate, intermediates: [X509Certificate], root: X509Certificate, at: Date) throws(CryptoError) {
        guard let store = X509_STORE_new() else { throw CryptoError.fromQueue("X509_STORE_new") }
        defer { X509_STORE_free(store) }
        guard X509_STORE_add_cert(store, root.pointer) == 1 else { throw CryptoError.fromQueue("X509_STORE_add_cert") }
        guard let untrusted = paywall_x509_stack_new() else { throw CryptoError.fromQueue("sk_X509_new_null") }
        defer { paywall_x509_stack_free(untrusted) }
        for certificate in intermediates {
            // The stack frees what it holds: give it references of its own.
            X509_up_ref(certificate.pointer)
            guard paywall_x509_stack_push(untrusted, certificate.pointer) > 0 else {
                X509_free(certificate.pointer)
                throw CryptoError.fromQueue("sk_X509_push")
            }
        }
        guard let context = X509_STORE_CTX_new() else { throw CryptoError.fromQueue("X509_STORE_CTX_new") }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, leaf.pointer, untrusted) == 1 else { throw CryptoError.fromQueue("X509_STORE_CTX_init") }
        // The instant comes from data not yet verified (a payload's signedDate): a value
        // outside what time_t holds would trap in the conversion, so it is refused.
        let seconds = at.timeIntervalSince1970.rounded(.down)
        guard seconds.isFinite, abs(seconds) < 1e15 else { throw .untrustedCertificate("the time to check the chain at is out of range") }
        X509_STORE_CTX_set_time(context, 0, time_t(seconds))
        let result = X509_verify_cert(context)
        if result != 1 {
            let code = X509_STORE_CTX_get_error(context)
            let reason = X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "error \(code)"
            ERR_clear_error()
            throw .untrustedCertificate(reason)
        }
    }
}
