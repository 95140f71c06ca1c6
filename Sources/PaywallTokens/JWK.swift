import PaywallCore
import PaywallCrypto

/// A public JSON Web Key (RFC 7517) for one of our algorithms.
public struct JWK: Sendable, Equatable {
    public let algorithm: SignatureAlgorithm
    /// The key's id: by default its RFC 7638 thumbprint.
    public let kid: String
    public let publicKey: PublicKey

    public static func == (lhs: JWK, rhs: JWK) -> Bool {
        lhs.algorithm == rhs.algorithm && lhs.kid == rhs.kid && lhs.publicKey.raw == rhs.publicKey.raw
    }

    /// A JWK for `publicKey` whose `kid` is its thumbprint.
    public init(publicKey: PublicKey) {
        self.algorithm = publicKey.algorithm
        self.publicKey = publicKey
        self.kid = Self.thumbprint(publicKey)
    }

    init(publicKey: PublicKey, kid: String) {
        self.algorithm = publicKey.algorithm
        self.publicKey = publicKey
        self.kid = kid
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order,
    /// base64url.
    public static func thumbprint(_ key: PublicKey) -> String {
        Base64URL.encode(SHA256.hash(requiredMembers(key).serialized()))
    }

    static func requiredMembers(_ key: PublicKey) -> JSONValue {
        let raw = key.raw
        switch key.algorithm {
        case .es256:
            return .object([
                "crv": .string("P-256"), "kty": .string("EC"),
                "x": .string(Base64URL.encode(raw[1..<33])), "y": .string(Base64URL.encode(raw[33..<65])),
            ])
        case .ed25519:
            return .object(["crv": .string("Ed25519"), "kty": .string("OKP"), "x": .string(Base64URL.encode(raw))])
        }
    }

    /// The JWK as published: required members plus `kid`, `alg` and `use`.
    public var json: JSONValue {
        guard case var .object(object) = Self.requiredMembers(publicKey) else { return .null }
        object["kid"] = .string(kid)
        object["alg"] = .string(algorithm.rawValue)
        object["use"] = .string("sig")
        return .object(object)
    }

    /// Imports a public JWK for verification. Refuses keys meant for encryption (`use`
    /// other than `sig`, `key_ops` without `verify`), an `alg` that contradicts the key
    /// type, private members, and anything but P-256 EC and Ed25519 OKP keys.
    public init(json: JSONValue) throws(TokenError) {
        guard case let .object(object) = json else { throw .malformed("a JWK must be a JSON object") }
        func string(_ name: String) -> String? { object[name]?.stringValue }
        if let use = object["use"], use.stringValue != "sig" { throw .invalidClaim("use", reason: "the key is not for signatures") }
        if let ops = object["key_ops"] {
            guard let list = ops.arrayValue, list.contains(.string("verify")) else {
                throw .invalidClaim("key_ops", reason: "the key may not verify")
            }
        }
        if object["d"] != nil { throw .invalidClaim("d", reason: "a private key was given where a public key belongs") }
        let algorithm: SignatureAlgorithm
        switch (string("kty"), string("crv")) {
        case ("EC", "P-256"):
            algorithm = .es256
            guard let x = string("x").flatMap(Base64URL.decode), let y = string("y").flatMap(Base64URL.decode),
                  x.count == 32, y.count == 32
            else { throw .invalidClaim("x/y", reason: "P-256 coordinates must be 32 bytes each") }
            do { publicKey = try PublicKey(algorithm: .es256, raw: [0x04] + x + y) } catch { throw .invalidClaim("x/y", reason: error.description) }
        case ("OKP", "Ed25519"):
            algorithm = .ed25519
            guard let x = string("x").flatMap(Base64URL.decode), x.count == 32 else {
                throw .invalidClaim("x", reason: "an Ed25519 key must be 32 bytes")
            }
            do { publicKey = try PublicKey(algorithm: .ed25519, raw: x) } catch { throw .invalidClaim("x", reason: error.description) }
        default:
            throw .unsupportedAlgorithm("\(string("kty") ?? "?")/\(string("crv") ?? "?")")
        }
        if let alg = string("alg"), SignatureAlgorithm(name: alg) != algorithm || (algorithm == .es256 && alg != "ES256") {
            throw .algorithmMismatch(header: alg, key: algorithm.rawValue)
        }
        self.algorithm = algorithm
        self.kid = string("kid") ?? Self.thumbprint(publicKey)
    }
}

/// A published key set.
public struct JWKS: Sendable {
    public var keys: [JWK]

    public init(keys: [JWK]) { self.keys = keys }

    /// `{"keys":[…]}`.
    public var json: JSONValue { .object(["keys": .array(keys.map(\.json))]) }

    /// Parses a key set; keys that cannot be used for verification are skipped.
    public init(json: JSONValue) throws(TokenError) {
        guard let list = json.objectValue?["keys"]?.arrayValue else { throw .malformed("a JWKS needs a \"keys\" array") }
        keys = list.compactMap { try? JWK(json: $0) }
    }
}
