import GRDB
@testable import PaywallStore

// Tests that look under a SQLite store's hood (its GRDB pool, its hot readers).
extension Store {
    var sqlite: SQLiteBackend {
        guard let backend = backend as? SQLiteBackend else { preconditionFailure("a SQLite store was expected") }
        return backend
    }
    var pool: DatabasePool { sqlite.pool }
    var hotReaders: HotReaders { sqlite.hotReaders }
}
