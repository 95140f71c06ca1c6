import Foundation

/// Lets a caller on Swift's cooperative pool try work that usually needs no database round
/// trip (every fact cached, ``FactsCache``) without risking one: inside the scope, taking a
/// PostgreSQL connection is refused and remembered, and the caller runs the work again where
/// blocking is allowed. Per thread (pthread-specific data): the attempt runs synchronously.
///
/// Why: on PostgreSQL the facts run on the blocking pool (network waits must not hold a
/// cooperative thread), and that hop cost member checks about half their throughput
/// (BENCHMARKS.md); with the facts cached, most checks need no hop at all.
enum NoWaitScope {
    private final class Flags {
        var active = false
        var refused = false
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() } }
        return key
    }()

    private static var flags: Flags {
        if let pointer = pthread_getspecific(key) { return Unmanaged<Flags>.fromOpaque(pointer).takeUnretainedValue() }
        let flags = Flags()
        pthread_setspecific(key, Unmanaged.passRetained(flags).toOpaque())
        return flags
    }

    /// Inside a scope: records the refusal and returns true (the caller must not wait).
    static func refuse() -> Bool {
        guard let pointer = pthread_getspecific(key) else { return false }
        let flags = Unmanaged<Flags>.fromOpaque(pointer).takeUnretainedValue()
        guard flags.active else { return false }
        flags.refused = true
        return true
    }

    /// Runs `body` in a scope; nil when it needed the database (whatever it threw then).
    static func attempt<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T? {
        let flags = flags
        flags.active = true
        flags.refused = false
        defer { flags.active = false }
        do {
            let value = try body()
            return flags.refused ? nil : value
        } catch {
            if flags.refused { return nil }
            throw error
        }
    }
}

extension Store {
    /// Runs `body` unless it needs a database round trip: on PostgreSQL, nil when it did
    /// (it should run again where blocking is allowed); on SQLite it always runs (local
    /// reads, measured cheaper than a thread hop).
    public func withoutWaiting<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T? {
        guard backend is PostgresBackend else { return try body() }
        return try NoWaitScope.attempt(body)
    }
}
