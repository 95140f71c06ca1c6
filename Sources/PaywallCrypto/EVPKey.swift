import COpenSSL
import Foundation

/// Owns an `EVP_PKEY`. OpenSSL allows concurrent signing and verifying with one key
/// (each operation has its own context), so the handle is shared between threads.
final class EVPKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { EVP_PKEY_free(pointer) }
}

/// The pre-fetched SHA-256 implementation (implicit fetching on every call is slow in
/// OpenSSL 3).
enum Digests {
    nonisolated(unsafe) static let sha256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)
}

/// Fixed DER prefixes of SubjectPublicKeyInfo for the two key types (RFC 5480, RFC 8410).
enum SPKI {
    /// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes) }
    static let p256Prefix: [UInt8] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08,
        0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ]
    /// SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (32 bytes) }
    static let ed25519Prefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    static func prefix(_ algorithm: SignatureAlgorithm) -> [UInt8] {
        algorithm == .es256 ? p256Prefix : ed25519Prefix
    }

    /// The raw key length after the prefix: 65 (0x04‖x‖y) or 32.
    static func rawLength(_ algorithm: SignatureAlgorithm) -> Int {
        algorithm == .es256 ? 65 : 32
    }
}

/// The order n of the P-256 group, big-endian.
enum P256 {
    static let order: [UInt8] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ]

    /// Whether a 32-byte big-endian integer is in [1, n - 1].
    static func isScalarInRange(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count == 32, bytes.contains(where: { $0 != 0 }) else { return false }
        for (a, b) in zip(bytes, order) where a != b {
            return a < b
        }
        return false  // equal to n
    }
}

/// A digest-sign or digest-verify context initialized once per key; each operation works on
/// a copy. `EVP_DigestSignInit` fetches the algorithm implementations by name on every
/// call; copying an initialized context skips that (BENCHMARKS.md).
final class DigestTemplate: @unchecked Sendable {
    private let template: OpaquePointer
    private let lock = NSLock()

    init(key: EVPKey, algorithm: SignatureAlgorithm, signing: Bool) throws(CryptoError) {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError.fromQueue("EVP_MD_CTX_new") }
        let digest: UnsafePointer<CChar>? = algorithm == .es256 ? Digests.sha256.map { EVP_MD_get0_name($0) } ?? nil : nil
        let ok = signing
            ? EVP_DigestSignInit_ex(context, nil, digest, nil, nil, key.pointer, nil)
            : EVP_DigestVerifyInit_ex(context, nil, digest, nil, nil, key.pointer, nil)
        guard ok == 1 else {
            EVP_MD_CTX_free(context)
            throw CryptoError.fromQueue(signing ? "EVP_DigestSignInit_ex" : "EVP_DigestVerifyInit_ex")
        }
        template = context
    }

    deinit { EVP_MD_CTX_free(template) }

    /// Runs `body` with a fresh copy of the initialized context (nil if OpenSSL fails).
    func withContext<T>(_ body: (OpaquePointer) -> T) -> T? {
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        lock.lock()
        let copied = EVP_MD_CTX_copy_ex(context, template)
        lock.unlock()
        guard copied == 1 else {
            ERR_clear_error()
            return nil
        }
        return body(context)
    }
}
