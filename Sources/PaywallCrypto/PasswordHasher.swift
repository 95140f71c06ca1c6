import COpenSSL
import Dispatch
import Foundation
import Synchronization

/// Hashes and verifies passwords with scrypt through OpenSSL's `EVP_PBE_scrypt`.
///
/// Hashes are self-describing strings in the PHC format:
/// `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (base64 without padding, 16-byte salt, 32-byte
/// hash), so the parameters can be raised later and old hashes upgraded at sign-in.
///
/// Limits, so that sign-ins cannot exhaust the machine:
/// - a stored hash whose parameters are out of bounds (see ``ScryptParameters/validate()``)
///   is refused, not computed;
/// - passwords longer than ``maximumPasswordBytes`` UTF-8 bytes are refused before any
///   scrypt work, when hashing and when verifying;
/// - at most ``maximumConcurrentHashes`` scrypt computations run at once in one hasher (and
///   its copies); the others wait their turn, at most ``maximumWaitingHashes`` of them: past
///   that a hash is refused at once (``CryptoError/busy(waiting:)``). Each waiting caller
///   holds a thread of the service's blocking pool, and sign-ins that succeed are not
///   throttled: a client signing in over and over must not take every thread the other
///   work needs (session lookups, readiness).
public struct PasswordHasher: Sendable {
    /// The result of checking a password against a stored hash.
    public enum Verification: Equatable, Sendable {
        /// The password is wrong.
        case mismatch
        /// The password is right; `needsRehash` when the stored hash is weaker than the
        /// hasher's current parameters.
        case match(needsRehash: Bool)
    }

    /// The parameters new hashes use.
    public let parameters: ScryptParameters

    /// The longest password accepted, in UTF-8 bytes.
    public static let maximumPasswordBytes = 1_024

    /// How many scrypt computations may run at once (each takes `parameters.memoryBytes`).
    public var maximumConcurrentHashes: Int { gate.limit }
    /// How many may wait for their turn (default: 8 per concurrent computation).
    public var maximumWaitingHashes: Int { gate.maximumWaiting }

    static let saltLength = 16
    static let hashLength = 32

    /// Shared by copies of this hasher: the counting semaphore and the dummy hash.
    let gate: HashingGate
    let dummy: DummyHash

    /// A hasher using `parameters` for new hashes. Throws when they are out of bounds.
    /// `maximumConcurrentHashes` caps the scrypt computations running at once (default:
    /// the number of active processors; at least 1).
    public init(parameters: ScryptParameters = .owasp, maximumConcurrentHashes: Int? = nil, maximumWaitingHashes: Int? = nil) throws(CryptoError) {
        try parameters.validate()
        self.parameters = parameters
        let limit = max(1, maximumConcurrentHashes ?? ProcessInfo.processInfo.activeProcessorCount)
        self.gate = HashingGate(limit: limit, maximumWaiting: max(0, maximumWaitingHashes ?? 8 * limit))
        self.dummy = DummyHash()
    }

    /// Hashes `password` with a fresh random salt.
    public func hash(_ password: String) throws(CryptoError) -> String {
        try Self.checkLength(password)
        let salt = try SecureRandom.bytes(Self.saltLength)
        let parameters = self.parameters
        let derived = try gate.run { () throws(CryptoError) -> [UInt8] in
            try Self.derive(password: password, salt: salt, parameters: parameters, length: Self.hashLength)
        }
        return "$scrypt$\(parameters)$\(Self.encode(salt))$\(Self.encode(derived))"
    }

    /// Checks `password` against `encoded` in constant time. Refuses, without computing
    /// anything, a password longer than ``maximumPasswordBytes`` and a stored hash whose
    /// parameters are out of bounds.
    public func verify(_ password: String, against encoded: String) throws(CryptoError) -> Verification {
        try Self.checkLength(password)
        let (stored, salt, expected) = try Self.parse(encoded)
        let derived = try gate.run { () throws(CryptoError) -> [UInt8] in
            try Self.derive(password: password, salt: salt, parameters: stored, length: expected.count)
        }
        guard ConstantTime.equal(derived, expected) else { return .mismatch }
        return .match(needsRehash: !stored.isAtLeast(parameters))
    }

    /// Does the work of one verification without a stored hash, so that a sign-in for an
    /// unknown account takes as long as one for a known account: it verifies `password`
    /// against a dummy hash made once with ``parameters`` (the first call makes that hash,
    /// which costs the same one scrypt computation). Like ``verify(_:against:)`` it refuses
    /// a password longer than ``maximumPasswordBytes`` at once, and waits its turn.
    public func burnVerificationTime(_ password: String) throws(CryptoError) {
        try Self.checkLength(password)
        if let encoded = dummy.value {
            _ = try verify(password, against: encoded)
            return
        }
        let made = try hash(Self.encode(try SecureRandom.bytes(24)))
        dummy.store(made)
    }

    /// The parameters a stored hash was made with.
    public static func parameters(of encoded: String) throws(CryptoError) -> ScryptParameters {
        try parse(encoded).0
    }

    // MARK: - Internals

    static func checkLength(_ password: String) throws(CryptoError) {
        let bytes = password.utf8.count
        guard bytes <= maximumPasswordBytes else { throw .passwordTooLong(bytes: bytes, limit: maximumPasswordBytes) }
    }

    /// scrypt itself. Callers check the parameters first (``ScryptParameters/validate()``)
    /// and hold the gate; this only refuses more than 1 GiB as a last line of defence.
    static func derive(password: String, salt: [UInt8], parameters: ScryptParameters, length: Int) throws(CryptoError) -> [UInt8] {
        guard parameters.logN >= 1, parameters.logN < 32, parameters.r >= 1, parameters.p >= 1,
              parameters.memoryBytes <= 1 << 30
        else { throw .unsupportedParameters("\(parameters) cannot be computed") }
        let pass = Array(password.utf8)
        var out = [UInt8](repeating: 0, count: length)
        let maxMemory = parameters.memoryBytes + (1 << 20)
        let ok = pass.withUnsafeBufferPointer { passBuffer in
            salt.withUnsafeBufferPointer { saltBuffer in
                out.withUnsafeMutableBufferPointer { outBuffer in
                    passBuffer.withMemoryRebound(to: CChar.self) { passChars in
                        EVP_PBE_scrypt(
                            passChars.baseAddress, passChars.count,
                            saltBuffer.baseAddress, saltBuffer.count,
                            parameters.n, UInt64(parameters.r), UInt64(parameters.p),
                            maxMemory, outBuffer.baseAddress, outBuffer.count
                        )
                    }
                }
            }
        }
        guard ok == 1 else { throw CryptoError.fromQueue("EVP_PBE_scrypt") }
        return out
    }

    static func parse(_ encoded: String) throws(CryptoError) -> (ScryptParameters, [UInt8], [UInt8]) {
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[1] == "scrypt" else {
            throw .malformedPasswordHash("expected $scrypt$ln=…,r=…,p=…$salt$hash")
        }
        var values: [String: Int] = [:]
        for pair in fields[2].split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[1].count <= 4, let number = Int(kv[1]), values[String(kv[0])] == nil else {
                throw .malformedPasswordHash("bad parameter '\(pair.prefix(32))'")
            }
            values[String(kv[0])] = number
        }
        guard values.count == 3, let logN = values["ln"], let r = values["r"], let p = values["p"] else {
            throw .malformedPasswordHash("parameters must be exactly ln, r and p")
        }
        let parameters = ScryptParameters(logN: logN, r: r, p: p)
        do { try parameters.validate() } catch {
            if case let .unsupportedParameters(reason) = error {
                throw .unsupportedParameters("the stored hash is refused, not computed: \(reason)")
            }
            throw error
        }
        guard let salt = decode(fields[3]), salt.count >= 8,
              let hash = decode(fields[4]), (16...64).contains(hash.count)
        else { throw .malformedPasswordHash("bad salt or hash encoding") }
        return (parameters, salt, hash)
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var padded = String(text)
        guard !padded.contains("="), padded.utf8.count <= 128 else { return nil }
        while padded.count % 4 != 0 { padded.append("=") }
        return Data(base64Encoded: padded).map { Array($0) }
    }
}

/// A counting semaphore around scrypt, with counters for tests.
final class HashingGate: Sendable {
    let limit: Int
    let maximumWaiting: Int
    /// Callers inside ``run(_:)``: computing or waiting.
    let inside = Atomic<Int>(0)
    private let semaphore: DispatchSemaphore
    /// Computations inside the gate now, the most seen at once, and how many ran.
    let active = Atomic<Int>(0)
    let peak = Atomic<Int>(0)
    let runs = Atomic<Int>(0)

    init(limit: Int, maximumWaiting: Int) {
        self.limit = limit
        self.maximumWaiting = maximumWaiting
        self.semaphore = DispatchSemaphore(value: limit)
    }

    func run<T>(_ body: () throws(CryptoError) -> T) throws(CryptoError) -> T {
        let entered = inside.add(1, ordering: .relaxed).newValue
        defer { inside.subtract(1, ordering: .relaxed) }
        guard entered <= limit + maximumWaiting else { throw .busy(waiting: entered - 1 - limit) }
        semaphore.wait()
        defer { semaphore.signal() }
        let now = active.add(1, ordering: .relaxed).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
        defer {
            active.subtract(1, ordering: .relaxed)
            runs.add(1, ordering: .relaxed)
        }
        return try body()
    }
}

/// The hash ``PasswordHasher/burnVerificationTime(_:)`` verifies against, made once.
final class DummyHash: Sendable {
    private let hash = Mutex<String?>(nil)

    var value: String? { hash.withLock { $0 } }

    func store(_ encoded: String) {
        hash.withLock { if $0 == nil { $0 = encoded } }
    }
}
