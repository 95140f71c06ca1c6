import Foundation
import Testing
import PaywallCore
import PaywallCrypto
@testable import PaywallTokens

@Suite("Key ring in Keys/")
struct KeyRingTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-keys-\(UUID().uuidString)")
        return url
    }

    func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test("a development key is created on first use, private key mode 0600, and loads back")
    func firstUse() throws {
        let dir = try folder()
        let (ring, created) = try KeyRing.loadOrCreate(directory: dir, now: start, createDevelopmentKey: true)
        let record = try #require(created)
        #expect(record.algorithm == .es256)
        #expect(try mode(dir.appendingPathComponent("\(record.kid).pem").path) == 0o600)
        #expect(try mode(dir.path) == 0o700)
        let pem = try String(contentsOf: dir.appendingPathComponent("\(record.kid).pem"), encoding: .utf8)
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(ring.state(of: record, at: start) == .active)
        let (again, createdAgain) = try KeyRing.loadOrCreate(directory: dir, now: start, createDevelopmentKey: true)
        #expect(createdAgain == nil)
        #expect(again.records == ring.records)
        // The kid is the RFC 7638 thumbprint of the public key.
        #expect(record.kid == JWK.thumbprint(try again.signingKey(at: start).1.publicKey))
    }

    @Test("rotation publishes the new key first; the old one keeps verifying, then may be retired")
    func rotation() throws {
        let dir = try folder()
        var ring = try KeyRing.load(directory: dir)
        let first = try ring.add(.es256, now: start, activatesAt: start)
        let second = try ring.add(.ed25519, now: start, activatesAt: start.addingTimeInterval(600))
        #expect(ring.state(of: second, at: start) == .next)
        #expect(try ring.signingKey(at: start).0.kid == first.kid)
        #expect(ring.jwks(at: start).keys.map(\.kid).sorted() == [first.kid, second.kid].sorted())

        let later = start.addingTimeInterval(600)
        #expect(try ring.signingKey(at: later).0.kid == second.kid)
        #expect(ring.state(of: first, at: later) == .verifyOnly)

        // A token signed by the old key still verifies while it is verify-only.
        let oldSigner = JWSSigner(key: try ring.signingKey(at: start).1, kid: first.kid)
        let token = try oldSigner.sign(type: "at+jwt", payload: .object(["x": .number(1)]))
        _ = try JWSVerifier(keys: ring.verificationKeys(at: later)).verify(token)

        #expect(throws: KeyRingError.retiringSigningKey(second.kid)) { try ring.retire(kid: second.kid, now: later, force: false) }
        #expect(throws: KeyRingError.tooSoonToRetire(kid: first.kid, until: later.addingTimeInterval(KeyRing.verifyOnlyPeriod))) {
            try ring.retire(kid: first.kid, now: later.addingTimeInterval(86_400), force: false)
        }
        let retiredAt = later.addingTimeInterval(KeyRing.verifyOnlyPeriod)
        try ring.retire(kid: first.kid, now: retiredAt, force: false)
        #expect(ring.state(of: try #require(ring.records.first { $0.kid == first.kid }), at: retiredAt) == .retired)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(first.kid).pem").path))
        #expect(throws: TokenError.unknownKey(first.kid)) { try JWSVerifier(keys: ring.verificationKeys(at: retiredAt)).verify(token) }
        #expect(throws: KeyRingError.alreadyRetired(first.kid)) { try ring.retire(kid: first.kid, now: retiredAt, force: false) }
        #expect(throws: KeyRingError.unknownKey("nope")) { try ring.retire(kid: "nope", now: retiredAt, force: false) }

        // Everything survives a reload.
        let reloaded = try KeyRing.load(directory: dir)
        #expect(reloaded.records == ring.records)
        #expect(reloaded.jwks(at: retiredAt).keys.map(\.kid) == [second.kid])
    }

    @Test("a private key file that cannot be deleted is named, and the key is retired all the same")
    func retiredKeyLeftOnDisk() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let directory = try folder()
        var ring = try KeyRing.load(directory: directory)
        let old = try ring.add(.es256, now: start, activatesAt: start)
        _ = try ring.add(.es256, now: start, activatesAt: start)
        let later = start.addingTimeInterval(KeyRing.verifyOnlyPeriod + 60)
        // Something unlink refuses even to root: a folder where the key file was.
        let pem = directory.appendingPathComponent("\(old.kid).pem")
        try FileManager.default.removeItem(at: pem)
        try FileManager.default.createDirectory(at: pem.appendingPathComponent("inside"), withIntermediateDirectories: true)
        let retirement = try ring.retire(kid: old.kid, now: later, force: false)
        #expect(retirement.privateKeyLeft?.path == pem.path)
        #expect(retirement.privateKeyLeft?.reason.isEmpty == false)
        #expect(ring.state(of: retirement.record, at: later) == .retired)
        #expect(try KeyRing.load(directory: directory).state(of: retirement.record, at: later) == .retired)

        // Deleted, or already gone: nothing to say.
        let secondDirectory = try folder()
        var second = try KeyRing.load(directory: secondDirectory)
        let a = try second.add(.es256, now: start, activatesAt: start)
        let b = try second.add(.es256, now: start, activatesAt: start)
        #expect(try second.retire(kid: a.kid, now: later, force: false).privateKeyLeft == nil)
        #expect(!FileManager.default.fileExists(atPath: secondDirectory.appendingPathComponent("\(a.kid).pem").path))
        try FileManager.default.removeItem(at: secondDirectory.appendingPathComponent("\(b.kid).pem"))
        #expect(try second.retire(kid: b.kid, now: later, force: true).privateKeyLeft == nil)
    }

    @Test("a key retired by a host whose clock runs ahead is retired at once here: it verifies nothing more")
    func retiredAheadOfThisClock() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var ring = try KeyRing.load(directory: try folder())
        let old = try ring.add(.es256, now: start, activatesAt: start)
        _ = try ring.add(.es256, now: start, activatesAt: start.addingTimeInterval(60))
        let token = try JWSSigner(key: try ring.signingKey(at: start).1, kid: old.kid).sign(type: "at+jwt", payload: .object(["x": .number(1)]))
        // Retired (forced: a leak) by a host 5 s ahead of the server reading the manifest.
        let now = start.addingTimeInterval(120)
        let retired = try ring.retire(kid: old.kid, now: now.addingTimeInterval(5), force: true).record
        #expect(ring.state(of: retired, at: now) == .retired)
        #expect(!ring.verificationKeys(at: now).map(\.kid).contains(old.kid))
        #expect(throws: TokenError.unknownKey(old.kid)) { try JWSVerifier(keys: ring.verificationKeys(at: now)).verify(token) }
        #expect(!ring.jwks(at: now).keys.map(\.kid).contains(old.kid))
    }

    @Test("a key is superseded when another key signs instead, not when a key added after it activated: an emergency key, then the rotation's key taking over")
    func supersededByActivation() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var ring = try KeyRing.load(directory: try folder())
        let rotated = try ring.add(.es256, now: start, activatesAt: start.addingTimeInterval(600))
        let emergency = try ring.add(.es256, now: start, activatesAt: start)
        #expect(try ring.signingKey(at: start).0.kid == emergency.kid)
        #expect(try ring.signingKey(at: start.addingTimeInterval(600)).0.kid == rotated.kid)
        let tenDays = start.addingTimeInterval(10 * 86_400)
        _ = try ring.add(.es256, now: tenDays.addingTimeInterval(-600), activatesAt: tenDays)
        // `rotated` signed until the third key took over, ten days in: its tokens live on
        // for the verify-only period from then, not from its own activation.
        let now = tenDays.addingTimeInterval(3_600)
        #expect(ring.state(of: rotated, at: now) == .verifyOnly)
        #expect(throws: KeyRingError.tooSoonToRetire(kid: rotated.kid, until: tenDays.addingTimeInterval(KeyRing.verifyOnlyPeriod))) {
            try ring.retire(kid: rotated.kid, now: start.addingTimeInterval(600 + KeyRing.verifyOnlyPeriod + 60), force: false)
        }
        // The emergency key was superseded by the rotated one, at its activation.
        #expect(throws: KeyRingError.tooSoonToRetire(kid: emergency.kid, until: start.addingTimeInterval(600 + KeyRing.verifyOnlyPeriod))) {
            try ring.retire(kid: emergency.kid, now: now, force: false)
        }
    }

    @Test("an existing open key folder (as cloned, with its README) is closed to others when a key is written")
    func existingFolder() throws {
        let dir = try folder()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        var ring = try KeyRing.load(directory: dir)
        _ = try ring.add(.es256, now: start, activatesAt: start)
        #expect(try mode(dir.path) == 0o700)
    }

    @Test("keys generated in the same second: the one added last signs")
    func sameSecond() throws {
        var ring = try KeyRing.load(directory: try folder())
        let first = try ring.add(.es256, now: start, activatesAt: start)
        let second = try ring.add(.ed25519, now: start.addingTimeInterval(0.4), activatesAt: start.addingTimeInterval(0.4))
        #expect(try ring.signingKey(at: start.addingTimeInterval(1)).0.kid == second.kid)
        #expect(ring.state(of: first, at: start.addingTimeInterval(1)) == .verifyOnly)
    }

    @Test("keys added from many threads at once are all kept (the ring is locked while changing)")
    func concurrentChanges() async throws {
        let dir = try folder()
        let start = self.start
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                group.addTask {
                    _ = try KeyRing.modify(directory: dir) { (ring: inout KeyRing) throws(KeyRingError) -> KeyRecord in
                        try ring.add(index.isMultiple(of: 2) ? .es256 : .ed25519, now: start, activatesAt: start)
                    }
                }
            }
            try await group.waitForAll()
        }
        let ring = try KeyRing.load(directory: dir)
        #expect(ring.records.count == 8)
        #expect(ring.verificationKeys(at: start).count == 8)
    }

    @Test("a private key readable by others is refused with the fix")
    func permissions() throws {
        let dir = try folder()
        var ring = try KeyRing.load(directory: dir)
        let record = try ring.add(.es256, now: start, activatesAt: start)
        let pem = dir.appendingPathComponent("\(record.kid).pem").path
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: pem)
        // Loading for verification does not read it; signing does, and refuses it.
        let loaded = try KeyRing.load(directory: dir)
        #expect(throws: KeyRingError.insecurePermissions(path: pem, mode: "644")) { try loaded.signingKey(at: start) }
        #expect(KeyRingError.insecurePermissions(path: pem, mode: "644").description.contains("chmod 600 \(pem)"))
    }

    @Test("a missing, swapped or corrupt file is a clear error")
    func damage() throws {
        let dir = try folder()
        var ring = try KeyRing.load(directory: dir)
        let a = try ring.add(.es256, now: start, activatesAt: start)
        let pemA = dir.appendingPathComponent("\(a.kid).pem")
        let saved = try Data(contentsOf: pemA)

        try FileManager.default.removeItem(at: pemA)
        #expect(throws: KeyRingError.missingPrivateKey(kid: a.kid, path: pemA.path)) { try KeyRing.load(directory: dir).signingKey(at: start) }

        // Another key's PEM under this kid: the thumbprint gives it away.
        try KeyRing.writeSecret(try PrivateKey.generate(.es256).pem(), to: pemA)
        #expect(throws: KeyRingError.self) { try KeyRing.load(directory: dir).signingKey(at: start) }
        try FileManager.default.removeItem(at: pemA)
        try KeyRing.writeSecret(String(decoding: saved, as: UTF8.self), to: pemA)
        _ = try KeyRing.load(directory: dir).signingKey(at: start)

        try Data("{\"keys\": [{\"kid\": \"x\"}]}".utf8).write(to: dir.appendingPathComponent("keyring.json"))
        #expect(throws: KeyRingError.self) { try KeyRing.load(directory: dir) }
        try Data("not json".utf8).write(to: dir.appendingPathComponent("keyring.json"))
        #expect(throws: KeyRingError.self) { try KeyRing.load(directory: dir) }
    }

    @Test("JWKS: published JWKs re-import to the same keys; keys for encryption are refused")
    func jwks() throws {
        let dir = try folder()
        var ring = try KeyRing.load(directory: dir)
        _ = try ring.add(.es256, now: start, activatesAt: start)
        _ = try ring.add(.ed25519, now: start, activatesAt: start)
        let published = ring.jwks(at: start)
        let parsed = try JWKS(json: JSONValue.parse(published.json.serialized()))
        #expect(parsed.keys == published.keys)
        for key in published.keys {
            guard case var .object(object) = key.json else { continue }
            object["use"] = .string("enc")
            #expect(throws: TokenError.self) { try JWK(json: .object(object)) }
        }
    }

    @Test("RFC 8037 appendix A.3: the Ed25519 JWK thumbprint")
    func rfc8037Thumbprint() throws {
        let jwk = try JWK(json: .object(["kty": .string("OKP"), "crv": .string("Ed25519"), "x": .string("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")]))
        #expect(JWK.thumbprint(jwk.publicKey) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    }
}
