import Foundation
import GRDB
import PaywallCore
@testable import PaywallStore

/// A fresh database in its own temporary folder, with a manual clock.
final class StoreFixture: @unchecked Sendable {
    let folder: URL
    let clock = ManualClock()
    let store: Store
    let admin = AuditActor.admin("test")

    var path: String { folder.appendingPathComponent("paywall.sqlite").path }

    init(configure: (inout StoreConfiguration) -> Void = { _ in }) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var configuration = StoreConfiguration()
        configuration.clock = clock
        configure(&configuration)
        store = try Store(path: folder.appendingPathComponent("paywall.sqlite").path, configuration: configuration)
    }

    deinit {
        try? store.close()
        try? FileManager.default.removeItem(at: folder)
    }

    @discardableResult
    func account(_ email: String) throws -> Account {
        try store.createAccount(email: EmailAddress(email), displayName: nil, passwordHash: "$scrypt$test", actor: admin)
    }

    @discardableResult
    func title(_ id: String) throws -> Title {
        try store.addTitle(id: TitleID(rawValue: id), name: id.capitalized, publisher: "Pub", actor: admin)
    }

    @discardableResult
    func plan(_ id: String, bundle: TitleBundle = .all) throws -> Plan {
        try store.addPlan(id: PlanID(rawValue: id), name: id, period: .month, bundle: bundle, actor: admin)
    }

    /// Counts rows in every table, to prove a refused operation wrote nothing.
    func snapshot() throws -> [String: Int] {
        try store.pool.read { db in
            var counts: [String: Int] = [:]
            for table in ["accounts", "credentials", "titles", "plans", "plan_titles", "trials", "memberships",
                          "membership_events", "reads", "sessions", "audit_log"] {
                counts[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
            }
            return counts
        }
    }
}
