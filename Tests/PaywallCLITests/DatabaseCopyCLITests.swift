import Foundation
import PaywallTestSupport
import Testing
import PaywallCore
import PaywallStore

@Suite("paywall db copy", .serialized)
struct DatabaseCopyCLITests {
    /// A SQLite database with a title, a plan and an account (and their audit entries).
    func seeded() throws -> CLIHarness {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        #expect(try cli.run(["plan", "add", "news", "--name", "News", "--period", "year", "--titles", "euronews"]).status == 0)
        let created = try cli.run(["account", "create", "--email", "ada@example.com"], input: "correct horse battery\n")
        #expect(created.status == 0, "\(created.stderr)")
        return cli
    }

    /// Row counts of the store at `location`, opened read-only.
    func counts(_ location: String) throws -> [String: Int] {
        var configuration = StoreConfiguration()
        configuration.readOnly = true
        let store = try Store(location: location, configuration: configuration)
        defer { try? store.close() }
        return try store.rowCounts()
    }

    @Test("copies into an empty PostgreSQL schema named by PAYWALL_DB, never prints the password; a second copy is refused",
          .enabled(if: TestBackend.postgresURL != nil))
    func copiesAndRefusesNonEmpty() throws {
        let base = try #require(TestBackend.postgresURL)
        let password = try #require(URLComponents(string: base)?.password)
        let cli = try seeded()
        let source = try counts(cli.database)

        // Text, the URL (with its password) given in PAYWALL_DB as --help advises.
        let schema = try PostgresTestSchema(baseURL: base)
        let copied = try cli.run(["db", "copy", "--from", cli.database], extraEnvironment: ["PAYWALL_DB": schema.url])
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(copied.stdout.contains("copied \(cli.database) to postgres://"))
        #expect(copied.stdout.contains("audit SHA-256") && copied.stdout.contains("accounts"))
        #expect(!copied.stdout.contains(password) && !copied.stderr.contains(password))
        #expect(try counts(schema.url) == source)

        // Again into the same schema: refused, exit 1, one line on stderr, nothing written.
        let again = try cli.run(["db", "copy", "--from", cli.database, "--to", schema.url])
        #expect(again.status == 1)
        #expect(again.stderr.hasPrefix("paywall: error: cannot copy the database: postgres://"))
        #expect(again.stderr.contains("is not empty") && again.stderr.contains("accounts"))
        #expect(!again.stderr.contains(password))
        #expect(try counts(schema.url) == source)

        // JSON, into another schema: the same counts and the audit digest.
        let other = try PostgresTestSchema(baseURL: base)
        let json = try cli.run(["db", "copy", "--from", cli.database, "--to", other.url, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let view = try #require(try cli.json(json.stdout) as? [String: Any])
        let tables = try #require(view["tables"] as? [[String: Any]])
        var rows: [String: Int] = [:]
        for table in tables { rows[table["table"] as? String ?? "?"] = table["rows"] as? Int }
        #expect(rows == source)
        #expect(view["totalRows"] as? Int == source.values.reduce(0, +))
        #expect(view["auditEntries"] as? Int == source["audit_log"])
        #expect((view["auditDigest"] as? String)?.count == 64)
        #expect((view["target"] as? String)?.contains(password) == false)
    }

    @Test("refused before anything is opened or created: into a SQLite file; a missing source; --help says what it does")
    func refusals() throws {
        let cli = try seeded()
        let before = try counts(cli.database)
        let into = cli.folder.appendingPathComponent("other.sqlite").path
        let sqlite = try cli.run(["db", "copy", "--from", cli.database, "--to", into])
        #expect(sqlite.status == 1)
        #expect(sqlite.stderr.contains("from a SQLite file into a PostgreSQL database"), "\(sqlite.stderr)")
        #expect(!FileManager.default.fileExists(atPath: into))

        // Without --to, PAYWALL_DB (here the source itself) is the target.
        let itself = try cli.run(["db", "copy", "--from", cli.database])
        #expect(itself.status == 1)
        #expect(itself.stderr.contains("the same database") && itself.stderr.contains("PAYWALL_DB"))
        #expect(try counts(cli.database) == before)

        let missing = cli.folder.appendingPathComponent("missing.sqlite").path
        let absent = try cli.run(["db", "copy", "--from", missing, "--to", "postgres://paywall:hunter2@127.0.0.1:1/paywall"])
        #expect(absent.status == 2)
        #expect(absent.stderr.contains("no such file") && !absent.stderr.contains("hunter2"))
        #expect(!FileManager.default.fileExists(atPath: missing))

        let help = try cli.run(["db", "copy", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--from") && help.stdout.contains("--to"))
        #expect(help.stdout.contains("empty") && help.stdout.contains("PAYWALL_DB") && help.stdout.contains("password"))
    }
}
