import Foundation
import PaywallCore
import PaywallCrypto

/// A key's state at an instant, derived from its record's times.
public enum KeyState: String, Sendable, CustomStringConvertible {
    /// Published in the JWKS, not yet signing (rotation publishes the new key first).
    case next
    /// The one key that signs (and verifies).
    case active
    /// Superseded: still verifies tokens it signed.
    case verifyOnly = "verify-only"
    /// Gone: its private key is deleted and nothing it signed verifies.
    case retired

    public var description: String { rawValue }
}

/// One key in the ring, as stored in `Keys/keyring.json` (no secrets).
public struct KeyRecord: Sendable, Equatable {
    /// The RFC 7638 JWK thumbprint of the public key.
    public var kid: String
    public var algorithm: SignatureAlgorithm
    public var createdAt: Date
    /// When the key starts signing; until then it is published only.
    public var activatesAt: Date
    public var retiredAt: Date?
}

/// Why the key ring could not be used, with what to do about it.
public enum KeyRingError: Error, Equatable, Sendable, CustomStringConvertible {
    case cannotAccess(path: String, reason: String)
    case corrupt(path: String, reason: String)
    case missingPrivateKey(kid: String, path: String)
    case insecurePermissions(path: String, mode: String)
    case unknownKey(String)
    case alreadyRetired(String)
    case retiringSigningKey(String)
    case tooSoonToRetire(kid: String, until: Date)
    case noSigningKey(path: String)
    case crypto(String)

    public var description: String {
        switch self {
        case let .cannotAccess(path, reason): "cannot use key folder \(path): \(reason)"
        case let .corrupt(path, reason): "\(path) is not a valid key ring (\(reason)); restore it from a backup"
        case let .missingPrivateKey(kid, path): "private key of \(kid) is missing (\(path)); restore it, or retire the key with --force"
        case let .insecurePermissions(path, mode): "\(path) has mode \(mode): private keys must not be readable by others; run chmod 600 \(path)"
        case let .unknownKey(kid): "no key '\(kid)' in the ring; see 'paywall keys list'"
        case let .alreadyRetired(kid): "key \(kid) is already retired"
        case let .retiringSigningKey(kid): "key \(kid) is the signing key; rotate first ('paywall keys rotate'), then retire it once its tokens have expired"
        case let .tooSoonToRetire(kid, until): "key \(kid) may still have live tokens until \(TokenTime.format(until)); retire it after that, or use --force"
        case let .noSigningKey(path): "no active signing key in \(path); run 'paywall keys generate'"
        case let .crypto(reason): reason
        }
    }
}

/// The signing keys in a folder (`Keys/` by default): `keyring.json` lists every key and
/// its times; each live key's private half is `<kid>.pem`, PKCS#8, mode 0600.
public struct KeyRing: Sendable {
    public let directory: URL
    public private(set) var records: [KeyRecord]
    private var privateKeys: [String: PrivateKey]

    /// How long a superseded key keeps verifying before it may be retired: the longest
    /// token lifetime we issue (31-day comp grants) plus the leeway.
    public static let verifyOnlyPeriod: TimeInterval = 31 * 86_400 + 60

    var manifestURL: URL { directory.appendingPathComponent("keyring.json") }
    func pemURL(_ kid: String) -> URL { directory.appendingPathComponent("\(kid).pem") }

    // MARK: - Loading

    /// Loads the ring; an absent or empty folder is an empty ring.
    public static func load(directory: URL) throws(KeyRingError) -> KeyRing {
        var ring = KeyRing(directory: directory, records: [], privateKeys: [:])
        let manifest = ring.manifestURL
        guard FileManager.default.fileExists(atPath: manifest.path) else { return ring }
        let data: Data
        do { data = try Data(contentsOf: manifest) } catch { throw .cannotAccess(path: manifest.path, reason: error.localizedDescription) }
        let records: [KeyRecord]
        do { records = try Self.decode(data) } catch { throw .corrupt(path: manifest.path, reason: error.message) }
        ring.records = records
        for record in records where record.retiredAt == nil {
            let url = ring.pemURL(record.kid)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
                  let pemData = FileManager.default.contents(atPath: url.path)
            else { throw .missingPrivateKey(kid: record.kid, path: url.path) }
            if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
                throw .insecurePermissions(path: url.path, mode: String(mode, radix: 8))
            }
            let key: PrivateKey
            do { key = try PrivateKey(pem: String(decoding: pemData, as: UTF8.self), algorithm: record.algorithm) } catch {
                throw .corrupt(path: url.path, reason: error.description)
            }
            guard JWK.thumbprint(key.publicKey) == record.kid else {
                throw .corrupt(path: url.path, reason: "the key's thumbprint is not \(record.kid)")
            }
            ring.privateKeys[record.kid] = key
        }
        return ring
    }

    /// Loads the ring, creating an ES256 development key if it has none that can sign.
    /// Returns the key it created, if any, so the caller can say so.
    public static func loadOrCreate(directory: URL, now: Date) throws(KeyRingError) -> (KeyRing, KeyRecord?) {
        let ring = try load(directory: directory)
        if ring.signingKey(at: now) != nil { return (ring, nil) }
        return try modify(directory: directory) { (ring: inout KeyRing) throws(KeyRingError) -> KeyRecord? in
            // Another process may have created one while we waited for the lock.
            if ring.signingKey(at: now) != nil { return nil }
            return try ring.add(.es256, now: now, activatesAt: now)
        }
    }

    /// Changes the ring under an exclusive lock on `Keys/.lock`, on a copy loaded inside
    /// the lock, so that two processes changing keys at once lose neither change.
    public static func modify<T>(directory: URL, _ change: (inout KeyRing) throws(KeyRingError) -> T) throws(KeyRingError) -> (KeyRing, T) {
        var probe = KeyRing(directory: directory, records: [], privateKeys: [:])
        try probe.ensureDirectory()
        let lockPath = directory.appendingPathComponent(".lock").path
        let descriptor = open(lockPath, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw .cannotAccess(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw .cannotAccess(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { flock(descriptor, LOCK_UN) }
        var ring = try load(directory: directory)
        let result = try change(&ring)
        return (ring, result)
    }

    // MARK: - States

    /// The state of `record` at `now`.
    public func state(of record: KeyRecord, at now: Date) -> KeyState {
        if let retired = record.retiredAt, retired <= now { return .retired }
        if record.activatesAt > now { return .next }
        return signingRecord(at: now)?.kid == record.kid ? .active : .verifyOnly
    }

    /// The signer: among live keys already active, the latest to activate; on a tie, the
    /// one added last.
    func signingRecord(at now: Date) -> KeyRecord? {
        var best: (offset: Int, record: KeyRecord)?
        for (offset, record) in records.enumerated() where record.retiredAt == nil && record.activatesAt <= now {
            if let current = best, current.record.activatesAt > record.activatesAt { continue }
            best = (offset, record)
        }
        return best?.record
    }

    /// When a verify-only key stopped signing: when a key added after it activated.
    func supersededAt(_ record: KeyRecord, now: Date) -> Date? {
        guard let index = records.firstIndex(where: { $0.kid == record.kid }) else { return nil }
        return records[(index + 1)...].map(\.activatesAt).filter { $0 <= now }.min().map { max($0, record.activatesAt) }
    }

    /// The key that signs at `now`, with its record.
    public func signingKey(at now: Date) -> (KeyRecord, PrivateKey)? {
        guard let record = signingRecord(at: now), let key = privateKeys[record.kid] else { return nil }
        return (record, key)
    }

    /// Keys that verify at `now`: every key not retired (the next key too: it is ours).
    public func verificationKeys(at now: Date) -> [VerificationKey] {
        records.filter { state(of: $0, at: now) != .retired }.compactMap { record in
            privateKeys[record.kid].map { VerificationKey(kid: record.kid, publicKey: $0.publicKey) }
        }
    }

    /// The public key set to publish at `now`.
    public func jwks(at now: Date) -> JWKS {
        JWKS(keys: verificationKeys(at: now).map { JWK(publicKey: $0.publicKey, kid: $0.kid) })
    }

    // MARK: - Changes

    /// Generates a key that signs from `activatesAt` (now for `keys generate`, later for
    /// `keys rotate`, so the new key is published before it signs).
    @discardableResult
    public mutating func add(_ algorithm: SignatureAlgorithm, now: Date, activatesAt: Date) throws(KeyRingError) -> KeyRecord {
        let key: PrivateKey
        let pem: String
        do {
            key = try PrivateKey.generate(algorithm)
            pem = try key.pem()
        } catch { throw .crypto(error.description) }
        // Whole seconds, as the manifest stores them.
        let record = KeyRecord(kid: JWK.thumbprint(key.publicKey), algorithm: algorithm, createdAt: Self.second(now),
                               activatesAt: Self.second(activatesAt), retiredAt: nil)
        try ensureDirectory()
        try Self.writeSecret(pem, to: pemURL(record.kid))
        var updated = records
        updated.append(record)
        do {
            try writeManifest(updated)
        } catch {
            try? FileManager.default.removeItem(at: pemURL(record.kid))
            throw error
        }
        records = updated
        privateKeys[record.kid] = key
        return record
    }

    /// Retires a key: it stops verifying and its private key file is deleted. Refuses the
    /// signing key, and a superseded key whose tokens may still be live, unless `force`.
    @discardableResult
    public mutating func retire(kid: String, now: Date, force: Bool) throws(KeyRingError) -> KeyRecord {
        guard let index = records.firstIndex(where: { $0.kid == kid }) else { throw .unknownKey(kid) }
        let record = records[index]
        switch state(of: record, at: now) {
        case .retired: throw .alreadyRetired(kid)
        case .active where !force: throw .retiringSigningKey(kid)
        case .verifyOnly where !force:
            let until = (supersededAt(record, now: now) ?? now).addingTimeInterval(Self.verifyOnlyPeriod)
            if now < until { throw .tooSoonToRetire(kid: kid, until: until) }
        default: break
        }
        var updated = records
        updated[index].retiredAt = Self.second(now)
        try writeManifest(updated)
        records = updated
        privateKeys[kid] = nil
        try? FileManager.default.removeItem(at: pemURL(kid))
        return updated[index]
    }

    static func second(_ date: Date) -> Date { Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)) }

    // MARK: - Files

    func ensureDirectory() throws(KeyRingError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { throw .cannotAccess(path: directory.path, reason: "not a folder") }
            // The folder came with the repository (its README): close it to others too.
            if let mode = (try? FileManager.default.attributesOfItem(atPath: directory.path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
                try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory.path)
            }
            return
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { throw .cannotAccess(path: directory.path, reason: error.localizedDescription) }
    }

    /// Creates `url` with mode 0600 from the start (never readable by others, not even
    /// for an instant), writes and syncs it.
    static func writeSecret(_ text: String, to url: URL) throws(KeyRingError) {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw .cannotAccess(path: url.path, reason: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data(text.utf8))
            try handle.synchronize()
            try handle.close()
        } catch {
            try? FileManager.default.removeItem(at: url)
            throw .cannotAccess(path: url.path, reason: error.localizedDescription)
        }
    }

    /// Writes the manifest atomically (a temporary file renamed over the old one).
    func writeManifest(_ records: [KeyRecord]) throws(KeyRingError) {
        let object: JSONValue = .object([
            "version": .number(1),
            "keys": .array(records.map { record in
                var item = JSONObject()
                item["kid"] = .string(record.kid)
                item["alg"] = .string(record.algorithm.rawValue)
                item["createdAt"] = .number(record.createdAt.timeIntervalSince1970.rounded(.down))
                item["activatesAt"] = .number(record.activatesAt.timeIntervalSince1970.rounded(.down))
                item["retiredAt"] = record.retiredAt.map { .number($0.timeIntervalSince1970.rounded(.down)) } ?? .null
                return .object(item)
            }),
        ])
        do {
            try Data(object.serialized() + [0x0A]).write(to: manifestURL, options: .atomic)
        } catch { throw .cannotAccess(path: manifestURL.path, reason: error.localizedDescription) }
    }

    struct DecodeError: Error { let message: String }

    /// A kid names a file: base64url characters only.
    static let kidCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func decode(_ data: Data) throws(DecodeError) -> [KeyRecord] {
        let root: JSONValue
        do { root = try JSONValue.parse(Array(data)) } catch { throw DecodeError(message: error.description) }
        guard let list = root.objectValue?["keys"]?.arrayValue else { throw DecodeError(message: "no \"keys\" list") }
        var records: [KeyRecord] = []
        for item in list {
            guard let object = item.objectValue, let kid = object["kid"]?.stringValue,
                  let alg = object["alg"]?.stringValue.flatMap(SignatureAlgorithm.init(rawValue:)),
                  let created = object["createdAt"]?.numberValue, let activates = object["activatesAt"]?.numberValue,
                  kid.utf8.allSatisfy({ Self.kidCharacters.contains($0) }), !kid.isEmpty
            else { throw DecodeError(message: "a key entry lacks kid, alg, createdAt or activatesAt") }
            let retired = object["retiredAt"]?.numberValue.map { Date(timeIntervalSince1970: $0) }
            records.append(KeyRecord(kid: kid, algorithm: alg, createdAt: Date(timeIntervalSince1970: created),
                                     activatesAt: Date(timeIntervalSince1970: activates), retiredAt: retired))
        }
        return records
    }
}
