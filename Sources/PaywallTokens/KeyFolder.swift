import Foundation

/// An open, checked key folder. Files in it are opened relative to the folder's descriptor
/// with `O_NOFOLLOW` and checked on the open descriptor (`fstat`), so nothing can be
/// swapped or linked in between the check and the read.
///
/// The folder must be a real folder (not a symbolic link), owned by the effective user
/// (or root) and writable by nobody else. Private key files must be regular files owned by
/// the effective user with no group or other permission bits; the manifest must be a
/// regular file owned by the effective user (or root) that nobody else can write.
final class KeyFolder {
    let url: URL
    let descriptor: Int32
    /// The folder's permission bits when it was opened.
    let mode: mode_t

    private init(url: URL, descriptor: Int32, mode: mode_t) {
        self.url = url
        self.descriptor = descriptor
        self.mode = mode
    }

    deinit { close(descriptor) }

    /// Opens and checks the folder at `url`; nil when it does not exist.
    static func opening(_ url: URL) throws(KeyRingError) -> KeyFolder? {
        let path = url.path
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            if code == ENOTDIR || code == ELOOP {
                var info = stat()
                if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK { throw .symbolicLink(path: path) }
                throw .cannotAccess(path: path, reason: "not a folder")
            }
            throw .cannotAccess(path: path, reason: String(cString: strerror(code)))
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw .cannotAccess(path: path, reason: reason)
        }
        let folder = KeyFolder(url: url, descriptor: descriptor, mode: info.st_mode & 0o7777)
        let euid = geteuid()
        guard info.st_uid == euid || info.st_uid == 0 else {
            throw .wrongOwner(path: path, owner: info.st_uid, expected: euid)
        }
        guard folder.mode & 0o022 == 0 else { throw .writableByOthers(path: path, mode: Self.octal(folder.mode)) }
        return folder
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Reads `name` (a private key when `secret`, else the manifest); nil when absent.
    func read(_ name: String, secret: Bool, limit: Int) throws(KeyRingError) -> [UInt8]? {
        let path = path(name)
        // O_NONBLOCK: a FIFO planted under the name cannot hang the open; fstat refuses it.
        let descriptor = openat(self.descriptor, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            if code == ELOOP { throw .symbolicLink(path: path) }
            throw .cannotAccess(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .cannotAccess(path: path, reason: String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(path: path) }
        let euid = geteuid()
        let mode = info.st_mode & 0o7777
        if secret {
            guard info.st_uid == euid else { throw .wrongOwner(path: path, owner: info.st_uid, expected: euid) }
            guard mode & 0o077 == 0 else { throw .insecurePermissions(path: path, mode: Self.octal(mode)) }
        } else {
            guard info.st_uid == euid || info.st_uid == 0 else { throw .wrongOwner(path: path, owner: info.st_uid, expected: euid) }
            guard mode & 0o022 == 0 else { throw .writableByOthers(path: path, mode: Self.octal(mode)) }
        }
        guard info.st_size <= limit else { throw .corrupt(path: path, reason: "larger than \(limit) bytes") }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                Foundation.read(descriptor, buffer.baseAddress.map { $0 + filled }, buffer.count - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .cannotAccess(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            filled += count
        }
        guard filled <= limit else { throw .corrupt(path: path, reason: "larger than \(limit) bytes") }
        return Array(bytes[..<filled])
    }

    /// Opens (creating) the lock file, without following a link.
    func openLock() throws(KeyRingError) -> Int32 {
        let descriptor = openat(self.descriptor, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let code = errno
            if code == ELOOP { throw .symbolicLink(path: path(".lock")) }
            throw .cannotAccess(path: path(".lock"), reason: String(cString: strerror(code)))
        }
        return descriptor
    }

    /// Replaces `name` atomically with `bytes`, mode 0644: a temporary file (created
    /// exclusively, never through a link) written, synced and renamed over the old one.
    func replace(_ name: String, with bytes: [UInt8]) throws(KeyRingError) {
        let path = path(name)
        let temporary = ".\(name).\(UUID().uuidString).tmp"
        let descriptor = openat(self.descriptor, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .cannotAccess(path: path, reason: String(cString: strerror(errno))) }
        var failure: String?
        var written = 0
        while written < bytes.count, failure == nil {
            let count = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress.map { $0 + written }, buffer.count - written)
            }
            if count < 0 {
                if errno != EINTR { failure = String(cString: strerror(errno)) }
            } else {
                written += count
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if failure == nil, renameat(self.descriptor, temporary, self.descriptor, name) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlinkat(self.descriptor, temporary, 0)
            throw .cannotAccess(path: path, reason: failure)
        }
        fsync(self.descriptor)
    }

    /// Deletes `name` from the folder (never following a link: the link itself would go)
    /// and syncs the folder, so that the deletion outlives a power cut. Nil when deleted or
    /// absent; otherwise why not.
    func remove(_ name: String) -> String? {
        guard unlinkat(descriptor, name, 0) == 0 else {
            let code = errno
            return code == ENOENT ? nil : String(cString: strerror(code))
        }
        guard fsync(descriptor) == 0 else { return "deleted, but the folder could not be synced: \(String(cString: strerror(errno)))" }
        return nil
    }

    static func octal(_ mode: mode_t) -> String { String(mode, radix: 8) }
}
