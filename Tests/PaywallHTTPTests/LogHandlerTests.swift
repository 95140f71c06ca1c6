import Foundation
import Logging
import PaywallService
import PaywallWeb
@testable import PaywallHTTP
import Testing

@Suite("Log lines on standard error")
struct LogHandlerTests {
    func event(_ message: Logger.Message, level: Logger.Level = .info, metadata: Logger.Metadata? = nil) -> LogEvent {
        LogEvent(level: level, message: message, metadata: metadata, source: "PaywallHTTP", file: #fileID, function: #function, line: #line)
    }

    @Test("email addresses in a refusal's reason are masked; other text is kept", arguments: [
        ("'ada@example.com' has already had a free trial", "'a***@example.com' has already had a free trial"),
        ("no account 'x.y+tag@mail.example.org' (list accounts)", "no account 'x***@mail.example.org' (list accounts)"),
        ("email 'READER@example.com' is taken; so is bob@example.com", "email 'R***@example.com' is taken; so is b***@example.com"),
        ("no plan 'news' for kid a@b", "no plan 'news' for kid a***@b"),
        ("invalid email address 'averyveryverylongname@exa…': too long", "invalid email address 'a***@exa…': too long"),
        ("an @ alone, @example.com", "an @ alone, @example.com"),
        // A database URL's role is not an address (its password is redacted before logging).
        ("the database postgres://paywall:***@db.internal:5432/paywall is unavailable", "the database postgres://paywall:***@db.internal:5432/paywall is unavailable"),
        ("the database postgres://postgres@127.0.0.1:5432/p is unavailable; ada@example.com", "the database postgres://postgres@127.0.0.1:5432/p is unavailable; a***@example.com"),
        // Past a URL's authority an address is an address.
        ("https://host/x?email=ada@example.com", "https:/***@example.com"),
    ])
    func masksEmails(_ text: String, masked: String) {
        #expect(LogText.maskingEmails(text) == masked)
    }

    @Test("an outage's refusals are logged once a second per code, saying how many were held back")
    func outageThrottle() {
        let throttle = LogThrottle(every: .seconds(1))
        let start = ContinuousClock.now
        #expect(throttle.pass(code: "database_unavailable", at: start) == 0)
        for offset in [100, 400, 900] {
            #expect(throttle.pass(code: "database_unavailable", at: start + .milliseconds(offset)) == nil)
        }
        #expect(throttle.pass(code: "database_locked", at: start + .milliseconds(200)) == 0, "each code apart")
        #expect(throttle.pass(code: "database_unavailable", at: start + .milliseconds(1_100)) == 3)
        #expect(throttle.pass(code: "database_unavailable", at: start + .milliseconds(2_200)) == 0)
    }

    @Test("other refusals: up to so many lines a second per code, then held back and counted")
    func refusalThrottle() {
        let throttle = LogThrottle(every: .seconds(1), lines: 3)
        let start = ContinuousClock.now
        for offset in [0, 10, 20] { #expect(throttle.pass(code: "invalid_json", at: start + .milliseconds(offset)) == 0) }
        for offset in [30, 500, 999] { #expect(throttle.pass(code: "invalid_json", at: start + .milliseconds(offset)) == nil) }
        #expect(throttle.pass(code: "unknown_title", at: start + .milliseconds(40)) == 0, "each code apart")
        // A new window: the first line says how many the last one held back, the rest none.
        #expect(throttle.pass(code: "invalid_json", at: start + .milliseconds(1_000)) == 3)
        #expect(throttle.pass(code: "invalid_json", at: start + .milliseconds(1_001)) == 0)
        #expect(throttle.pass(code: "invalid_json", at: start + .milliseconds(1_002)) == 0)
        #expect(throttle.pass(code: "invalid_json", at: start + .milliseconds(1_003)) == nil)
        #expect(throttle.pass(code: "invalid_json", at: start + .milliseconds(2_500)) == 1)
    }

    @Test("a line carries the time, level, label, the logger's latest metadata sorted by key, the source and the message")
    func layout() {
        var handler = StandardErrorLogHandler(label: "paywall", format: .text)
        handler[metadataKey: "request"] = "r-1"
        handler[metadataKey: "request"] = "r-2"  // set on every request: the latest is written
        handler[metadataKey: "route"] = "/v1/access"
        let line = handler.line(event("checked"), at: Date(timeIntervalSince1970: 1_795_000_000))
        #expect(line == "2026-11-18T11:06:40Z info paywall: request=r-2 route=/v1/access [PaywallHTTP] checked\n")
    }

    @Test("an event's own metadata wins over the logger's; no metadata, no gap")
    func merging() {
        var handler = StandardErrorLogHandler(label: "paywall", format: .text)
        handler[metadataKey: "request"] = "r-1"
        let at = Date(timeIntervalSince1970: 0)
        #expect(handler.line(event("x", level: .error, metadata: ["request": "r-9", "code": "bad"]), at: at)
            == "1970-01-01T00:00:00Z error paywall: code=bad request=r-9 [PaywallHTTP] x\n")
        #expect(StandardErrorLogHandler(label: "paywall", format: .text).line(event("y"), at: at) == "1970-01-01T00:00:00Z info paywall: [PaywallHTTP] y\n")
        handler[metadataKey: "request"] = nil
        #expect(handler.line(event("z"), at: at) == "1970-01-01T00:00:00Z info paywall: [PaywallHTTP] z\n")
    }

    @Test("an event's error is written with it")
    func error() {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk full" } }
        let event = LogEvent(level: .error, message: "cannot commit", error: Broken(), metadata: nil, source: "PaywallStore",
                             file: #fileID, function: #function, line: #line)
        #expect(StandardErrorLogHandler(label: "paywall", format: .text).line(event, at: Date(timeIntervalSince1970: 0))
            == "1970-01-01T00:00:00Z error paywall: error=disk full [PaywallStore] cannot commit\n")
    }

    @Test("text: a value or message from a request cannot start a line of its own or send a terminal escape")
    func textEscapes() {
        var handler = StandardErrorLogHandler(label: "paywall", format: .text)
        handler[metadataKey: "request"] = "r-1\n2026-11-29T01:41:00Z notice paywall: forged"
        let event = event("refused \u{1B}[8mhidden\r", metadata: ["reason": "invalid article id 'a\u{2028}b\u{202E}c'"])
        let line = handler.line(event, at: Date(timeIntervalSince1970: 0))
        #expect(line == "1970-01-01T00:00:00Z info paywall: reason=invalid article id 'a\\u{2028}b\\u{202E}c' "
            + "request=r-1\\n2026-11-29T01:41:00Z notice paywall: forged [PaywallHTTP] refused \\u{1B}[8mhidden\\r\n")
        #expect(line?.filter(\.isNewline).count == 1)
    }

    @Test("JSON: one object per line; metadata and the error as fields, never over what the line is")
    func json() throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk full" } }
        var handler = StandardErrorLogHandler(label: "paywall", format: .json)
        handler[metadataKey: "request"] = "r-1"
        handler[metadataKey: "level"] = "forged"
        let event = LogEvent(level: .error, message: "cannot commit", error: Broken(), metadata: ["ids": ["a", "b"]], source: "PaywallStore",
                             file: #fileID, function: #function, line: #line)
        let line = try #require(handler.line(event, at: Date(timeIntervalSince1970: 0)))
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["at"] as? String == "1970-01-01T00:00:00Z")
        #expect(object["level"] as? String == "error")
        #expect(object["label"] as? String == "paywall")
        #expect(object["message"] as? String == "cannot commit")
        #expect(object["request"] as? String == "r-1")
        #expect(object["error"] as? String == "disk full")
        #expect(object["ids"] as? [String] == ["a", "b"])
    }
}
