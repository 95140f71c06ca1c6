import COpenSSL

/// A failure in a cryptographic operation, with OpenSSL's own reason where it gave one.
public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// OpenSSL reported an error in `operation`.
    case openSSL(operation: String, reason: String)
    /// A stored password hash could not be parsed.
    case malformedPasswordHash(String)
    /// Scrypt parameters outside the supported bounds.
    case unsupportedParameters(String)
    /// A password longer than the hasher accepts (refused before any scrypt work).
    case passwordTooLong(bytes: Int, limit: Int)
    /// Too many password hashes are waiting already: refused at once rather than queued.
    case busy(waiting: Int)
    /// A key that cannot be used: wrong type or curve, malformed encoding, off the curve.
    case invalidKey(String)
    /// Bytes that are not one X.509 certificate.
    case invalidCertificate(String)
    /// A certificate chain that does not verify up to the trusted root (OpenSSL's reason).
    case untrustedCertificate(String)

    public var description: String {
        switch self {
        case let .openSSL(operation, reason): "OpenSSL failed in \(operation): \(reason)"
        case let .malformedPasswordHash(reason): "malformed password hash: \(reason)"
        case let .unsupportedParameters(reason): "unsupported scrypt parameters: \(reason)"
        case let .invalidKey(reason): "invalid key: \(reason)"
        case let .invalidCertificate(reason): "invalid certificate: \(reason)"
        case let .untrustedCertificate(reason): "the certificate chain does not verify: \(reason)"
        case let .passwordTooLong(bytes, limit): "password is \(bytes) bytes long; at most \(limit) bytes (UTF-8) are accepted"
        case let .busy(waiting): "\(waiting) password checks are waiting already; try again shortly"
        }
    }

    /// Builds an error from OpenSSL's thread-local error queue, emptying it.
    static func fromQueue(_ operation: String) -> CryptoError {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return .openSSL(operation: operation, reason: reasons.isEmpty ? "no reason given" : reasons.joined(separator: "; "))
    }
}
