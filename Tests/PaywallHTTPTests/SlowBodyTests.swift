import Foundation
import Hummingbird
import HummingbirdTesting
import PaywallHTTP
import PaywallWeb
import PaywallTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

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
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        var timeout = timeval(tv_sec: wait, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        let bytes = Array(head.utf8) + start
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may close before taking it all (the 413 case)
            sent += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var closed = false
        while true {
            let n = recv(descriptor, &buffer, buffer.count, 0)
            if n > 0 { reply += buffer[0..<n]; continue }
            closed = n == 0 || errno == ECONNRESET
            break
        }
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
            #expect(slow.closed, "the server kept the connection, waiting for the rest of the body")
            #expect(slow.seconds < 15, "\(slow.seconds) s")
            let large = try await Self.send(
                port: port, head: "POST /v1/access HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
                start: [UInt8](repeating: 0x20, count: 70_000), wait: 20)
            #expect(large.reply.hasPrefix("HTTP/1.1 413"), "\(large.reply.prefix(300))")
            #expect(large.closed && large.seconds < 15, "\(large.seconds) s")
            // The server still answers.
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
            #expect(slow.closed && slow.seconds < 15, "\(slow.seconds) s")
        }
    }
}
