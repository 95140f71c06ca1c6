import COpenSSL
import Foundation

/// Hashes and verifies passwords with scrypt through OpenSSL's `EVP_PBE_scrypt`.
///
/// Hashes are self-describing strings in the PHC format:
/// `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (base64 without padding, 16-byte salt, 32-byte
/// hash), so the parameters can be raised later and old hashes upgraded at sign-in.
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

    static let saltLength = 16
    static let hashLength = 32

    /// A hasher using `parameters` for new hashes. Throws when they are out of bounds.
    public init(parameters: ScryptParameters = .owasp) throws(CryptoError) {
        try parameters.validate()
        self.parameters = parameters
    }

    /// Hashes `password` with a fresh random salt.
    public func hash(_ password: String) throws(CryptoError) -> String {
        let salt = try SecureRandom.bytes(Self.saltLength)
        let derived = try Self.derive(password: password, salt: salt, parameters: parameters, length: Self.hashLength)
        return "$scrypt$\(parameters)$\(Self.encode(salt))$\(Self.encode(derived))"
    }

    /// Checks `password` against `encoded` in constant time.
    public func verify(_ password: String, against encoded: String) throws(CryptoError) -> Verification {
        let (stored, salt, expected) = try Self.parse(encoded)
        let derived = try Self.derive(password: password, salt: salt, parameters: stored, length: expected.count)
        guard ConstantTime.equal(derived, expected) else { return .mismatch }
        return .match(needsRehash: !stored.isAtLeast(parameters))
    }

    /// Does the work of one verification without a stored hash, so that a sign-in for an
    /// unknown account takes as long as one for a known account.
    public func burnVerificationTime(_ password: String) {
        let salt = [UInt8](repeating: 0, count: Self.saltLength)
        _ = try? Self.derive(password: password, salt: salt, parameters: parameters, length: Self.hashLength)
    }

    /// The parameters a stored hash was made with.
    public static func parameters(of encoded: String) throws(CryptoError) -> ScryptParameters {
        try parse(encoded).0
    }

    // MARK: - Internals

    static func derive(password: String, salt: [UInt8], parameters: ScryptParameters, length: Int) throws(CryptoError) -> [UInt8] {
        try parameters.validate()
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
            guard kv.count == 2, let number = Int(kv[1]), values[String(kv[0])] == nil else {
                throw .malformedPasswordHash("bad parameter '\(pair)'")
            }
            values[String(kv[0])] = number
        }
        guard values.count == 3, let logN = values["ln"], let r = values["r"], let p = values["p"] else {
            throw .malformedPasswordHash("parameters must be exactly ln, r and p")
        }
        let parameters = ScryptParameters(logN: logN, r: r, p: p)
        try parameters.validate()
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
        guard !padded.contains("=") else { return nil }
        while padded.count % 4 != 0 { padded.append("=") }
        return Data(base64Encoded: padded).map { Array($0) }
    }
}
