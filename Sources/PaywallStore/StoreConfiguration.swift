import PaywallCore

/// How a ``Store`` opens its database.
public struct StoreConfiguration: Sendable {
    /// How long a write waits for another process's lock before failing (default 5 s).
    public var busyTimeout: Double = 5
    /// Open without writing: no migrations, every write fails with ``StoreError/readOnly(path:)``.
    public var readOnly = false
    /// Whether each commit waits for the disk (`synchronous = FULL`, the default) or
    /// only for the OS (`NORMAL`: survives a crash of the process, not of the machine).
    public var durableCommits = true
    /// Number of concurrent reader connections (default 8).
    public var maximumReaderCount = 8
    /// The source of "now".
    public var clock: any PaywallClock = SystemClock()

    public init() {}
}
