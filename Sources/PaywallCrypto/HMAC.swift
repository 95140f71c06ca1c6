import COpenSSL

/// HMAC-SHA256 (RFC 2104), for webhook signatures (Stripe signs `"{t}.{body}"` with it).
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`; nil when OpenSSL fails (out of memory, a
    /// provider that refuses the digest). Callers treat nil as a mismatch: a fixed value
    /// instead (zeros) would match whatever an attacker sends that is equal to it.
    public static func authenticate(key: [UInt8], message: [UInt8]) -> [UInt8]? {
        var mac = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let result = key.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                mac.withUnsafeMutableBufferPointer { out in
                    // A non-null pointer even for empty inputs: OpenSSL reads `count` bytes of it.
                    COpenSSL.HMAC(Digests.sha256 ?? EVP_sha256(), k.baseAddress ?? UnsafePointer(bitPattern: 1), Int32(k.count),
                                  m.baseAddress ?? UnsafePointer(bitPattern: 1), m.count, out.baseAddress, &length)
                }
            }
        }
        guard result != nil, length == 32 else {
            ERR_clear_error()
            return nil
        }
        return mac
    }
}
