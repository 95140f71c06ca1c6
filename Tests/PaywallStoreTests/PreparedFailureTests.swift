import PostgresNIO
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
}
