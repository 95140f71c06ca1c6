import PaywallCrypto

/// A key the verifier trusts, pinned to its algorithm.
public struct VerificationKey: Sendable {
    public let kid: String
    public let publicKey: PublicKey

    public init(kid: String, publicKey: PublicKey) {
        self.kid = kid
        self.publicKey = publicKey
    }

    public init(_ jwk: JWK) { self.init(kid: jwk.kid, publicKey: jwk.publicKey) }
}

/// A JWS whose signature checked out: its protected header and payload.
public struct VerifiedJWS: Sendable {
    public let header: JSONObject
    public let payload: [UInt8]
    public let kid: String
}

/// Verifies JWS compact serializations (RFC 7515) following RFC 8725: the algorithm is
/// the key's, never the token's word; `none` and everything but ES256/Ed25519 are
/// refused; `jku`, `x5u`, `x5c`, `jwk` and unknown `crit` are refused; the key must be
/// named by `kid`; base64url is strict; the size is bounded; JSON with duplicate member
/// names is refused.
public struct JWSVerifier: Sendable {
    /// Header parameters that would make us fetch or trust a key from the token itself.
    static let forbiddenHeaders = ["jku", "x5u", "x5c", "jwk", "x5t", "x5t#S256", "zip"]

    public let keys: [String: VerificationKey]
    /// The largest token accepted, in bytes (default 8 KiB).
    public var maximumSize: Int

    /// A header as this service's signer writes it for one key and token kind, encoded,
    /// with what it parses to.
    struct KnownHeader: Sendable {
        let encoded: [UInt8]
        let header: JSONObject
        let key: VerificationKey
    }

    /// Every header ``JWSSigner`` writes for these keys: a token whose header is one of
    /// them byte for byte skips decoding and parsing it, and its checks (it passes them by
    /// construction; any other header takes the full path). Measured on cold-token checks:
    /// the header's decoding and parsing were a tenth of a token's verification after the
    /// signature.
    let knownHeaders: [KnownHeader]

    public init(keys: [VerificationKey], maximumSize: Int = 8_192) {
        var byKid: [String: VerificationKey] = [:]
        for key in keys where byKid[key.kid] == nil { byKid[key.kid] = key }
        self.keys = byKid
        self.maximumSize = maximumSize
        knownHeaders = byKid.values.flatMap { key in
            TokenKind.allCases.compactMap { kind -> KnownHeader? in
                let encoded = JWSSigner.encodedHeader(algorithm: key.publicKey.algorithm, kid: key.kid, type: kind.rawValue)
                guard let json = Base64URL.decode(utf8: encoded[...]), case let .object(header)? = try? JSONValue.parse(json, maxDepth: 4) else { return nil }
                return KnownHeader(encoded: encoded, header: header, key: key)
            }
        }
    }

    /// Checks the signature and header of `token`; returns its header and payload.
    public func verify(_ token: String) throws(TokenError) -> VerifiedJWS {
        let bytes = Array(token.utf8)
        guard bytes.count <= maximumSize else { throw .tooLarge(limit: maximumSize) }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected three dot-separated parts (JWS compact serialization)") }
        guard !parts[0].isEmpty, !parts[2].isEmpty else { throw .malformed("empty header or signature") }
        let known = knownHeaders.first { $0.encoded.count == parts[0].count && $0.encoded.elementsEqual(parts[0]) }
        var headerBytes: [UInt8] = []
        if known == nil {
            guard let decoded = Base64URL.decode(utf8: parts[0]) else { throw .malformed("header is not strict base64url") }
            headerBytes = decoded
        }
        guard let payload = Base64URL.decode(utf8: parts[1]) else { throw .malformed("payload is not strict base64url") }
        guard let signature = Base64URL.decode(utf8: parts[2]) else { throw .malformed("signature is not strict base64url") }
        let header: JSONObject
        let key: VerificationKey
        if let known {
            (header, key) = (known.header, known.key)
        } else {
            (header, key) = try checkedHeader(headerBytes)
        }
        let signingInput = Array(bytes[..<(parts[0].count + 1 + parts[1].count)])
        guard key.publicKey.verify(signature: signature, message: signingInput) else { throw .badSignature }
        return VerifiedJWS(header: header, payload: payload, kid: key.kid)
    }

    /// A header not written by our signer: parsed and checked (RFC 8725); with the key it
    /// names, whose algorithm must be the one it names.
    private func checkedHeader(_ headerBytes: [UInt8]) throws(TokenError) -> (JSONObject, VerificationKey) {
        let header: JSONObject
        do {
            guard case let .object(object) = try JSONValue.parse(headerBytes, maxDepth: 4) else { throw TokenError.malformed("header is not a JSON object") }
            header = object
        } catch let error as JSONError {
            throw .malformed("header: \(error)")
        } catch {
            throw .malformed("header is not a JSON object")
        }

        guard let alg = header["alg"]?.stringValue else { throw .malformed("header has no \"alg\"") }
        guard let algorithm = SignatureAlgorithm(headerName: alg) else { throw .unsupportedAlgorithm(alg) }
        for name in Self.forbiddenHeaders where header[name] != nil { throw .forbiddenHeader(name) }
        if header["crit"] != nil { throw .unknownCritical }
        if let b64 = header["b64"], b64 != .bool(true) { throw .forbiddenHeader("b64") }
        guard let kid = header["kid"]?.stringValue else { throw .malformed("header has no \"kid\"") }
        guard let key = keys[kid] else { throw .unknownKey(kid) }
        guard key.publicKey.algorithm == algorithm else {
            throw .algorithmMismatch(header: alg, key: key.publicKey.algorithm.rawValue)
        }
        return (header, key)
    }
}

extension SignatureAlgorithm {
    /// The algorithm named by a JWS `alg` header: exactly `ES256`, `Ed25519` or the older
    /// `EdDSA` (case-sensitive, as RFC 7515 requires).
    init?(headerName: String) {
        switch headerName {
        case "ES256": self = .es256
        case "Ed25519", "EdDSA": self = .ed25519
        default: return nil
        }
    }
}

/// Signs JWS compact serializations with one private key.
public struct JWSSigner: Sendable {
    public let key: PrivateKey
    public let kid: String

    /// The encoded protected header of each kind, made once.
    private let headers: [String: [UInt8]]

    public init(key: PrivateKey, kid: String) {
        self.key = key
        self.kid = kid
        var headers: [String: [UInt8]] = [:]
        for kind in TokenKind.allCases { headers[kind.rawValue] = Self.encodedHeader(algorithm: key.algorithm, kid: kid, type: kind.rawValue) }
        self.headers = headers
    }

    static func encodedHeader(algorithm: SignatureAlgorithm, kid: String, type: String) -> [UInt8] {
        var header = [UInt8]()
        header.reserveCapacity(128)
        header.append(contentsOf: #"{"alg":""#.utf8)
        header.append(contentsOf: algorithm.rawValue.utf8)
        header.append(contentsOf: #"","kid":"#.utf8)
        JSONValue.writeString(kid, to: &header)
        header.append(contentsOf: #","typ":"#.utf8)
        JSONValue.writeString(type, to: &header)
        header.append(UInt8(ascii: "}"))
        var encoded = [UInt8]()
        Base64URL.append(header, to: &encoded)
        return encoded
    }

    /// `BASE64URL(header).BASE64URL(payload).BASE64URL(signature)` with header
    /// `{"alg":…,"kid":…,"typ":…}`.
    public func sign(type: String, payload: JSONValue) throws(CryptoError) -> String {
        try sign(type: type, payload: payload.serialized())
    }

    /// Signs payload bytes (already JSON).
    public func sign(type: String, payload: [UInt8]) throws(CryptoError) -> String {
        let header = headers[type] ?? Self.encodedHeader(algorithm: key.algorithm, kid: kid, type: type)
        var token = [UInt8]()
        token.reserveCapacity(header.count + payload.count * 4 / 3 + 100)
        token.append(contentsOf: header)
        token.append(UInt8(ascii: "."))
        Base64URL.append(payload, to: &token)
        let signature = try key.sign(token)
        token.append(UInt8(ascii: "."))
        Base64URL.append(signature, to: &token)
        return String(decoding: token, as: UTF8.self)
    }
}
