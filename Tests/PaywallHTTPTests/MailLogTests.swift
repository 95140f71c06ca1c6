import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PaywallCore
@testable import PaywallHTTP
import PaywallService
import PaywallTestSupport
import Synchronization
import Testing

/// Every log line of a request, rendered with its metadata.
final class CapturedLog: Sendable {
    let lines = Mutex<[String]>([])

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            let all = self.metadata.merging(extra ?? [:]) { $1 }
            let text = "\(level) \(message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
            self.log.lines.withLock { $0.append(text) }
        }
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

@Suite("Mail and the log")
struct MailLogTests {
    @Test("without a sendmail command the log says mail is queued, never the link, a token or a password")
    func queuedMailIsLoggedWithoutTheLink() async throws {
        let f = try seededFixture()
        let log = CapturedLog()
        let app = Application(router: PaywallAPI(service: f.service).router(), logger: Logger(label: "test") { _ in CapturedLog.Handler(log: log) })
        let (signUp, forgot) = try await app.test(.router) { client in
            (try await client.signUp("logged@example.com", password: "a secret passphrase"),
             try await client.json("/v1/password/forgot", ["email": "logged@example.com"]))
        }
        #expect(signUp.status == .created && forgot.status == .ok)
        let outbox = try f.service.outbox()
        #expect(outbox.count == 2)
        let tokens = outbox.compactMap { message in
            message.body.range(of: "#token=[A-Za-z0-9_-]+", options: .regularExpression).map { String(message.body[$0].dropFirst(7)) }
        }
        #expect(tokens.count == 2)
        let text = log.text
        #expect(text.contains("mail queued in the outbox"), "\(text)")
        #expect(text.contains("outbox=\(outbox[0].id)") && text.contains("outbox=\(outbox[1].id)"))
        for secret in tokens + ["a secret passphrase", try signUp.string("refreshToken"), try signUp.string("accessToken")] {
            #expect(!text.contains(secret), "a secret reached the log")
        }
    }

    @Test("access checks: every line carries the request's id; a refused token, a valid one and a cookie never reach the log")
    func accessLinesCarryTheRequestIDAndNoSecret() async throws {
        let f = try seededFixture()
        let log = CapturedLog()
        let app = Application(router: PaywallAPI(service: f.service).router(), logger: Logger(label: "test") { _ in CapturedLog.Handler(log: log) })
        let member = try accessToken(f, "member@example.com")
        let forged = String(member.dropLast(6)) + "AAAAAA"
        let body = #"{"title":"euronews","article":{"id":"a1"}}"#
        let answers = try await app.test(.router) { client in
            var answers: [HTTPResponse.Status] = []
            for (token, id) in [(forged, "req-forged-1"), (member, "req-member-2"), ("not-a-token", "req-junk-3")] {
                let response = try await client.execute(
                    uri: "/v1/access", method: .post,
                    headers: [.contentType: "application/json", .authorization: "Bearer \(token)", HTTPField.Name("X-Request-Id")!: id,
                              .cookie: "paywall_session=cookie-secret-value"],
                    body: ByteBuffer(string: body))
                answers.append(response.status)
            }
            return answers
        }
        #expect(answers == [.unauthorized, .ok, .unauthorized])
        let lines = log.lines.withLock { $0 }
        #expect(!lines.isEmpty)
        for line in lines where line.contains("/v1/access") || line.contains("refused") || line.contains("decision") {
            #expect(line.contains("req-"), "a request's line without its id: \(line)")
        }
        let text = log.text
        #expect(text.contains("req-forged-1") && text.contains("req-junk-3"), "the refusals are logged with their ids: \(text)")
        for secret in [forged, member, "not-a-token", "cookie-secret-value", String(member.split(separator: ".")[2])] {
            #expect(!text.contains(secret), "a secret reached the log")
        }
    }
    @Test("a flood of one refusal is logged up to 20 lines a second; the rest are counted, not written")
    func refusalFloodIsThrottled() async throws {
        let f = try seededFixture()
        let log = CapturedLog()
        let app = Application(router: PaywallAPI(service: f.service).router(), logger: Logger(label: "test") { _ in CapturedLog.Handler(log: log) })
        let clock = ContinuousClock()
        let start = clock.now
        let statuses = try await app.test(.router) { client in
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<60 {
                let response = try await client.execute(
                    uri: "/v1/access", method: .post, headers: [.contentType: "application/json", .authorization: "Bearer not-a-token"],
                    body: ByteBuffer(string: #"{"title":"euronews","article":{"id":"a1"}}"#))
                statuses.append(response.status)
            }
            return statuses
        }
        let seconds = Int((clock.now - start).components.seconds) + 1
        #expect(statuses.allSatisfy { $0 == .unauthorized }, "every one still answered")
        let refused = log.lines.withLock { $0 }.filter { $0.contains("refused") && $0.contains("code=invalid_token") }
        #expect(refused.count >= 20 && refused.count <= 20 * seconds, "\(refused.count) lines in \(seconds) s")
        if seconds == 1 { #expect(refused.count == 20) }
        // Another code is not held back by this one's flood.
        let member = try accessToken(f, "member@example.com")
        let other = try await app.test(.router) { client in
            try await client.execute(
                uri: "/v1/access", method: .post, headers: [.contentType: "application/json", .authorization: "Bearer \(member)"],
                body: ByteBuffer(string: #"{"title":"no-such-title","article":{"id":"a1"}}"#))
        }
        #expect(other.status == .notFound)
        #expect(log.lines.withLock { $0 }.contains { $0.contains("refused") && $0.contains("code=title_not_found") }, "\(log.text.suffix(400))")
    }
}
