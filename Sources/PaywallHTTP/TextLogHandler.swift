import Foundation
import Logging

/// One line per event on standard error, for people: `time level label: key=value … [source]
/// message` (swift-log's stream handler's layout).
///
/// Why not swift-log's `StreamLogHandler`: its metadata setter formats all of a logger's
/// metadata again on every change, and every request sets its id (Hummingbird's and ours)
/// whether or not anything is logged: 6–7% of a member check's CPU in a profile
/// (BENCHMARKS.md, HTTP API). Here metadata is formatted only when a line is written.
public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    private static let lock = NSLock()

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text = line(event, at: Date())
        Self.lock.lock()
        defer { Self.lock.unlock() }
        // Never `write(_:)`: on Linux it traps on an error (a closed pipe, a full disk).
        try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
    }

    /// The line for `event` (the event's metadata over the logger's, and its error if it
    /// carries one), newline included. Times in UTC.
    func line(_ event: LogEvent, at date: Date) -> String {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error { merged["error"] = .string(String(describing: error)) }
        let pairs = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let time = date.formatted(.iso8601)
        return "\(time) \(event.level)\(label.isEmpty ? "" : " ")\(label):\(pairs.isEmpty ? "" : " " + pairs) [\(event.source)] \(event.message)\n"
    }
}
