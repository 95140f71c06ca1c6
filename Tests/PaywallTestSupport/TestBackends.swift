import Foundation
import Logging
import NIOPosix
import PostgresNIO

/// The store backends a store test runs on: SQLite always; PostgreSQL too when
/// `PAYWALL_TEST_POSTGRES_URL` names a database (`.ci/run` starts one and sets it).
public enum TestBackend: String, Sendable, CustomStringConvertible {
    case sqlite, postgres

    public static var all: [TestBackend] {
        postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]
    }

    /// Only PostgreSQL, when it is configured (for tests of the shared store alone).
    public static var postgresOnly: [TestBackend] {
        postgresURL == nil ? [] : [.postgres]
    }

    public static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["PAYWALL_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// The same test database reached through the server's unix socket
    /// (`postgres://user:password@/database?host=/folder`), when `.ci/run` sets
    /// `PAYWALL_TEST_POSTGRES_SOCKET_URL`.
    public static var postgresSocketURL: String? {
        guard let url = ProcessInfo.processInfo.environment["PAYWALL_TEST_POSTGRES_SOCKET_URL"], !url.isEmpty else { return nil }
        return url
    }

    public var description: String { rawValue }
}

/// A schema of its own in the test database, for one test's store (`?search_path=`), made
/// empty and dropped with everything in it when the last reference goes.
public final class PostgresTestSchema: @unchecked Sendable {
    public let name: String
    /// The URL of the store in this schema.
    public let url: String
    private let baseURL: String

    public init(baseURL: String) throws {
        self.baseURL = baseURL
        name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        url = baseURL + (baseURL.contains("?") ? "&" : "?") + "search_path=\(name)"
        try Self.run(baseURL, "CREATE SCHEMA \(name)")
    }

    deinit { try? Self.run(baseURL, "DROP SCHEMA \(name) CASCADE") }

    /// Runs one statement on a connection of its own (schema names are made here: no
    /// untrusted text reaches the SQL).
    public static func run(_ baseURL: String, _ sql: String) throws {
        let connection = try connect(baseURL)
        defer { try? connection.close().wait() }
        _ = try connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).wait()
    }

    private static let logger = Logger(label: "paywall.tests.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    static func connect(_ url: String) throws -> PostgresConnection {
        guard let parts = URLComponents(string: url), let host = parts.host, let user = parts.user else {
            throw CocoaError(.fileReadInvalidFileName, userInfo: [NSLocalizedDescriptionKey: "PAYWALL_TEST_POSTGRES_URL is not postgres://user:password@host:port/database"])
        }
        let configuration = PostgresConnection.Configuration(
            host: host, port: parts.port ?? 5432, username: user, password: parts.password,
            database: String(parts.path.dropFirst()), tls: .disable)
        return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 1, logger: logger).wait()
    }
}
