import Foundation
import GRDB
import PaywallCore
import PaywallCrypto
import PaywallService
import PaywallStore

/// A temporary folder, removed when the last reference goes.
public final class TestFolder: @unchecked Sendable {
    public let url: URL

    public init(_ prefix: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Every table's row count in the database at `path`, to prove a refused operation wrote
/// nothing. Reads through a connection of its own (WAL: it sees every committed write).
public func rowCounts(path: String) throws -> [String: Int] {
    let queue = try DatabaseQueue(path: path, configuration: {
        var configuration = Configuration()
        configuration.readonly = true
        return configuration
    }())
    defer { try? queue.close() }
    return try queue.read { db in
        var counts: [String: Int] = [:]
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations'")
        for table in tables {
            counts[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \"\(table)\"") ?? 0
        }
        return counts
    }
}

/// A fresh database with a manual clock: a SQLite file in its own temporary folder, or a
/// schema of its own in the PostgreSQL test database.
public final class StoreFixture: @unchecked Sendable {
    public let backend: TestBackend
    public let directory: TestFolder
    public let clock = ManualClock()
    public let store: Store
    public let admin = AuditActor.admin("test")
    /// The PostgreSQL schema (dropped after the store closes).
    private let schema: PostgresTestSchema?

    public var folder: URL { directory.url }
    /// The SQLite file, or the PostgreSQL URL.
    public var path: String { schema?.url ?? directory.path("paywall.sqlite") }

    public init(backend: TestBackend = .sqlite, configure: (inout StoreConfiguration) -> Void = { _ in }) throws {
        self.backend = backend
        directory = try TestFolder("paywall-store")
        var configuration = StoreConfiguration()
        configuration.clock = clock
        configure(&configuration)
        switch backend {
        case .sqlite:
            schema = nil
            store = try Store(path: directory.path("paywall.sqlite"), configuration: configuration)
        case .postgres:
            guard let url = TestBackend.postgresURL else { throw StoreError.cannotOpen(path: "PostgreSQL", detail: "PAYWALL_TEST_POSTGRES_URL is not set") }
            let schema = try PostgresTestSchema(baseURL: url)
            self.schema = schema
            store = try Store(location: schema.url, configuration: configuration)
        }
    }

    /// A second store on the same database (another server's view).
    public func reopen(configure: (inout StoreConfiguration) -> Void = { _ in }) throws -> Store {
        var configuration = StoreConfiguration()
        configuration.clock = clock
        configure(&configuration)
        return try Store(location: path, configuration: configuration)
    }

    deinit { try? store.close() }

    @discardableResult
    public func account(_ email: String) throws -> Account {
        try store.createAccount(email: EmailAddress(email), displayName: nil, passwordHash: "$scrypt$test", actor: admin)
    }

    @discardableResult
    public func title(_ id: String) throws -> Title {
        try store.addTitle(id: TitleID(rawValue: id), name: id.capitalized, publisher: "Pub", actor: admin)
    }

    @discardableResult
    public func plan(_ id: String, bundle: TitleBundle = .all) throws -> Plan {
        try store.addPlan(id: PlanID(rawValue: id), name: id, period: .month, bundle: bundle, actor: admin)
    }

    /// Counts rows in every table, to prove a refused operation wrote nothing.
    public func snapshot() throws -> [String: Int] { try store.rowCounts() }

    /// The same, through a store of its own (another server's, or after this one closed).
    public func countsFromAnotherStore() throws -> [String: Int] {
        let other = try reopen()
        defer { try? other.close() }
        return try other.rowCounts()
    }
}

/// A service over a fresh database with cheap scrypt parameters (test mode), a manual
/// clock, its own key folder (development keys allowed) and the shipped policy.
public final class ServiceFixture: @unchecked Sendable {
    public let directory: TestFolder
    public let clock = ManualClock()
    public let service: PaywallService
    public let admin = AuditActor.admin("test")
    /// The PostgreSQL schema, when the service runs on one.
    private let schema: PostgresTestSchema?

    public var folder: URL { directory.url }
    /// The SQLite file, or the PostgreSQL URL.
    public var path: String { schema?.url ?? directory.path("db.sqlite") }

    public init(backend: TestBackend = .sqlite, hashing: ScryptParameters = .testing, configure: (inout ServiceConfiguration) -> Void = { _ in }) throws {
        directory = try TestFolder("paywall-service")
        if backend == .postgres {
            guard let url = TestBackend.postgresURL else { throw StoreError.cannotOpen(path: "PostgreSQL", detail: "PAYWALL_TEST_POSTGRES_URL is not set") }
            schema = try PostgresTestSchema(baseURL: url)
        } else {
            schema = nil
        }
        var configuration = Self.configuration(clock, hashing)
        configuration.databaseLocation = schema?.url ?? directory.path("db.sqlite")
        configuration.keysDirectory = directory.url.appendingPathComponent("Keys")
        configure(&configuration)
        service = try PaywallService(configuration: configuration)
    }

    /// A second service on the same database and keys (another server).
    public func another(configure: (inout ServiceConfiguration) -> Void = { _ in }) throws -> PaywallService {
        var configuration = service.configuration
        configuration.databaseLocation = path
        configure(&configuration)
        return try PaywallService(configuration: configuration)
    }

    /// Test-mode settings: cheap scrypt, the manual clock, development keys, the shipped policy.
    public static func configuration(_ clock: ManualClock, _ hashing: ScryptParameters) -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.testing = true
        configuration.passwordHashing = hashing
        configuration.clock = clock
        configuration.developmentKeys = true
        configuration.policyDirectory = repositoryRoot.appendingPathComponent("Policies")
        return configuration
    }

    /// Accounts and audit entries.
    public func counts() throws -> (Int, Int) {
        let counts = try snapshot()
        return (counts["accounts"] ?? 0, counts["audit_log"] ?? 0)
    }

    /// Every table's row count, through a store of its own.
    public func snapshot() throws -> [String: Int] {
        if schema == nil { return try rowCounts(path: path) }
        let store = try Store(location: path)
        defer { try? store.close() }
        return try store.rowCounts()
    }
}

/// The repository's root folder (tests read `Policies/` and `../shared/` from it).
public let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url
}()
