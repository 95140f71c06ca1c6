import Foundation
@testable import PaywallService
import PaywallTestSupport
import Testing

@Suite("Child processes")
struct ChildProcessTests {
    @Test("input in, output and error out, the exit status, its own folder and environment")
    func roundTrip() throws {
        let folder = try TestFolder("paywall-child")
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "pwd; echo \"$GREETING\"; cat; echo oops >&2; exit 3"],
            environment: ["GREETING": "hello", "PATH": "/usr/bin:/bin"], directory: folder.url.path,
            input: .pipe, output: .pipe, error: .pipe)
        try child.input?.write(contentsOf: Data("from stdin\n".utf8))
        try child.input?.close()
        let out = String(decoding: child.output?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        let err = String(decoding: child.error?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        #expect(child.wait() == .status(3))
        let resolved = folder.url.resolvingSymlinksInPath().path
        #expect(out == "\(resolved)\nhello\nfrom stdin\n" || out == "\(folder.url.path)\nhello\nfrom stdin\n", "\(out)")
        #expect(err == "oops\n")
    }

    @Test("a child killed by a signal, one that outlives its timeout, a missing program")
    func endings() throws {
        let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        #expect(sleeper.wait(timeout: 0.2) == nil, "still running")
        sleeper.send(SIGKILL)
        #expect(sleeper.wait() == .signal(SIGKILL))
        #expect(ChildProcess.Exit.signal(SIGKILL).code == SIGKILL)
        #expect(throws: ChildProcess.StartFailed.self) { try ChildProcess(executable: "/no/such/program") }
    }

    @Test("the child starts with signals at their defaults and none blocked, whatever ours are")
    func signalDefaults() throws {
        // The server ignores SIGPIPE; a child (a sendmail pipeline) must not inherit that.
        let before = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, before) }
        let piped = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "kill -PIPE $$; exit 0"])
        #expect(piped.wait() == .signal(SIGPIPE))
        // A signal blocked on the spawning thread is not blocked in the child.
        var blocked = sigset_t(), previous = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGUSR1)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let usr1 = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "kill -USR1 $$; exit 0"])
        #expect(usr1.wait() == .signal(SIGUSR1))
    }

    @Test("a child reaped elsewhere is never reported as a success")
    func reapedElsewhere() throws {
        let child = try ChildProcess(executable: "/bin/true")
        var status: Int32 = 0
        #expect(waitpid(child.pid, &status, 0) == child.pid)
        #expect(child.wait() == .status(-1))
        #expect(child.wait(timeout: 1) == .status(-1))
    }

    @Test("none of our other open files reaches the child")
    func closesOurFiles() throws {
        let folder = try TestFolder("paywall-child-fds")
        let held = try FileHandle(forWritingTo: { let url = folder.url.appendingPathComponent("held"); FileManager.default.createFile(atPath: url.path, contents: nil); return url }())
        defer { try? held.close() }
        // Without close-on-exec: what Foundation's `Process` closed by listing /proc/self/fd.
        _ = fcntl(held.fileDescriptor, F_SETFD, 0)
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "ls /proc/self/fd"], output: .pipe)
        let listed = String(decoding: child.output?.readDataToEndOfFile() ?? Data(), as: UTF8.self).split(separator: "\n").compactMap { Int($0) }
        #expect(child.wait() == .status(0))
        #expect(!listed.contains(Int(held.fileDescriptor)), "fd \(held.fileDescriptor) leaked into the child: \(listed)")
    }
}
