import Foundation
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test("many tasks writing meters and memberships at once end with exact counts", arguments: TestBackend.all)
    func concurrentWriters(backend: TestBackend) async throws {
        let f = try StoreFixture(backend: backend)
        try f.title("euronews")
        try f.plan("monthly")
        let accounts = try (0..<40).map { try f.account("reader\($0)@example.com") }
        let store = f.store
        let now = f.clock.now()
        let writers = 8, readsEach = 150

        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in 0..<readsEach {
                        // Each article twice: re-reads must not count.
                        let article = "a\(index / 2)"
                        try store.recordRead(ArticleRead(subject: .device("dev-\(writer)"), titleID: TitleID(rawValue: "euronews"), articleID: article, at: now))
                    }
                }
            }
            for (index, account) in accounts.enumerated() {
                group.addTask {
                    let m = try store.grantMembership(accountID: account.id, planID: PlanID(rawValue: "monthly"), periodEnd: now.addingTimeInterval(86_400), source: .admin, actor: .system)
                    if index.isMultiple(of: 2) { _ = try store.cancelMembership(id: m.id, immediately: false, actor: .system) }
                }
            }
            // Readers running alongside the writers.
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<50 { _ = try store.meterUsage(subject: .device("dev-0"), window: 86_400) }
                }
            }
            try await group.waitForAll()
        }

        #expect(try store.readCount() == writers * readsEach)
        for writer in 0..<writers {
            #expect(try store.meterUsage(subject: .device("dev-\(writer)"), window: 86_400).used == readsEach / 2)
        }
        let memberships = try accounts.flatMap { try store.memberships(accountID: $0.id) }
        #expect(memberships.count == accounts.count)
        #expect(memberships.filter { $0.status == .canceled }.count == accounts.count / 2)
        let counts = try f.snapshot()
        #expect(counts["membership_events"] == accounts.count + accounts.count / 2)
        // 1 title + 1 plan + 40 accounts + 40 grants + 20 cancels.
        #expect(counts["audit_log"] == 2 + 40 + 40 + 20)
        #expect(try store.health().isHealthy)
    }
}
