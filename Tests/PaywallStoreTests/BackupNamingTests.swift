import Foundation
import Testing
@testable import PaywallStore

/// How a finished backup gets its name (`SQLiteBackend.name(_:as:link:)`): a hard link
/// that never replaces a file, or, on a file system without hard links, a rename to a
/// name checked free.
@Suite("Backup naming")
struct BackupNamingTests {
    func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("backup-name-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    /// A `link` that fails as a file system without hard links does.
    static func refusing(_ code: Int32) -> (String, String) -> Int32 {
        { _, _ in
            errno = code
            return -1
        }
    }

    @Test("linked where hard links work; the name never replaced")
    func linked() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("backup".utf8).write(to: URL(fileURLWithPath: dir + "/b.partial"))
        try SQLiteBackend.name(dir + "/b.partial", as: dir + "/b")
        #expect(FileManager.default.contents(atPath: dir + "/b") == Data("backup".utf8))
        try Data("other".utf8).write(to: URL(fileURLWithPath: dir + "/c"))
        #expect(throws: StoreError.destinationExists(path: dir + "/c")) { try SQLiteBackend.name(dir + "/b.partial", as: dir + "/c") }
        #expect(FileManager.default.contents(atPath: dir + "/c") == Data("other".utf8))
    }

    @Test("no hard links (vfat, SMB): renamed to a free name; a taken name refused, the file there kept", arguments: [EPERM, EOPNOTSUPP])
    func withoutHardLinks(code: Int32) throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("backup".utf8).write(to: URL(fileURLWithPath: dir + "/b.partial"))
        try SQLiteBackend.name(dir + "/b.partial", as: dir + "/b", link: Self.refusing(code))
        #expect(FileManager.default.contents(atPath: dir + "/b") == Data("backup".utf8))
        #expect(!FileManager.default.fileExists(atPath: dir + "/b.partial"))

        try Data("second".utf8).write(to: URL(fileURLWithPath: dir + "/d.partial"))
        #expect(throws: StoreError.destinationExists(path: dir + "/b")) {
            try SQLiteBackend.name(dir + "/d.partial", as: dir + "/b", link: Self.refusing(code))
        }
        #expect(FileManager.default.contents(atPath: dir + "/b") == Data("backup".utf8))
    }

    @Test("another failure of the link is reported as it is, nothing renamed")
    func otherFailure() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("backup".utf8).write(to: URL(fileURLWithPath: dir + "/b.partial"))
        #expect(throws: StoreError.cannotOpen(path: dir + "/b", detail: String(cString: strerror(EACCES)))) {
            try SQLiteBackend.name(dir + "/b.partial", as: dir + "/b", link: Self.refusing(EACCES))
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/b") && FileManager.default.fileExists(atPath: dir + "/b.partial"))
    }
}
