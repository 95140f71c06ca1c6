import Foundation

/// Parsing and printing of the durations and instants that admins type.
public enum TimeText {
    /// Parses `90s`, `15m`, `12h`, `14d`, `2w` (a positive whole number and a unit).
    /// The longest duration accepted anywhere (100 years).
    public static let maximumDuration: TimeInterval = 100 * 366 * 86_400

    public static func duration(_ text: String) throws(DomainError) -> TimeInterval {
        let value = text.trimmingWhitespace().lowercased()
        guard let unit = value.last, let number = Int(value.dropLast()), number > 0,
              value.dropLast().allSatisfy(\.isNumber)
        else { throw .invalidDuration(text) }
        let seconds: Int
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3_600
        case "d": seconds = 86_400
        case "w": seconds = 7 * 86_400
        default: throw .invalidDuration(text)
        }
        let (total, overflow) = number.multipliedReportingOverflow(by: seconds)
        guard !overflow, TimeInterval(total) <= maximumDuration else { throw .invalidDuration(text) }
        return TimeInterval(total)
    }

    /// A duration as ``duration(_:)`` reads it, in the largest unit that divides it
    /// (`43200` → `12h`, `90` → `90s`); a value no whole number of seconds (or not finite)
    /// as seconds with a fraction.
    public static func format(duration seconds: TimeInterval) -> String {
        guard seconds.isFinite, seconds.rounded() == seconds, abs(seconds) < 1e15 else { return "\(seconds)s" }
        let whole = Int(seconds)
        for (unit, size) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60)] where whole != 0 && whole % size == 0 {
            return "\(whole / size)\(unit)"
        }
        return "\(whole)s"
    }

    /// Parses an ISO 8601 instant (`2026-12-31T23:59:59Z`, with fractional seconds or an
    /// offset) or a date (`2026-12-31`, meaning its start in UTC).
    public static func instant(_ text: String) throws(DomainError) -> Date {
        let value = text.trimmingWhitespace()
        if value.count == 10 {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate, .withDashSeparatorInDate]
            formatter.timeZone = TimeZone(identifier: "UTC")
            if let date = formatter.date(from: value), formatter.string(from: date) == value { return date }
            throw .invalidDate(text)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: value) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: value) { return date }
        throw .invalidDate(text)
    }

    /// Formats an instant as ISO 8601 in UTC, e.g. `2026-12-31T23:59:59Z`.
    public static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
