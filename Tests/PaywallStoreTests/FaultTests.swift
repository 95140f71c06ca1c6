import Foundation
import PaywallTestSupport
import GRDB
import Testing
import PaywallCore
@testable import PaywallStore

@Suite("Bad files and faults")
struct FaultTests {
    func tempFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-fault-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test("a file that is not SQLite is named in a clear error and left as it was")
    func notADatabase() throws {
        let path = try tempFolder().appendingPathComponent("notes.sqlite").path
        let content = Data(String(repeating: "these are my notes, not a database\n", count: 200).utf8)
        try content.write(to: URL(fileURLWithPath: path))
        #expect(throws: StoreError.notADatabase(path: path)) { try Store(path: path) }
        #expect(StoreError.notADatabase(path: path).description.contains(path))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == content)
    }

    @Test("a corrupt file gives a clear error naming it, never a crash")
    func corrupt() throws {
        let path = try tempFolder().appendingPathComponent("db.sqlite").path
        let store = try Store(path: path)
        _ = try store.addTitle(id: TitleID(rawValue: "euronews"), name: "Euronews", publisher: "E", actor: .system)
        try store.close()
        // Keep the 100-byte header, scribble over the rest of page 1 (the schema).
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: 100)
        handle.write(Data(repeating: 0xA5, count: 3_000))
        try handle.close()
        do throws(StoreError) {
            let reopened = try Store(path: path)
            let health = try reopened.health()
            #expect(!health.isHealthy)
        } catch {
            let expected: Bool
            switch error {
            case .corrupt, .notADatabase: expected = true
            default: expected = false
            }
            #expect(expected, "unexpected \(error)")
            #expect(error.description.contains(path))
        }
    }

    @Test("writes through a read-only store fail with a clear error and change nothing")
    func readOnly() throws {
        let path = try tempFolder().appendingPathComponent("db.sqlite").path
        try Store(path: path).close()
        var configuration = StoreConfiguration()
        configuration.readOnly = true
        let store = try Store(path: path, configuration: configuration)
        #expect(throws: StoreError.readOnly(path: path)) {
            try store.addTitle(id: TitleID(rawValue: "x"), name: "X", publisher: "P", actor: .system)
        }
        #expect(try store.titles().isEmpty)
        #expect(throws: StoreError.noSuchFile(path: path + "-missing")) {
            try Store(path: path + "-missing", configuration: configuration)
        }
    }

    @Test("a file without write permission (checked when not running as root)")
    func permissions() throws {
        guard getuid() != 0 else { return }  // root ignores file modes
        let folder = try tempFolder()
        let path = folder.appendingPathComponent("db.sqlite").path
        try Store(path: path).close()
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: folder.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path) }
        #expect(throws: StoreError.self) { try Store(path: path) }
    }

    @Test("a missing folder is a clear error")
    func missingFolder() throws {
        let path = "/nonexistent-\(UUID().uuidString)/db.sqlite"
        #expect(throws: StoreError.self) { try Store(path: path) }
        do { _ = try Store(path: path) } catch { #expect(error.description.contains(path)) }
    }

    @Test("a database locked by another process past the timeout: a clear error, nothing written")
    func lockedByAnotherProcess() throws {
        let path = try tempFolder().appendingPathComponent("db.sqlite").path
        var configuration = StoreConfiguration()
        configuration.busyTimeout = 0.3
        let store = try Store(path: path, configuration: configuration)
        let locker = try LockHolder(path: path)
        defer { locker.release() }
        #expect(throws: StoreError.locked(path: path, timeoutSeconds: 0.3)) {
            try store.addTitle(id: TitleID(rawValue: "x"), name: "X", publisher: "P", actor: .system)
        }
        // Readers are not blocked by the other process's write lock (WAL).
        #expect(try store.titles().isEmpty)
        locker.release()
        _ = try store.addTitle(id: TitleID(rawValue: "x"), name: "X", publisher: "P", actor: .system)
        #expect(try store.titles().count == 1)
    }
}
