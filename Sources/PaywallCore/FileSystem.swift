import Foundation

extension FileManager {
    /// Whether `path` names an existing folder (following links, as opening it would).
    public func isFolder(atPath path: String) -> Bool {
        var isFolder: ObjCBool = false
        return fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
    }
}

extension Thread {
    /// Starts `body` on a new thread named `name` as the kernel sees it (`top -H`, `perf`,
    /// `/proc/PID/task/*/comm`). Foundation's `Thread.name` set before `start()` never
    /// reached the kernel on Linux, and a name over 15 bytes is refused there: the
    /// eighteenth session's per-thread figures named the group-commit writer only by its
    /// position among Dispatch's "com.apple.root.default-qos" threads. Elsewhere than
    /// Linux the name is Foundation's only.
    @discardableResult
    public static func startNamed(_ name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) -> Thread {
        var cut = Substring(name)
        while cut.utf8.count > 15 { cut.removeLast() }
        let kernelName = Array(cut.utf8)
        let thread = Thread {
            // `pthread_setname_np` is not in Swift's Glibc module (a GNU extension) and
            // `prctl` is variadic: the kernel takes the name written here as well.
            let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            if descriptor >= 0 {
                _ = kernelName.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                close(descriptor)
            }
            body()
        }
        thread.name = name
        if let stackSize { thread.stackSize = stackSize }
        thread.start()
        return thread
    }
}
