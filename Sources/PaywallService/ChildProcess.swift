import Foundation

/// A child process started with `posix_spawn`: never through a shell, every other file of
/// ours closed in the child.
///
/// Why not Foundation's `Process`: on Linux its `run()` lists `/proc/self/fd` and copies
/// each directory entry whole, reading past glibc's buffer; in a process with many open
/// files that crashes now and then (swift-corelibs-foundation pull request 5472, not in
/// Swift 6.3.1). It crashed this test suite, and a server holding many connections would
/// be exposed each time it hands a message to sendmail.
public final class ChildProcess: Sendable {
    /// What a child's standard stream is connected to.
    public enum Stream: Sendable {
        /// A pipe whose other end is ours (``input``, ``output``, ``error``).
        case pipe
        /// `/dev/null`.
        case null
        /// The same as ours.
        case inherit
    }

    /// Why a child could not be started.
    public struct StartFailed: Error, CustomStringConvertible {
        public let executable: String
        public let code: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(code)))" }
    }

    public let pid: pid_t
    /// Our end of the child's standard input, when piped: close it to send end-of-file.
    public let input: FileHandle?
    /// Our ends of its standard output and error, when piped.
    public let output: FileHandle?
    public let error: FileHandle?

    /// Starts `executable` (a path) with `arguments`, `environment` (nil: ours) and, when
    /// given, `directory` as its working directory.
    public init(
        executable: String, arguments: [String] = [], environment: [String: String]? = nil, directory: String? = nil,
        input: Stream = .null, output: Stream = .null, error: Stream = .null
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var ours: [FileHandle?] = []
        var theirs: [Int32] = []
        defer { for fd in theirs { close(fd) } }
        for (target, stream) in [(Int32(0), input), (1, output), (2, error)] {
            switch stream {
            case .pipe:
                var fds: [Int32] = [0, 0]
                // Close-on-exec from the start (not set afterwards: a child another thread
                // spawns meanwhile would get them). dup2 clears it on the child's copy.
                guard Self.closeOnExecPipe(&fds) == 0 else { throw StartFailed(executable: executable, code: errno) }
                let (child, parent) = target == 0 ? (fds[0], fds[1]) : (fds[1], fds[0])
                theirs.append(child)
                posix_spawn_file_actions_adddup2(&actions, child, target)
                ours.append(FileHandle(fileDescriptor: parent, closeOnDealloc: true))
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
                ours.append(nil)
            case .inherit:
                ours.append(nil)
            }
        }
        // Not in the Swift overlay of glibc (2.34 and 2.29): looked up by name.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        if let directory {
            guard let addChdir = Self.addChdir else { throw StartFailed(executable: executable, code: ENOSYS) }
            _ = addChdir(&actions, directory)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let variables = environment ?? ProcessInfo.processInfo.environment
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        // The child starts with every signal at its default and none blocked, whatever this
        // process set: the server ignores SIGPIPE (a sendmail pipeline must still die of it).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var child: pid_t = 0
        let code = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw StartFailed(executable: executable, code: code) }
        pid = child
        self.input = ours[0]
        self.output = ours[1]
        self.error = ours[2]
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: AddCloseFrom.self) }
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    /// glibc's `pipe2` (since 2.9; hidden from Swift behind `_GNU_SOURCE`).
    private static let pipe2: Pipe2? = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }

    /// A pipe whose ends are close-on-exec from the start; without `pipe2`, set just after.
    private static func closeOnExecPipe(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
        if let pipe2 { return pipe2(fds, O_CLOEXEC) }
        guard pipe(fds) == 0 else { return -1 }
        for index in 0..<2 { _ = fcntl(fds[index], F_SETFD, FD_CLOEXEC) }
        return 0
    }
    private static let addChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }

    /// How a child ended.
    public enum Exit: Equatable, Sendable {
        case status(Int32)
        case signal(Int32)

        /// The exit status, or the signal's number (as Foundation's `Process` reports it).
        public var code: Int32 {
            switch self {
            case let .status(code), let .signal(code): code
            }
        }
    }

    /// Waits for the child to end. A child that cannot be waited for (reaped elsewhere)
    /// reports status -1, never success.
    public func wait() -> Exit {
        var status: Int32 = 0
        while true {
            if waitpid(pid, &status, 0) == pid { return Self.exit(status) }
            if errno != EINTR { return .status(-1) }
        }
    }

    /// Waits at most `timeout` seconds; nil when it still runs.
    public func wait(timeout: TimeInterval) -> Exit? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { return Self.exit(status) }
            if done == -1, errno != EINTR { return .status(-1) }
            if Date() >= deadline { return nil }
            usleep(5_000)
        }
    }

    /// Sends `signal` to the child.
    public func send(_ signal: Int32) {
        kill(pid, signal)
    }

    static func exit(_ status: Int32) -> Exit {
        let signal = status & 0x7F
        return signal == 0 ? .status((status >> 8) & 0xFF) : .signal(signal)
    }
}
