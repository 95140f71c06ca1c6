import COpenSSL
import Synchronization

/// Cryptographically secure random bytes from OpenSSL's DRBG.
public enum SecureRandom {
    /// 16 random bytes (token ids), drawn from a pool refilled 4 KiB at a time from the same
    /// DRBG: a call to `RAND_bytes` costs about a microsecond whatever its length.
    public static func bytes16() throws(CryptoError) -> [UInt8] {
        let result: [UInt8]? = pool.withLock { state in
            if state.offset + 16 > state.buffer.count {
                guard let fresh = try? bytes(4_096) else { return nil }
                state.buffer = fresh
                state.offset = 0
            }
            defer { state.offset += 16 }
            return Array(state.buffer[state.offset..<state.offset + 16])
        }
        guard let result else { throw CryptoError.fromQueue("RAND_bytes") }
        return result
    }

    private struct Pool {
        var buffer: [UInt8] = []
        var offset = 0
    }

    private static let pool = Mutex(Pool())

    /// `count` random bytes.
    public static func bytes(_ count: Int) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return out }
        let ok = out.withUnsafeMutableBytes { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(count)) }
        guard ok == 1 else { throw CryptoError.fromQueue("RAND_bytes") }
        return out
    }
}
