import Foundation
import Synchronization
import Testing
import PaywallCore
import PaywallTestSupport
@testable import PaywallStore

/// The PostgreSQL facts listener notices a connection that died without a word.
@Suite("The facts listener's heartbeat")
struct ListenerHeartbeatTests {
    @Test("a listening connection that stops answering (no reset: a partition) turns the facts cache off", arguments: TestBackend.postgresOnly)
    func silentDeath(backend: TestBackend) throws {
        let base = try #require(TestBackend.postgresURL)
        let schema = try PostgresTestSchema(baseURL: base)
        // The store reaches PostgreSQL through a proxy that can stop passing bytes without
        // closing anything: what a dropped NAT entry or a partition looks like.
        let target = try #require(URLComponents(string: schema.url))
        let proxy = try SilentProxy(host: target.host ?? "127.0.0.1", port: target.port ?? 5432)
        var through = target
        through.host = "127.0.0.1"
        through.port = proxy.port
        var configuration = StoreConfiguration()
        configuration.listenerHeartbeat = 0.2
        let store = try Store(location: try #require(through.string), configuration: configuration)
        #expect(eventually(15) { store.cachesFacts }, "listening")
        proxy.goSilent()
        // Two pings unanswered, then the next tick closes it: about three intervals.
        #expect(eventually(10) { !store.cachesFacts }, "the cache must go off when the listener hears nothing")
        proxy.stop()
        try? store.close()
    }

    func eventually(_ seconds: Double, _ body: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if body() { return true }
            usleep(10_000)
        }
        return body()
    }
}

/// A TCP forwarder on a loopback port that can go silent: it keeps every connection open
/// and drops whatever arrives from then on, in both directions.
final class SilentProxy: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let silent = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let sockets = Mutex<[Int32]>([])

    init(host: String, port targetPort: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0, listen(listener, 16) == 0 else { close(listener); throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                guard let upstream = Self.connect(host: host, port: targetPort) else { close(client); continue }
                sockets.withLock { $0 += [client, upstream] }
                for (from, to) in [(client, upstream), (upstream, client)] {
                    Thread { self.pipe(from: from, to: to) }.start()
                }
            }
        }.start()
    }

    func goSilent() { silent.store(true, ordering: .relaxed) }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for socket in sockets.withLock({ $0 }) { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    private func pipe(from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            if silent.load(ordering: .relaxed) { continue }  // dropped: no answer, no close
            var sent = 0
            while sent < count {
                let wrote = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, count - sent) }
                if wrote <= 0 { return }
                sent += wrote
            }
        }
        if !silent.load(ordering: .relaxed) { shutdown(to, Int32(SHUT_WR)) }
    }

    private static func connect(host: String, port: Int) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(descriptor); return nil }
        return descriptor
    }
}
