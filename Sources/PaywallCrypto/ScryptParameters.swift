/// The cost parameters of scrypt (RFC 7914).
public struct ScryptParameters: Hashable, Sendable, CustomStringConvertible {
    /// log2 of the CPU/memory cost N.
    public var logN: Int
    /// Block size r.
    public var r: Int
    /// Parallelism p.
    public var p: Int

    public init(logN: Int, r: Int, p: Int) {
        self.logN = logN
        self.r = r
        self.p = p
    }

    /// OWASP's recommendation: N = 2^17, r = 8, p = 1 (128 MiB per hash).
    public static let owasp = ScryptParameters(logN: 17, r: 8, p: 1)

    /// Cheap parameters for tests only: N = 2^10, r = 8, p = 1.
    public static let testing = ScryptParameters(logN: 10, r: 8, p: 1)

    /// N = 2^logN.
    public var n: UInt64 { 1 << UInt64(logN) }

    /// The memory scrypt needs: 128 · r · (N + p + 2) bytes.
    public var memoryBytes: UInt64 { 128 * UInt64(r) * (n + UInt64(p) + 2) }

    /// Whether these parameters cost at least as much as `other` in every dimension.
    public func isAtLeast(_ other: ScryptParameters) -> Bool {
        logN >= other.logN && r >= other.r && p >= other.p
    }

    /// Checks the bounds we accept (also for hashes read back from storage, so that a
    /// tampered row cannot make us allocate without limit).
    public func validate() throws(CryptoError) {
        guard (1...22).contains(logN) else { throw .unsupportedParameters("ln=\(logN) is outside 1...22") }
        guard (1...32).contains(r) else { throw .unsupportedParameters("r=\(r) is outside 1...32") }
        guard (1...16).contains(p) else { throw .unsupportedParameters("p=\(p) is outside 1...16") }
        guard memoryBytes <= 1 << 30 else { throw .unsupportedParameters("needs more than 1 GiB of memory") }
    }

    public var description: String { "ln=\(logN),r=\(r),p=\(p)" }
}
