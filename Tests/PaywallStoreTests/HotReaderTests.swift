import Foundation
import GRDB
import GRDBSQLite
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

/// The hot readers bind strings without copying them (SQLITE_STATIC): after every read the
/// statements must hold no binding, and every SQLite call's failure must surface.
@Suite("Hot readers")
struct HotReaderTests {
    /// The SQL, with its bound values, of every statement prepared on the (only) hot
    /// reader's connection.
    func expandedStatements(_ f: StoreFixture) throws -> [String] {
        try f.store.hotReaders.read { hot in
            let db = (hot as! SQLiteHotQueries).db
            var texts: [String] = []
            var statement = sqlite3_next_stmt(db.sqliteConnection, nil)
            while let current = statement {
                if let expanded = sqlite3_expanded_sql(current) {
                    // String literals of the SQL itself (`','` of a group_concat) are not
                    // bindings: blank them so that any quote left is a bound string.
                    texts.append(String(cString: expanded).replacingOccurrences(of: "','", with: "<comma>"))
                    sqlite3_free(expanded)
                }
                statement = sqlite3_next_stmt(db.sqliteConnection, current)
            }
            return texts
        }
    }

    @Test("after a hot read its statement is reset and holds no bound value")
    func noBindingLeftBehind() throws {
        let f = try StoreFixture { $0.maximumReaderCount = 1 }
        try f.title("euronews")
        let account = try f.account("a-rather-long-address-for-a-heap-string@example.com")
        // Kept alive (and its heap buffer with it) until the check below, so reading a
        // binding that still points at it is safe even on a faulty reader.
        let key = "a-rather-long-address-for-a-heap-string@example.com"
        try withExtendedLifetime(key) {
            #expect(try f.store.account(emailKey: key)?.id == account.id)
            let statements = try expandedStatements(f)
            #expect(statements.contains { $0.contains("email_key = NULL") }, "\(statements)")
            try #require(!statements.contains { $0.contains(key) }, "a statement still holds the key: \(statements)")
        }
        // Every hot query: nothing stays bound once it returns.
        let subject = MeterSubject.device("a-device-id-long-enough-to-live-on-the-heap")
        try f.store.recordRead(ArticleRead(subject: subject, titleID: TitleID(rawValue: "euronews"), articleID: "article-with-a-long-identifier", at: f.clock.now()))
        #expect(try f.store.meterUsage(subject: subject, window: 86_400).used == 1)
        #expect(try f.store.meterUsage(subject: subject, window: 86_400, title: TitleID(rawValue: "euronews")).used == 1)
        #expect(try f.store.hasRead(subject: subject, title: TitleID(rawValue: "euronews"), article: "article-with-a-long-identifier", window: 86_400))
        #expect(try f.store.account(id: account.id) == account)
        #expect(try f.store.title(id: TitleID(rawValue: "euronews"))?.id.rawValue == "euronews")
        #expect(try f.store.membershipsWithBundles(accountID: account.id).isEmpty)
        for text in try expandedStatements(f) {
            #expect(!text.contains("'"), "a statement still holds a string: \(text)")
        }
    }

    @Test("a refused binding is an error naming the SQL, never a read of stale or no parameters")
    func bindFailureSurfaces() throws {
        let f = try StoreFixture { $0.maximumReaderCount = 1 }
        let ada = try f.account("ada@example.com")
        let long = "someone-with-a-long-address@example.com"
        try f.account(long)
        #expect(try f.store.account(emailKey: "ada@example.com")?.id == ada.id)
        // Strings longer than 20 bytes are now too big for this connection: binding the
        // key fails with SQLITE_TOOBIG.
        let previous = try f.store.hotReaders.read { hot in sqlite3_limit((hot as! SQLiteHotQueries).db.sqliteConnection, SQLITE_LIMIT_LENGTH, 20) }
        do {
            let found = try f.store.account(emailKey: long)
            Issue.record("expected SQLITE_TOOBIG, got \(String(describing: found))")
        } catch let .sqlite(_, code, _, sql) {
            #expect(code == SQLITE_TOOBIG)
            #expect(sql?.contains("email_key = ?") == true)
        } catch {
            Issue.record("unexpected \(error)")
        }
        // With the limit back, the reader is still usable, with nothing left bound.
        _ = try f.store.hotReaders.read { hot in sqlite3_limit((hot as! SQLiteHotQueries).db.sqliteConnection, SQLITE_LIMIT_LENGTH, previous) }
        #expect(try f.store.account(emailKey: "ada@example.com")?.id == ada.id)
        for text in try expandedStatements(f) {
            #expect(!text.contains("'"), "a statement still holds a string: \(text)")
        }
    }
}
