import Foundation
import Testing
import PaywallCore
import PaywallCrypto
@testable import PaywallTokens

@Suite("Key ring file safety and public-only loading")
struct KeyRingSecurityTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    /// A key folder to be made, in a scratch folder of its own (the tests put files beside
    /// it; a key folder is made only where its parent exists).
    func folder() -> URL {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-keys-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: parent, withIntermediateDirectories: false)
        return parent.appendingPathComponent("Keys")
    }

    /// A folder with one ES256 key that signs at `start`.
    func ringWithKey() throws -> (URL, KeyRecord, String) {
        let dir = folder()
        var ring = try KeyRing.load(directory: dir)
        let record = try ring.add(.es256, now: start, activatesAt: start)
        return (dir, record, dir.appendingPathComponent("\(record.kid).pem").path)
    }

    func chmod(_ path: String, _ mode: Int) throws {
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    @Test("a symbolic link in place of a private key file is refused")
    func symlinkedKey() throws {
        let (dir, _, pem) = try ringWithKey()
        let elsewhere = dir.deletingLastPathComponent().appendingPathComponent("real.pem").path
        try FileManager.default.moveItem(atPath: pem, toPath: elsewhere)
        try FileManager.default.createSymbolicLink(atPath: pem, withDestinationPath: elsewhere)
        let ring = try KeyRing.load(directory: dir)
        #expect(throws: KeyRingError.symbolicLink(path: pem)) { try ring.signingKey(at: start) }
        #expect(KeyRingError.symbolicLink(path: pem).description.contains(pem))
    }

    @Test("a private key file readable by the group is refused with 'chmod 600 PATH'", arguments: [0o640, 0o604, 0o660, 0o644])
    func groupReadable(_ mode: Int) throws {
        let (dir, _, pem) = try ringWithKey()
        try chmod(pem, mode)
        let ring = try KeyRing.load(directory: dir)
        #expect(throws: KeyRingError.insecurePermissions(path: pem, mode: String(mode, radix: 8))) { try ring.signingKey(at: start) }
    }

    @Test("a key folder others can write is refused (loading and changing)", arguments: [0o770, 0o730, 0o707, 0o777])
    func writableFolder(_ mode: Int) throws {
        let (dir, _, _) = try ringWithKey()
        try chmod(dir.path, mode)
        let expected = KeyRingError.writableByOthers(path: dir.path, mode: String(mode, radix: 8))
        #expect(throws: expected) { try KeyRing.load(directory: dir) }
        #expect(throws: expected) { try KeyRing.modify(directory: dir) { (ring: inout KeyRing) throws(KeyRingError) in try ring.add(.es256, now: start, activatesAt: start) } }
        #expect(expected.description.contains("chmod go-w \(dir.path)"))
        // Left as it was: not silently "fixed".
        #expect(try FileManager.default.attributesOfItem(atPath: dir.path)[.posixPermissions] as? Int == mode)
    }

    @Test("a key folder that is a symbolic link is refused")
    func symlinkedFolder() throws {
        let (dir, _, _) = try ringWithKey()
        let link = dir.deletingLastPathComponent().appendingPathComponent("LinkedKeys")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: dir.path)
        #expect(throws: KeyRingError.symbolicLink(path: link.path)) { try KeyRing.load(directory: link) }
    }

    @Test("a manifest others can write, or a linked manifest, is refused (it names the public keys)")
    func manifestFile() throws {
        let (dir, _, _) = try ringWithKey()
        let manifest = dir.appendingPathComponent("keyring.json").path
        #expect(try FileManager.default.attributesOfItem(atPath: manifest)[.posixPermissions] as? Int == 0o644)
        try chmod(manifest, 0o664)
        #expect(throws: KeyRingError.writableByOthers(path: manifest, mode: "664")) { try KeyRing.load(directory: dir) }
        try chmod(manifest, 0o644)
        let elsewhere = dir.deletingLastPathComponent().appendingPathComponent("keyring.json").path
        try FileManager.default.moveItem(atPath: manifest, toPath: elsewhere)
        try FileManager.default.createSymbolicLink(atPath: manifest, withDestinationPath: elsewhere)
        #expect(throws: KeyRingError.symbolicLink(path: manifest)) { try KeyRing.load(directory: dir) }
    }

    @Test("a FIFO in place of a private key is refused without hanging")
    func fifo() throws {
        let (dir, _, pem) = try ringWithKey()
        try FileManager.default.removeItem(atPath: pem)
        #expect(mkfifo(pem, 0o600) == 0)
        let ring = try KeyRing.load(directory: dir)
        #expect(throws: KeyRingError.notRegularFile(path: pem)) { try ring.signingKey(at: start) }
    }

    @Test("a private key file owned by another user is refused", .enabled(if: geteuid() == 0, "needs root to chown"))
    func otherOwner() throws {
        let (dir, _, pem) = try ringWithKey()
        #expect(chown(pem, 65534, 65534) == 0)
        let ring = try KeyRing.load(directory: dir)
        #expect(throws: KeyRingError.wrongOwner(path: pem, owner: 65534, expected: geteuid())) { try ring.signingKey(at: start) }
        #expect(KeyRingError.wrongOwner(path: pem, owner: 65534, expected: 0).description.contains("chown 0 \(pem)"))
        // The folder too.
        #expect(chown(pem, 0, 0) == 0)
        #expect(chown(dir.path, 65534, 65534) == 0)
        #expect(throws: KeyRingError.wrongOwner(path: dir.path, owner: 65534, expected: geteuid())) { try KeyRing.load(directory: dir) }
    }

    @Test("verification and the JWKS work with every private key file deleted")
    func publicOnly() throws {
        let dir = folder()
        var ring = try KeyRing.load(directory: dir)
        let es = try ring.add(.es256, now: start, activatesAt: start)
        let ed = try ring.add(.ed25519, now: start, activatesAt: start.addingTimeInterval(600))
        let token = try JWSSigner(key: try ring.signingKey(at: start).1, kid: es.kid).sign(type: "at+jwt", payload: .object(["x": .number(1)]))
        for record in [es, ed] { try FileManager.default.removeItem(at: dir.appendingPathComponent("\(record.kid).pem")) }

        let loaded = try KeyRing.load(directory: dir)
        #expect(loaded.records == ring.records)
        #expect(loaded.verificationKeys(at: start).map(\.kid).sorted() == [es.kid, ed.kid].sorted())
        #expect(loaded.jwks(at: start).keys.map(\.kid).sorted() == [es.kid, ed.kid].sorted())
        #expect(loaded.jwks(at: start).keys.map(\.publicKey.raw) == ring.jwks(at: start).keys.map(\.publicKey.raw))
        #expect(try JWSVerifier(keys: loaded.verificationKeys(at: start)).verify(token).kid == es.kid)
        // Only signing needs a private key.
        #expect(throws: KeyRingError.missingPrivateKey(kid: es.kid, path: dir.appendingPathComponent("\(es.kid).pem").path)) {
            try loaded.signingKey(at: start)
        }
    }

    @Test("a manifest written before public keys were stored loads, and is upgraded once")
    func legacyManifest() throws {
        let dir = folder()
        var ring = try KeyRing.load(directory: dir)
        let record = try ring.add(.ed25519, now: start, activatesAt: start)
        let manifest = dir.appendingPathComponent("keyring.json")
        let created = Int(start.timeIntervalSince1970)
        let legacy = #"{"keys":[{"activatesAt":\#(created),"alg":"Ed25519","createdAt":\#(created),"kid":"\#(record.kid)","retiredAt":null}],"version":1}"#
        try FileManager.default.removeItem(at: manifest)
        try Data(legacy.utf8).write(to: manifest)
        try chmod(manifest.path, 0o644)

        let loaded = try KeyRing.load(directory: dir)
        #expect(loaded.jwks(at: start).keys.map(\.kid) == [record.kid])
        let upgraded = try String(contentsOf: manifest, encoding: .utf8)
        #expect(upgraded.contains("\"jwk\""))
        #expect(upgraded.contains("\"version\":2"))
        // From now on the private key is not needed to verify.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("\(record.kid).pem"))
        #expect(try KeyRing.load(directory: dir).jwks(at: start).keys.map(\.kid) == [record.kid])
    }

    @Test("a manifest whose public key does not match its kid is refused")
    func tamperedPublicKey() throws {
        let (dir, record, _) = try ringWithKey()
        let manifest = dir.appendingPathComponent("keyring.json")
        let other = JWK(publicKey: try PrivateKey.generate(.es256).publicKey, kid: record.kid)
        guard case var .object(root) = try JSONValue.parse(Array(try Data(contentsOf: manifest))),
              case var .array(keys) = root["keys"], case var .object(entry) = keys[0]
        else { Issue.record("unexpected manifest"); return }
        entry["jwk"] = other.json
        keys[0] = .object(entry)
        root["keys"] = .array(keys)
        try FileManager.default.removeItem(at: manifest)
        try Data(JSONValue.object(root).serialized()).write(to: manifest)
        try chmod(manifest.path, 0o644)
        #expect(throws: KeyRingError.self) { try KeyRing.load(directory: dir) }
    }

    @Test("a key folder is made only where its parent exists: a mistyped path fails, it does not grow a tree holding a new key")
    func noIntermediateFolders() throws {
        let missing = folder().appendingPathComponent("Sub")
        #expect(throws: KeyRingError.self) { try KeyRing.loadOrCreate(directory: missing, now: Date(), createDevelopmentKey: true) }
        do {
            _ = try KeyRing.loadOrCreate(directory: missing, now: Date(), createDevelopmentKey: true)
        } catch {
            #expect(error.description.contains("folder \(missing.deletingLastPathComponent().path) does not exist"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: missing.deletingLastPathComponent().path))
    }

    @Test("no key is created without the development switch")
    func noSilentKey() throws {
        let dir = folder()
        #expect(throws: KeyRingError.noSigningKey(path: dir.path)) {
            try KeyRing.loadOrCreate(directory: dir, now: start, createDevelopmentKey: false)
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path))
        #expect(!KeyRingError.noSigningKey(path: dir.path).description.contains("paywall "), "command names are the CLI's to add")
        #expect(KeyRingError.noSigningKey(path: dir.path).description.contains(dir.path))

        // A ring whose only key signs later has no signing key now either.
        var ring = try KeyRing.load(directory: dir)
        _ = try ring.add(.es256, now: start, activatesAt: start.addingTimeInterval(600))
        #expect(throws: KeyRingError.noSigningKey(path: dir.path)) {
            try KeyRing.loadOrCreate(directory: dir, now: start, createDevelopmentKey: false)
        }
        #expect(try KeyRing.load(directory: dir).records.count == 1)
        #expect(throws: KeyRingError.noSigningKey(path: dir.path)) { try KeyRing.load(directory: dir).signingKey(at: start) }

        // With the switch, a development key is made.
        let (_, created) = try KeyRing.loadOrCreate(directory: dir, now: start, createDevelopmentKey: true)
        #expect(created != nil)
        #expect(try KeyRing.load(directory: dir).records.count == 2)
    }
}
