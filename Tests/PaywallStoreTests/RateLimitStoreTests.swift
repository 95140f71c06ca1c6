import Foundation
import Synchronization
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

@Suite("Rate limits kept in the store")
struct RateLimitStoreTests {
    let limit = StoredRateLimit(scope: "export", burst: 3, interval: 3_600)

    @Test("a bucket per scope and key: the burst, then the wait to the next token, refilled by time; refusals spend nothing", arguments: TestBackend.all)
    func bucket(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        for _ in 0..<3 { #expect(try f.store.takeRateToken(limit, key: "a") == nil) }
        #expect(try f.store.takeRateToken(limit, key: "a") == 3_600)
        #expect(try f.store.takeRateToken(limit, key: "a") == 3_600, "a refusal spends nothing")
        #expect(try f.store.takeRateToken(limit, key: "b") == nil, "another key has its own")
        #expect(try f.store.takeRateToken(StoredRateLimit(scope: "email-change", burst: 3, interval: 3_600), key: "a") == nil, "another scope too")
        f.clock.advance(by: 1_800)
        #expect(try f.store.takeRateToken(limit, key: "a") == 1_800)
        f.clock.advance(by: 1_800)
        #expect(try f.store.takeRateToken(limit, key: "a") == nil)
        f.clock.advance(by: 30 * 86_400)
        for _ in 0..<3 { #expect(try f.store.takeRateToken(limit, key: "a") == nil, "refilled to the burst, no further") }
        #expect(try f.store.takeRateToken(limit, key: "a") != nil)
        // Pruned once it would be full again anyway.
        f.clock.advance(by: 2 * 86_400)
        _ = try f.store.prune()
        #expect(try f.store.read { try $0.fetchValue(Int.self, "SELECT COUNT(*) FROM rate_limits") } == 0)
    }

    @Test("exact under concurrent takes, also from two stores on one database", arguments: TestBackend.all)
    func concurrent(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let second = try f.reopen()
        defer { try? second.close() }
        let stores = [f.store, second]
        let allowed = Atomic<Int>(0), refused = Atomic<Int>(0), failed = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 12) { index in
            do {
                if try stores[index % 2].takeRateToken(limit, key: "shared") == nil {
                    allowed.add(1, ordering: .relaxed)
                } else {
                    refused.add(1, ordering: .relaxed)
                }
            } catch {
                failed.add(1, ordering: .relaxed)
            }
        }
        #expect(allowed.load(ordering: .relaxed) == 3 && refused.load(ordering: .relaxed) == 9 && failed.load(ordering: .relaxed) == 0)
    }
}
