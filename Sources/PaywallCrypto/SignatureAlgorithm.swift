/// The signature algorithms Paywall signs and verifies with. Nothing else, ever.
public enum SignatureAlgorithm: String, Hashable, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// ECDSA on P-256 with SHA-256; signatures in the 64-byte r‖s form (RFC 7518 §3.4).
    case es256 = "ES256"
    /// Ed25519 (RFC 8037; RFC 9864 names it `Ed25519`, the older name is `EdDSA`).
    case ed25519 = "Ed25519"

    /// The length of a signature in bytes (64 for both).
    public var signatureLength: Int { 64 }

    public var description: String { rawValue }

    /// Parses an algorithm name as typed by an admin (case-insensitive; `EdDSA` is Ed25519).
    public init?(name: String) {
        switch name.lowercased() {
        case "es256": self = .es256
        case "ed25519", "eddsa": self = .ed25519
        default: return nil
        }
    }
}
