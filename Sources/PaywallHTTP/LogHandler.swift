import Foundation
import Logging
import PaywallCore

/// One line per event on standard error, in either format `paywall serve --log-format`
/// names:
/// - text, for people: `time level label: key=value … [source] message` (swift-log's
///   stream handler's layout);
/// - JSON, for log collectors: one object per line, `{"at", "level", "label", "message",
///   ...metadata}`.
///
/// Why not swift-log's `StreamLogHandler`: its metadata setter formats all of a logger's
/// metadata again on every change, and every request sets its id (Hummingbird's and ours)
/// whether or not anything is logged: 6–7% of a member check's CPU in a profile
/// (BENCHMARKS.md, HTTP API). Here metadata is formatted only when a line is written.
public struct StandardErrorLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let format: ServerSettings.LogFormat
    private static let lock = NSLock()

    public init(label: String, format: ServerSettings.LogFormat) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard let text = line(event, at: Date()) else { return }
        Self.lock.lock()
        defer { Self.lock.unlock() }
        // Never `write(_:)`: on Linux it traps on an error (a closed pipe, a full disk).
        try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
    }

    /// The line for `event` (the event's metadata over the logger's, and its error if it
    /// carries one), newline included; nil when it cannot be encoded. Times in UTC.
    func line(_ event: LogEvent, at date: Date) -> String? {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error { merged["error"] = .string(String(describing: error)) }
        let time = date.formatted(.iso8601)
        switch format {
        case .text:
            // Values and the message are escaped (``PrintableText/oneLine(_:)``): a value
            // taken from a request must not start a line of its own, or send a terminal
            // escape to whoever reads the log. The JSON format escapes by its nature.
            let pairs = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(PrintableText.oneLine($0.value.description))" }.joined(separator: " ")
            let message = PrintableText.oneLine(event.message.description)
            return "\(time) \(event.level)\(label.isEmpty ? "" : " ")\(label):\(pairs.isEmpty ? "" : " " + pairs) [\(event.source)] \(message)\n"
        case .json:
            var object = merged.mapValues(Self.plain)
            // Set last: metadata can never overwrite what the line is.
            object["at"] = time
            object["level"] = event.level.rawValue
            object["label"] = label
            object["message"] = event.message.description
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return nil }
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }

    static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case let .string(text): text
        case let .stringConvertible(value): value.description
        case let .array(values): values.map(plain)
        case let .dictionary(values): values.mapValues(plain)
        }
    }
}
