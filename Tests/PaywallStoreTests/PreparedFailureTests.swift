import PostgresNIO
import PaywallTestSupport
import Testing
@testable import PaywallStore

/// postgres-nio reports a prepared statement's failure in its older shape (`PostgresError`);
/// the store must read it as it reads any statement's (retries, broken connections).
@Suite("Prepared statements' failures")
struct PreparedFailureTests {
    @Test("a closed connection or a protocol error is the connection's failure, never retried, never the caller's")
    func connectionFailures() {
        for error in [PostgresError.connectionClosed, .protocol("Unexpected connection close")] {
            let normalized = PreparedFailure.normalized(error, sql: "COMMIT")
            #expect(normalized is PreparedFailure)
            #expect(PostgresConnectionPool.connectionFailed(normalized), "\(error)")
            #expect(!PostgresBackend.isRetryable(normalized))
            #expect(PostgresBackend.sqlState(of: normalized) == nil)
            #expect(PostgresBackend.owns(normalized))
        }
    }

    @Test("a server answer keeps its SQLSTATE: serialization failures retry, constraints are named")
    func serverAnswers() {
        let serialization = PreparedFailure(sqlState: "40001", message: "could not serialize access", sql: "COMMIT")
        #expect(PostgresBackend.isRetryable(serialization))
        #expect(!PostgresConnectionPool.connectionFailed(serialization))
        let foreignKey = PreparedFailure(sqlState: "23503", message: "violates foreign key constraint", sql: "INSERT …")
        #expect(PostgresBackend.constraint(of: foreignKey) == .foreignKey)
        #expect(!PostgresBackend.isRetryable(foreignKey))
        // Anything else passes through untouched.
        struct Other: Error {}
        #expect(PreparedFailure.normalized(Other(), sql: "x") is Other)
    }

    @Test("a real server's answer to a prepared statement keeps its SQLSTATE, and the connection stays usable", arguments: TestBackend.postgresOnly)
    func realServer(backend: TestBackend) throws {
        let f = try StoreFixture(backend: backend)
        let postgres = try #require(f.store.backend as? PostgresBackend)
        do {
            _ = try postgres.connections.with { connection in
                try PostgresSQL(connection: connection, backend: postgres).fetchPrepared("SELECT 1 / (?::bigint - ?::bigint)", [Int64(1), Int64(1)])
            }
            Issue.record("a division by zero answered")
        } catch {
            #expect(error is PreparedFailure)
            #expect(PostgresBackend.sqlState(of: error) == "22012")
            #expect(!PostgresConnectionPool.connectionFailed(error))
            if case let .postgres(_, sqlState, _, _) = postgres.storeError(error) {
                #expect(sqlState == "22012")
            } else {
                Issue.record("mapped to \(postgres.storeError(error))")
            }
        }
        #expect(try f.store.rowCounts()["accounts"] == 0, "the store still answers")
    }
}
