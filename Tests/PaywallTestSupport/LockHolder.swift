import Foundation

/// Another process (python3's sqlite3) holding a database's write lock until released:
/// how tests see what a locked database does to us.
public final class LockHolder: @unchecked Sendable {
    struct DidNotStart: Error {}

    let process = Process()
    let input = Pipe()

    public init(path: String) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN EXCLUSIVE')
            print('locked', flush=True)
            sys.stdin.read()
            """, path]
        process.standardInput = input
        process.standardOutput = output
        try launch(process)
        let line = output.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).contains("locked") else { throw DidNotStart() }
    }

    /// Ends the other process (and its lock).
    public func release() {
        guard process.isRunning else { return }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
