import Foundation
import PaywallCore

/// How a ``Store`` opens its database.
public struct StoreConfiguration: Sendable {
    /// How long a write waits for another process's lock before failing (default 5 s).
    public var busyTimeout: Double = 5
    /// Open without writing: no migrations, every write fails with ``StoreError/readOnly(path:)``.
    public var readOnly = false
    /// Create (and migrate) a SQLite file that does not exist yet. Off, a missing file is
    /// refused like a read-only open's (``StoreError/noSuchFile(path:)``): a server or a backup
    /// pointed at a mistyped path must fail, not start on an empty database.
    public var createIfMissing = true
    /// Apply pending migrations on open (default). Off, a writable store is opened as its
    /// schema stands (a newer one is still refused): `db backup` copies the file as the
    /// running servers have it, and does not migrate it under them.
    public var migrate = true
    /// Whether each commit waits for the disk (`synchronous = FULL`, the default) or
    /// only for the OS (`NORMAL`: survives a crash of the process, not of the machine).
    public var durableCommits = true
    /// Number of concurrent reader connections (default 8).
    public var maximumReaderCount = 8
    /// SQLite: how many metered readers' counted articles the writer keeps in memory
    /// (``SQLiteMeterState``; the least recently metered go first). Default 50,000: about
    /// 1.5 KB each for a reader with ten counted articles, so some 75 MB at most. 0 keeps
    /// none and counts each read with queries, as PostgreSQL does.
    public var meterStateCapacity = 50_000
    /// The longest a session family lives, from its first sign-in (default 90 days):
    /// rotation never extends a session past it, and a refresh after it is rejected.
    public var sessionFamilyLifetime: TimeInterval = 90 * 86_400
    /// How long after a refresh token was rotated a second submission of it (a concurrent
    /// refresh, RFC 9700 §4.14.2) gets the same successor instead of revoking the family,
    /// while that successor is still current (default 10 s; 0 turns it off).
    public var refreshGraceWindow: TimeInterval = 10
    /// How many transactions of metered reads a PostgreSQL store may have in flight at once
    /// (default 1; SQLite has one writer and always keeps one). A second batch starts only
    /// while the first is still running: it overlaps one batch's round trips and commit
    /// with the next one's work, which pays when PostgreSQL has cores to spare (a host of
    /// its own, or far away) and costs when the server and the database share saturated
    /// cores (BENCHMARKS.md: 12–37% more reads through the store alone, 0–21% fewer checks
    /// through HTTP on this two-core machine). Still exact: each batch takes its readers'
    /// meter locks in one order before counting.
    public var meterCommitters = 1
    /// How often a PostgreSQL store's listening connection is pinged (``ChannelListener``);
    /// tests shorten it.
    var listenerHeartbeat: TimeInterval = 5
    /// The source of "now".
    public var clock: any PaywallClock = SystemClock()

    public init() {}
}
