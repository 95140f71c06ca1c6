import Foundation
import Logging
@testable import PaywallHTTP
import Testing

@Suite("Text log lines")
struct TextLogHandlerTests {
    func event(_ message: Logger.Message, level: Logger.Level = .info, metadata: Logger.Metadata? = nil) -> LogEvent {
        LogEvent(level: level, message: message, metadata: metadata, source: "PaywallHTTP", file: #fileID, function: #function, line: #line)
    }

    @Test("a line carries the time, level, label, the logger's latest metadata sorted by key, the source and the message")
    func layout() {
        var handler = TextLogHandler(label: "paywall")
        handler[metadataKey: "request"] = "r-1"
        handler[metadataKey: "request"] = "r-2"  // set on every request: the latest is written
        handler[metadataKey: "route"] = "/v1/access"
        let line = handler.line(event("checked"), at: Date(timeIntervalSince1970: 1_795_000_000))
        #expect(line == "2026-11-18T11:06:40Z info paywall: request=r-2 route=/v1/access [PaywallHTTP] checked\n")
    }

    @Test("an event's own metadata wins over the logger's; no metadata, no gap")
    func merging() {
        var handler = TextLogHandler(label: "paywall")
        handler[metadataKey: "request"] = "r-1"
        let at = Date(timeIntervalSince1970: 0)
        #expect(handler.line(event("x", level: .error, metadata: ["request": "r-9", "code": "bad"]), at: at)
            == "1970-01-01T00:00:00Z error paywall: code=bad request=r-9 [PaywallHTTP] x\n")
        #expect(TextLogHandler(label: "paywall").line(event("y"), at: at) == "1970-01-01T00:00:00Z info paywall: [PaywallHTTP] y\n")
        handler[metadataKey: "request"] = nil
        #expect(handler.line(event("z"), at: at) == "1970-01-01T00:00:00Z info paywall: [PaywallHTTP] z\n")
    }

    @Test("an event's error is written with it")
    func error() {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk full" } }
        let event = LogEvent(level: .error, message: "cannot commit", error: Broken(), metadata: nil, source: "PaywallStore",
                             file: #fileID, function: #function, line: #line)
        #expect(TextLogHandler(label: "paywall").line(event, at: Date(timeIntervalSince1970: 0))
            == "1970-01-01T00:00:00Z error paywall: error=disk full [PaywallStore] cannot commit\n")
    }
}
