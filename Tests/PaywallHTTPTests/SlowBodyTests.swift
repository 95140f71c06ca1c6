import Foundation
import Hummingbird
import HummingbirdTesting
import PaywallHTTP
import PaywallWeb
import PaywallTestSupport
import Testing

/// A body sent too slowly, or too large, over a real socket: answered, and the connection
/// closed without the server reading the rest of it.
@Suite("Slow and oversized bodies")
struct SlowBodyTests {
    /// Sends `head` and `start` of a body on a new connection to `port`, never the rest,
    /// and reads until the server closes (at most `wait` seconds). Returns what came back,
    /// whether the server closed, and how long it took.
    static func send(port: Int, head: String, start: [UInt8], wait: Int) async throws -> (reply: String, closed: Bool, seconds: Double) {
        // On a thread of its own: blocked in recv on the cooperative pool, it starved the
        // server's own handlers of the pool's two threads when other tests ran at once.
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try sendBlocking(port: port, head: head, start: start, wait: wait) }) }.start()
        }
    }

    static func sendBlocking(port: Int, head: String, start: [UInt8], wait: Int) throws -> (reply: String, closed: Bool, seconds: Double) {
        let connection = try LoopbackSocket(port: port, timeout: wait)
        let started = Date()
        connection.send(Array(head.utf8) + start)  // the server may close before taking it all (the 413 case)
        let (reply, closed) = connection.readUntilClosed()
        return (String(decoding: reply, as: UTF8.self), closed, Date().timeIntervalSince(started))
    }

    @Test("a body that does not arrive within the deadline: 408 request_timeout, and the connection closed; a body too large: 413, closed")
    func slowAndLarge() async throws {
        let f = try seededFixture()
        let api = PaywallAPI(service: f.service, bodyTimeout: .seconds(1))
        let app = Application(router: api.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let slow = try await Self.send(
                port: port, head: "POST /v1/access HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
                start: Array(#"{"title":"#.utf8), wait: 20)
            #expect(slow.reply.hasPrefix("HTTP/1.1 408"), "\(slow.reply.prefix(300))")
            #expect(slow.reply.contains(#""code":"request_timeout""#))
            #expect(slow.reply.lowercased().contains("connection: close"), "\(slow.reply.prefix(300))")
            #expect(slow.closed, "the server kept the connection, waiting for the rest of the body")
            #expect(slow.seconds < 15, "\(slow.seconds) s")
            let large = try await Self.send(
                port: port, head: "POST /v1/access HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
                start: [UInt8](repeating: 0x20, count: 70_000), wait: 20)
            #expect(large.reply.hasPrefix("HTTP/1.1 413"), "\(large.reply.prefix(300))")
            #expect(large.reply.lowercased().contains("connection: close"), "no further request is read: \(large.reply.prefix(300))")
            #expect(large.closed && large.seconds < 15, "\(large.seconds) s")
            // The server still answers.
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test("a request refused before its body is read: the body read away within the deadline and the connection kept; a late, large or awaited body: answered, then the connection closed")
    func refusedBeforeTheBody() async throws {
        let f = try seededFixture()
        let api = PaywallAPI(service: f.service, bodyTimeout: .seconds(1))
        let app = Application(router: api.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let bad = "Authorization: Bearer not-a-token\r\nContent-Type: application/json\r\n"
        try await app.test(.live) { client in
            let port = try #require(client.port)
            // A body that stops coming (a byte a minute, or never): the deadline, then closed.
            for (head, start, status) in [
                ("POST /v1/access HTTP/1.1\r\nHost: localhost\r\n\(bad)Content-Length: 100\r\n\r\n", #"{"title":"#, "401"),
                ("POST /v1/access HTTP/1.1\r\nHost: localhost\r\n\(bad)Transfer-Encoding: chunked\r\n\r\n", "5\r\n{\"ti\"\r\n", "401"),
                ("POST /v1/nowhere HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", #"{"title":"#, "404"),
                // Waiting for a go-ahead that never comes: answered and closed without waiting.
                ("POST /v1/access HTTP/1.1\r\nHost: localhost\r\n\(bad)Expect: 100-continue\r\nContent-Length: 100\r\n\r\n", "", "401"),
                // Declared larger than any body the API takes: not read, closed.
                ("POST /v1/access HTTP/1.1\r\nHost: localhost\r\n\(bad)Content-Length: 10000000\r\n\r\n", "{", "401"),
            ] {
                let refused = try await Self.send(port: port, head: head, start: Array(start.utf8), wait: 30)
                #expect(refused.reply.hasPrefix("HTTP/1.1 \(status)"), "\(refused.reply.prefix(300))")
                #expect(refused.reply.lowercased().contains("connection: close"), "\(refused.reply.prefix(300))")
                #expect(refused.closed && refused.seconds < 15, "the server waited for the body: \(refused.seconds) s")
            }
            // The usual case, a whole body with its head: read away, one answer, and the
            // connection kept for the next request.
            let body = #"{"title":"euronews","article":{"id":"a1"}}"#
            let whole = try await Self.send(
                port: port,
                head: "POST /v1/access HTTP/1.1\r\nHost: localhost\r\n\(bad)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
                    + "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                start: [], wait: 30)
            let answers = whole.reply.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(answers == ["401", "200"], "\(whole.reply.prefix(800))")
            #expect(!whole.reply.prefix(200).lowercased().contains("connection: close"))
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test("a web form that does not arrive within the deadline: the 408 page, and the connection closed")
    func slowForm() async throws {
        let f = try seededFixture()
        var api = PaywallAPI(service: f.service, bodyTimeout: .seconds(1))
        api.web = try WebSite(service: f.service, articles: ArticleLibrary.demo())
        let app = Application(router: api.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let slow = try await Self.send(
                port: port, head: "POST /signin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
                start: Array("email=a".utf8), wait: 20)
            #expect(slow.reply.hasPrefix("HTTP/1.1 408"), "\(slow.reply.prefix(300))")
            #expect(slow.reply.contains("took too long to arrive"))
            #expect(slow.reply.lowercased().contains("connection: close"), "\(slow.reply.prefix(300))")
            #expect(slow.closed && slow.seconds < 15, "\(slow.seconds) s")
        }
    }
}
