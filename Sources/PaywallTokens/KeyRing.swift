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
    /// The key folder does not exist; `missingParent` when it cannot be made either (a
    /// key folder is made only inside an existing folder).
    case noSuchFolder(path: String, missingParent: String?)
    case corrupt(path: String, reason: String)
    case missingPrivateKey(kid: String, path: String)
    /// A private key file with group or other permission bits.
    case insecurePermissions(path: String, mode: String)
    /// The key folder or the manifest can be written by other users.
    case writableByOthers(path: String, mode: String)
    /// A key file or the key folder is a symbolic link.
    case symbolicLink(path: String)
    /// A key file that is not a regular file (a FIFO, a device, a folder…).
    case notRegularFile(path: String)
    /// A key file (or the folder) owned by another user than the one running paywall.
    case wrongOwner(path: String, owner: UInt32, expected: UInt32)
    case unknownKey(String)
    case alreadyRetired(String)
    case retiringSigningKey(String)
    case tooSoonToRetire(kid: String, until: Date)
    /// No key signs now in the folder at `path` (none is created without being asked).
    case noSigningKey(path: String)
    case crypto(String)

    public var description: String {
        switch self {
        case let .cannotAccess(path, reason): "cannot use key folder \(path): \(reason)"
        case let .noSuchFolder(path, nil): "no key folder \(path)"
        case let .noSuchFolder(path, parent?): "cannot make key folder \(path): folder \(parent) does not exist"
        case let .corrupt(path, reason): "\(path) is not a valid key ring (\(reason)); restore it from a backup"
        case let .missingPrivateKey(kid, path): "private key of \(kid) is missing (\(path)); restore it, or retire the key"
        case let .insecurePermissions(path, mode): "\(path) has mode \(mode): private keys must not be readable by others; run chmod 600 \(path)"
        case let .writableByOthers(path, mode): "\(path) has mode \(mode): other users could replace the signing keys; run chmod go-w \(path)"
        case let .symbolicLink(path): "\(path) is a symbolic link, refused for key files and the key folder; replace it with the real file or folder"
        case let .notRegularFile(path): "\(path) is not a regular file; remove it and restore the key ring from a backup"
        case let .wrongOwner(path, owner, expected): "\(path) belongs to uid \(owner), not to uid \(expected) running paywall; run chown \(expected) \(path), or run paywall as its owner"
        case let .unknownKey(kid): "no key '\(kid)' in the ring"
        case let .alreadyRetired(kid): "key \(kid) is already retired"
        case let .retiringSigningKey(kid): "key \(kid) is the signing key; rotate to a new key first, then retire it once its tokens have expired"
        case let .tooSoonToRetire(kid, until): "key \(kid) may still have live tokens until \(TokenTime.format(until)); retire it after that, or force it"
        case let .noSigningKey(path): "no active signing key in \(path) (none is created without the development setting)"
        case let .crypto(reason): reason
        }
    }

    /// Whether the key folder itself is unusable (missing, damaged or unsafe files), as
    /// opposed to a request the ring refuses.
    public var isUnusableFolder: Bool {
        switch self {
        case .cannotAccess, .noSuchFolder, .corrupt, .missingPrivateKey, .insecurePermissions, .writableByOthers, .symbolicLink, .notRegularFile, .wrongOwner: true
        default: false
        }
    }
}

/// The signing keys in a folder (`Keys/` by default): `keyring.json` lists every key, its
/// times and its public JWK; each live key's private half is `<kid>.pem`, PKCS#8, mode 0600.
///
/// Loading reads the manifest only: verification and the JWKS never open a private key
/// file. Only ``signingKey(at:)`` opens one, the signing key's. Every file is opened
/// without following links and checked on its open descriptor (see `KeyFolder`).
public struct KeyRing: Sendable {
    public let directory: URL
    public private(set) var records: [KeyRecord]
    /// The public half of every key whose manifest entry has one (every live key).
    private var publicKeys: [String: PublicKey]

    /// How long a superseded key keeps verifying before it may be retired: the longest
    /// token lifetime we issue (31-day comp grants) plus the leeway.
    public static let verifyOnlyPeriod: TimeInterval = 31 * 86_400 + 60

    /// The manifest's file name: every change to the ring rewrites it.
    public static let manifestName = "keyring.json"
    static let manifestLimit = 1 << 20
    static let privateKeyLimit = 64 << 10

    var manifestURL: URL { directory.appendingPathComponent(Self.manifestName) }
    func pemURL(_ kid: String) -> URL { directory.appendingPathComponent("\(kid).pem") }

    // MARK: - Loading

    /// Loads the ring for verification and the JWKS: reads `keyring.json` only, never a
    /// private key file. An absent folder or manifest is an empty ring.
    ///
    /// A manifest written before public keys were stored in it (version 1) still loads:
    /// the public half of each live key is derived from its private key file, and the
    /// manifest is rewritten with them (under the lock) so this happens once. If it cannot
    /// be rewritten (a read-only folder), loading still succeeds; any key change
    /// (`paywall keys generate|rotate|retire`) upgrades it.
    public static func load(directory: URL) throws(KeyRingError) -> KeyRing {
        let (ring, derived) = try read(directory: directory)
        guard derived else { return ring }
        let upgraded = try? modify(directory: directory) { (_: inout KeyRing) throws(KeyRingError) in }
        return upgraded?.0 ?? ring
    }

    /// Loads the ring and checks that a key signs at `now`. Without a signing key it
    /// throws ``KeyRingError/noSigningKey(path:)`` (the fix: `paywall keys generate`),
    /// unless `createDevelopmentKey`, when it creates an ES256 key that signs at once and
    /// returns it so the caller can say so. Pass `true` only in development: no key is
    /// ever created otherwise.
    public static func loadOrCreate(directory: URL, now: Date, createDevelopmentKey: Bool) throws(KeyRingError) -> (KeyRing, KeyRecord?) {
        let ring = try load(directory: directory)
        if ring.signingRecord(at: now) != nil { return (ring, nil) }
        guard createDevelopmentKey else { throw .noSigningKey(path: directory.path) }
        return try modify(directory: directory) { (ring: inout KeyRing) throws(KeyRingError) -> KeyRecord? in
            // Another process may have created one while we waited for the lock.
            if ring.signingRecord(at: now) != nil { return nil }
            return try ring.add(.es256, now: now, activatesAt: now)
        }
    }

    /// Changes the ring under an exclusive lock on `Keys/.lock`, on a copy loaded inside
    /// the lock, so that two processes changing keys at once lose neither change.
    public static func modify<T>(directory: URL, _ change: (inout KeyRing) throws(KeyRingError) -> T) throws(KeyRingError) -> (KeyRing, T) {
        let folder = try ensureDirectory(directory)
        let descriptor = try folder.openLock()
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw .cannotAccess(path: folder.path(".lock"), reason: String(cString: strerror(errno))) }
        defer { flock(descriptor, LOCK_UN) }
        var (ring, derived) = try read(directory: directory)
        let result = try change(&ring)
        if derived { try ring.writeManifest(ring.records, publicKeys: ring.publicKeys) }
        return (ring, result)
    }

    /// Reads the manifest; `derived` when some live key's public half had to be derived
    /// from its private key file (a version-1 manifest).
    static func read(directory: URL) throws(KeyRingError) -> (KeyRing, derived: Bool) {
        var ring = KeyRing(directory: directory, records: [], publicKeys: [:])
        guard let folder = try KeyFolder.opening(directory),
              let data = try folder.read(manifestName, secret: false, limit: manifestLimit)
        else { return (ring, false) }
        let path = ring.manifestURL.path
        let entries: [(KeyRecord, JSONValue?)]
        do { entries = try Self.decode(data) } catch { throw .corrupt(path: path, reason: error.message) }
        var derived = false
        for (record, jwkJSON) in entries {
            if let jwkJSON {
                let jwk: JWK
                do { jwk = try JWK(json: jwkJSON) } catch { throw .corrupt(path: path, reason: "the public key of \(record.kid): \(error)") }
                guard jwk.algorithm == record.algorithm, jwk.kid == record.kid, JWK.thumbprint(jwk.publicKey) == record.kid else {
                    throw .corrupt(path: path, reason: "the public key of \(record.kid) does not match its kid or alg")
                }
                ring.publicKeys[record.kid] = jwk.publicKey
            } else if record.retiredAt == nil {
                ring.publicKeys[record.kid] = try ring.privateKey(of: record, in: folder).publicKey
                derived = true
            }
        }
        ring.records = entries.map(\.0)
        return (ring, derived)
    }

    // MARK: - States

    /// Every key with its state at `now`.
    public func states(at now: Date) -> [(KeyRecord, KeyState)] {
        records.map { ($0, state(of: $0, at: now)) }
    }

    /// The state of `record` at `now`.
    public func state(of record: KeyRecord, at now: Date) -> KeyState {
        // Retired whatever the time it names: a retirement is always "now" on the host that
        // made it, and a server whose clock was behind that host's read a retirement still
        // in its future and went on verifying with the key, until its next reload, as signing
        // (``signingRecord(at:)``) never did (found in review: a leaked key, retired from a
        // bastion a few seconds fast, kept verifying forged tokens on every server).
        if record.retiredAt != nil { return .retired }
        if record.activatesAt > now { return .next }
        return signingRecord(at: now)?.kid == record.kid ? .active : .verifyOnly
    }

    /// The record of the key that signs at `now` (no file is opened): among live keys
    /// already active, the latest to activate; on a tie, the one added last.
    public func signingRecord(at now: Date) -> KeyRecord? {
        var best: (offset: Int, record: KeyRecord)?
        for (offset, record) in records.enumerated() where record.retiredAt == nil && record.activatesAt <= now {
            if let current = best, current.record.activatesAt > record.activatesAt { continue }
            best = (offset, record)
        }
        return best?.record
    }

    /// When a verify-only key stopped signing: the first moment after it activated at which
    /// another key signed instead, by ``signingRecord(at:)``'s rule (the latest to activate
    /// wins; on a tie, the one added last). Not merely when a key added after it activated:
    /// a key added later but activating earlier (an emergency key, then the rotation's key
    /// taking over from it) was counted, and the key seemed superseded days before it
    /// stopped signing, so a retirement could refuse tokens it signed later (found in review).
    func supersededAt(_ record: KeyRecord, now: Date) -> Date? {
        guard let index = records.firstIndex(where: { $0.kid == record.kid }) else { return nil }
        return records.enumerated().filter { offset, other in
            offset != index && other.retiredAt == nil && other.activatesAt <= now
                && (other.activatesAt > record.activatesAt || (other.activatesAt == record.activatesAt && offset > index))
        }.map(\.element.activatesAt).min()
    }

    /// The key that signs at `now`, with its record: the one place a private key file is
    /// opened (and checked: no link, a regular file of ours, mode 0600 or stricter).
    /// Throws ``KeyRingError/noSigningKey(path:)`` when no key signs at `now`.
    public func signingKey(at now: Date) throws(KeyRingError) -> (KeyRecord, PrivateKey) {
        guard let record = signingRecord(at: now) else { throw .noSigningKey(path: directory.path) }
        guard let folder = try KeyFolder.opening(directory) else { throw .missingPrivateKey(kid: record.kid, path: pemURL(record.kid).path) }
        return (record, try privateKey(of: record, in: folder))
    }

    /// Reads and checks the private key of `record`.
    func privateKey(of record: KeyRecord, in folder: KeyFolder) throws(KeyRingError) -> PrivateKey {
        let path = pemURL(record.kid).path
        guard let pemData = try folder.read("\(record.kid).pem", secret: true, limit: Self.privateKeyLimit) else {
            throw .missingPrivateKey(kid: record.kid, path: path)
        }
        let key: PrivateKey
        do { key = try PrivateKey(pem: String(decoding: pemData, as: UTF8.self), algorithm: record.algorithm) } catch {
            throw .corrupt(path: path, reason: error.description)
        }
        guard JWK.thumbprint(key.publicKey) == record.kid else {
            throw .corrupt(path: path, reason: "the key's thumbprint is not \(record.kid)")
        }
        return key
    }

    /// The public key of `kid`, from the manifest.
    public func publicKey(of kid: String) -> PublicKey? { publicKeys[kid] }

    /// Keys that verify at `now`: every key not retired (the next key too: it is ours),
    /// from the public keys in the manifest.
    public func verificationKeys(at now: Date) -> [VerificationKey] {
        records.filter { state(of: $0, at: now) != .retired }.compactMap { record in
            publicKeys[record.kid].map { VerificationKey(kid: record.kid, publicKey: $0) }
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
        _ = try Self.ensureDirectory(directory)
        try Self.writeSecret(pem, to: pemURL(record.kid))
        var updated = records
        updated.append(record)
        var keys = publicKeys
        keys[record.kid] = key.publicKey
        do {
            try writeManifest(updated, publicKeys: keys)
        } catch {
            try? FileManager.default.removeItem(at: pemURL(record.kid))
            throw error
        }
        records = updated
        publicKeys = keys
        return record
    }

    /// Retires a key: it stops verifying and its private key file is deleted. Refuses the
    /// signing key, and a superseded key whose tokens may still be live, unless `force`.
    /// The retirement holds once the manifest says so; a private key file that could not
    /// be deleted after that is named in ``Retirement/privateKeyLeft`` for the operator
    /// (found in review: a failed delete was ignored, leaving a retired key's private half
    /// on the disk without a word).
    @discardableResult
    public mutating func retire(kid: String, now: Date, force: Bool) throws(KeyRingError) -> Retirement {
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
        try writeManifest(updated, publicKeys: publicKeys)
        records = updated
        return Retirement(record: updated[index], privateKeyLeft: deletePrivateKey(kid))
    }

    /// A retired key, and why its private key file is still there if it is.
    public struct Retirement: Sendable {
        public var record: KeyRecord
        /// The file and why it may still be there: not deleted, or deleted with its folder
        /// not synced (nil: deleted and synced, or never there).
        public var privateKeyLeft: (path: String, reason: String)?

        public init(record: KeyRecord, privateKeyLeft: (path: String, reason: String)?) {
            self.record = record
            self.privateKeyLeft = privateKeyLeft
        }
    }

    /// Deletes `kid`'s private key file through the folder (never following a link in its
    /// place; the folder synced after, or the file could come back after a power cut:
    /// found in review); returns the path and the reason when it could not. Absent
    /// already is fine.
    private func deletePrivateKey(_ kid: String) -> (path: String, reason: String)? {
        let path = pemURL(kid).path
        let folder: KeyFolder
        do {
            guard let opened = try KeyFolder.opening(directory) else { return nil }
            folder = opened
        } catch {
            return (path, error.description)
        }
        return folder.remove(pemURL(kid).lastPathComponent).map { (path, $0) }
    }

    static func second(_ date: Date) -> Date { Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)) }

    // MARK: - Files

    /// Opens the folder, creating it with mode 0700 when absent. An existing folder that
    /// others may read (as cloned, with its README) is closed to them; one that others may
    /// write, or a link, is refused.
    /// Refuses a key folder that neither exists nor can be made: only the folder itself is
    /// ever made, so a mistyped path (`/srv/paywal/Keys`) fails rather than grow a tree of
    /// folders holding a new key nobody deploys. Checked on its own before a server makes
    /// anything else (`serve --demo`, before its database).
    public static func checkCanOpen(_ directory: URL) throws(KeyRingError) {
        let parent = directory.deletingLastPathComponent().path
        guard FileManager.default.isFolder(atPath: directory.path) || FileManager.default.isFolder(atPath: parent) else {
            throw .noSuchFolder(path: directory.path, missingParent: parent)
        }
    }

    @discardableResult
    static func ensureDirectory(_ directory: URL) throws(KeyRingError) -> KeyFolder {
        if let folder = try KeyFolder.opening(directory) {
            if folder.mode & 0o077 != 0 { _ = fchmod(folder.descriptor, 0o700) }
            return folder
        }
        try checkCanOpen(directory)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            // Another thread or process made it meanwhile (a CI run caught 8 threads adding
            // keys to a new folder at once): take theirs, as if it had been there.
            if let folder = try KeyFolder.opening(directory) {
                if folder.mode & 0o077 != 0 { _ = fchmod(folder.descriptor, 0o700) }
                return folder
            }
            throw .cannotAccess(path: directory.path, reason: error.localizedDescription)
        }
        guard let folder = try KeyFolder.opening(directory) else { throw .cannotAccess(path: directory.path, reason: "the folder vanished") }
        return folder
    }

    /// Creates `url` with mode 0600 from the start (never readable by others, not even
    /// for an instant), writes and syncs it.
    static func writeSecret(_ text: String, to url: URL) throws(KeyRingError) {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
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

    /// Writes the manifest (version 2: each key with its public JWK) atomically, mode 0644.
    func writeManifest(_ records: [KeyRecord], publicKeys: [String: PublicKey]) throws(KeyRingError) {
        let object: JSONValue = .object([
            "version": .number(2),
            "keys": .array(records.map { record in
                var item = JSONObject()
                item["kid"] = .string(record.kid)
                item["alg"] = .string(record.algorithm.rawValue)
                item["createdAt"] = .number(record.createdAt.timeIntervalSince1970.rounded(.down))
                item["activatesAt"] = .number(record.activatesAt.timeIntervalSince1970.rounded(.down))
                item["retiredAt"] = record.retiredAt.map { .number($0.timeIntervalSince1970.rounded(.down)) } ?? .null
                if let key = publicKeys[record.kid] { item["jwk"] = JWK(publicKey: key, kid: record.kid).json }
                return .object(item)
            }),
        ])
        let folder = try Self.ensureDirectory(directory)
        try folder.replace(Self.manifestName, with: object.serialized() + [0x0A])
    }

    struct DecodeError: Error { let message: String }

    /// A kid names a file: base64url characters only.
    static let kidCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The records, each with its public JWK when the manifest has one (version 2).
    static func decode(_ data: [UInt8]) throws(DecodeError) -> [(KeyRecord, JSONValue?)] {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch { throw DecodeError(message: error.description) }
        guard let list = root.objectValue?["keys"]?.arrayValue else { throw DecodeError(message: "no \"keys\" list") }
        var records: [(KeyRecord, JSONValue?)] = []
        var seen = Set<String>()
        for item in list {
            guard let object = item.objectValue, let kid = object["kid"]?.stringValue,
                  let alg = object["alg"]?.stringValue.flatMap(SignatureAlgorithm.init(rawValue:)),
                  let created = object["createdAt"]?.numberValue, let activates = object["activatesAt"]?.numberValue,
                  kid.utf8.allSatisfy({ Self.kidCharacters.contains($0) }), !kid.isEmpty, kid.utf8.count <= 128
            else { throw DecodeError(message: "a key entry lacks kid, alg, createdAt or activatesAt") }
            guard seen.insert(kid).inserted else { throw DecodeError(message: "key \(kid) is listed twice") }
            let retired = object["retiredAt"]?.numberValue.map { Date(timeIntervalSince1970: $0) }
            let jwk = object["jwk"].flatMap { $0 == .null ? nil : $0 }
            records.append((KeyRecord(kid: kid, algorithm: alg, createdAt: Date(timeIntervalSince1970: created),
                                      activatesAt: Date(timeIntervalSince1970: activates), retiredAt: retired), jwk))
        }
        return records
    }
}
