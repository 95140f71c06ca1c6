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

    /// The most memory one hash may ask for: 128 · r · N ≤ 256 MiB (twice OWASP's 128 MiB).
    public static let maximumMemoryBytes: UInt64 = 256 << 20
    /// The most parallelism a hash may ask for (each unit of p is one more full pass).
    public static let maximumParallelism = 4
    /// The bounds of log2 N and of r (with 128 · r · N ≤ 256 MiB on top).
    public static let logNRange = 1...21
    public static let blockSizeRange = 1...16

    /// Checks the bounds we accept, for the configured parameters and for every hash read
    /// back from storage, so that a tampered or hostile row cannot make a sign-in allocate
    /// hundreds of MiB or burn many times the expected CPU: ln in 1...21, r in 1...16,
    /// p in 1...4, and 128 · r · N at most 256 MiB.
    public func validate() throws(CryptoError) {
        guard Self.logNRange.contains(logN) else { throw .unsupportedParameters("ln=\(logN) is outside \(Self.logNRange.lowerBound)...\(Self.logNRange.upperBound)") }
        guard Self.blockSizeRange.contains(r) else { throw .unsupportedParameters("r=\(r) is outside \(Self.blockSizeRange.lowerBound)...\(Self.blockSizeRange.upperBound)") }
        guard (1...Self.maximumParallelism).contains(p) else { throw .unsupportedParameters("p=\(p) is outside 1...\(Self.maximumParallelism)") }
        let memory = 128 * UInt64(r) * n
        guard memory <= Self.maximumMemoryBytes else {
            throw .unsupportedParameters("\(self) needs \(memory >> 20) MiB (128·r·N), more than \(Self.maximumMemoryBytes >> 20) MiB")
        }
    }

    public var description: String { "ln=\(logN),r=\(r),p=\(p)" }
}
