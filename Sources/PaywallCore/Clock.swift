import Foundation
#if canImport(Glibc)
import Glibc  // stat(2), for FileClock
#endif

/// The source of "now" for everything that depends on time (trial expiry, meter windows,
/// grace periods, token lifetimes). Inject a ``ManualClock`` in tests to move time.
public protocol PaywallClock: Sendable {
    /// The current instant.
    func now() -> Date
}

/// The wall clock.
public struct SystemClock: PaywallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that only moves when told to; safe to share between tasks.
public final class ManualClock: PaywallClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    /// Creates a clock stopped at `start`.
    public init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) {  // 2026-01-01T00:00:00Z
        current = start
    }

    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Moves the clock forward (or backward, with a negative interval).
    public func advance(by interval: TimeInterval) {
        lock.lock()
        current = current.addingTimeInterval(interval)
        lock.unlock()
    }

    /// Sets the clock to an instant.
    public func set(_ date: Date) {
        lock.lock()
        current = date
        lock.unlock()
    }
}

/// A clock whose instant is written in a file: how an end-to-end test moves the time of a
/// real server process (and of the CLI it runs beside it) without touching the machine's
/// clock. Only `PAYWALL_TEST_CLOCK_FILE` with `PAYWALL_TESTING=1` makes one.
///
/// The file holds an ISO 8601 instant (`2026-03-02T09:00:00Z`) or seconds since 1970
/// (`1772442000`). Every `now()` costs one `stat`: the file is read again only when its
/// inode, size or modification time changed. Writers should replace it atomically (write
/// a temporary file, then rename): a new inode is a change even when two writes land in
/// the same tick of the file system's coarse timestamps. A file that goes missing or holds
/// something unparseable keeps the last instant read (a torn write is read again at the
/// next call, since only a good read is remembered).
public final class FileClock: PaywallClock, @unchecked Sendable {
    /// Why the file cannot be used as a clock.
    public struct Unusable: Error, CustomStringConvertible {
        public var description: String
    }

    /// What identifies one version of the file.
    private struct Stamp: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int
    }

    public let path: String
    private let lock = NSLock()
    private var stamp: Stamp?
    private var current: Date

    /// Reads the file once; it must exist and hold an instant.
    public init(path: String) throws(Unusable) {
        self.path = path
        guard let stamp = Self.stamp(path) else { throw Unusable(description: "no such file") }
        current = try Self.read(path)
        self.stamp = stamp
    }

    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        guard let latest = Self.stamp(path), latest != stamp else { return current }
        if let date = try? Self.read(path) {
            current = date
            stamp = latest
        }
        return current
    }

    /// Parses what a clock file holds: seconds since 1970 (a decimal number) or an ISO 8601
    /// instant.
    public static func instant(_ text: String) throws(Unusable) -> Date {
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let seconds = Double(value), seconds.isFinite, value.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" }) {
            return Date(timeIntervalSince1970: seconds)
        }
        guard let date = try? TimeText.instant(value) else {
            throw Unusable(description: "'\(value.prefix(64))' is neither an ISO 8601 instant nor seconds since 1970")
        }
        return date
    }

    private static func read(_ path: String) throws(Unusable) -> Date {
        // A clock file is a line; anything longer is not one (and is not read whole).
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Unusable(description: "it cannot be read") }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 256) else { throw Unusable(description: "it cannot be read") }
        return try instant(String(decoding: data, as: UTF8.self))
    }

    private static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                     seconds: Int(info.st_mtim.tv_sec), nanoseconds: Int(info.st_mtim.tv_nsec))
    }
}
