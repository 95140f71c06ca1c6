import Foundation
import PaywallService

/// Another process (python3's sqlite3) holding a database's write lock until released:
/// how tests see what a locked database does to us.
public final class LockHolder: @unchecked Sendable {
    struct DidNotStart: Error {}

    let child: ChildProcess
    private var released = false

    public init(path: String) throws {
        child = try ChildProcess(executable: "/usr/bin/env", arguments: ["python3", "-c", """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN EXCLUSIVE')
            print('locked', flush=True)
            sys.stdin.read()
            """, path], input: .pipe, output: .pipe)
        let line = child.output?.availableData ?? Data()
        guard String(decoding: line, as: UTF8.self).contains("locked") else {
            release()
            throw DidNotStart()
        }
    }

    /// Ends the other process (and its lock).
    public func release() {
        guard !released else { return }
        released = true
        try? child.input?.close()
        _ = child.wait()
    }

    deinit { release() }
}
