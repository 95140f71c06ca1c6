import Foundation
import PaywallTestSupport
import PaywallCore
import Testing
@testable import PaywallStore

/// `--db postgres://…` refused clearly before anything connects, and a password never in a
/// message. Needs no PostgreSQL server.
@Suite("PostgreSQL locations")
struct PostgresLocationTests {
    @Test("malformed URLs are refused, naming what is wrong and never the password", arguments: [
        ("postgres://ada:s3cret@db.example", "names no database"),
        ("postgres://db.example:5432/paywall", "names no user"),
        ("postgres://ada:s3cret@db.example/paywall?sslmode=maybe", "sslmode must be"),
        ("postgres://ada:s3cret@db.example/paywall?search_path=a;DROP", "search_path must be"),
        ("postgres://ada:s3cret@db.example/paywall?application_name=x", "unknown URL parameter"),
        ("postgres://", "not a URL"),
        ("postgres://ada:s3cret@/paywall", "not a URL"),
        ("postgres://ada:s3cret@/paywall?host=run/postgresql", "must be the folder of the server's socket"),
        ("postgres://ada:s3cret@db.example/paywall?host=/run/postgresql", "names a host and a socket folder"),
        ("postgres://ada:s3cret@/paywall?host=/run/postgresql&sslmode=require", "cannot be met through a unix socket"),
        ("postgres://ada:s3cret@/paywall?host=/" + String(repeating: "d", count: 100), "longer than the 107 bytes"),
        ("postgres://ada:s3cret@db.example/paywall?requirepeer=postgres", "requirepeer applies to a unix socket"),
        ("postgres://ada:s3cret@/paywall?host=/run/postgresql&requirepeer=", "requirepeer must name the system user"),
        ("postgres://ada:s3cret@/paywall?host=/run/postgresql&requirepeer=no-such-user-here", "which is no user on this system"),
    ])
    func refused(url: String, reason: String) {
        do {
            let store = try Store(location: url)
            try? store.close()
            Issue.record("\(url) was accepted")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
            #expect(!error.description.contains("s3cret"), "the password leaked: \(error)")
        }
    }

    @Test("wrong credentials, or none where the server asks for a password: a message that says what to check, never the password", arguments: TestBackend.postgresOnly)
    func credentials(backend: TestBackend) throws {
        let url = try #require(TestBackend.postgresURL)
        var parts = try #require(URLComponents(string: url))
        parts.password = nil
        let withoutPassword = try #require(parts.string)
        parts.password = "not-the-password"
        let wrongPassword = try #require(parts.string)
        for (location, expected) in [
            (withoutPassword, "the server asks for a password and the URL gives none"),
            (wrongPassword, "check the URL's user, password and database name"),
        ] {
            do {
                let store = try Store(location: location)
                try? store.close()
                // A server that trusts local connections asks for nothing: nothing to check.
            } catch {
                #expect(error.description.contains(expected), "\(error)")
                #expect(!error.description.contains("not-the-password"))
            }
        }
    }

    @Test("a server that is not there: unavailable, quickly, without the password")
    func unreachable() {
        let started = Date()
        do {
            _ = try Store(location: "postgres://ada:s3cret@127.0.0.1:1/paywall")
            Issue.record("a store opened with nothing listening")
        } catch {
            guard case .unavailable = error else { Issue.record("expected unavailable, got \(error)"); return }
            #expect(!error.description.contains("s3cret"))
            #expect(error.description.contains("postgres://ada@127.0.0.1:1/paywall"))
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("nothing at the socket: unavailable, quickly, naming the socket's folder and not the password")
    func noSocket() throws {
        let folder = try TestFolder("paywall-no-socket")
        let started = Date()
        do {
            _ = try Store(location: "postgres://ada:s3cret@/paywall?host=\(folder.url.path)")
            Issue.record("a store opened with no socket")
        } catch {
            guard case .unavailable = error else { Issue.record("expected unavailable, got \(error)"); return }
            #expect(!error.description.contains("s3cret"))
            #expect(error.description.contains("postgres://ada@/paywall?host=\(folder.url.path)"), "\(error)")
            #expect(error.description.contains("no socket at \(folder.url.path)/.s.PGSQL.5432"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("socket URLs: the folder as a parameter or percent-encoded as the host, the port naming the socket file, no TLS")
    func socketForms() throws {
        let plain = try PostgresLocation(url: "postgres://ada:pw@/paywall?host=/run/postgresql")
        #expect(plain.socketPath == "/run/postgresql/.s.PGSQL.5432" && plain.host.isEmpty && plain.sslMode == "disable")
        #expect(plain.password == "pw" && plain.database == "paywall" && plain.username == "ada")
        #expect(plain.redacted == "postgres://ada@/paywall?host=/run/postgresql")
        let encoded = try PostgresLocation(url: "postgresql://ada@%2Fvar%2Frun%2Fpostgresql:5433/paywall?search_path=t1")
        #expect(encoded.socketPath == "/var/run/postgresql/.s.PGSQL.5433" && encoded.searchPath == "t1")
        #expect(encoded.redacted == "postgres://ada@:5433/paywall?host=/var/run/postgresql&search_path=t1")
        // The redacted form is itself a URL that names the same socket.
        #expect(try PostgresLocation(url: encoded.redacted).socketPath == encoded.socketPath)
        #expect(try PostgresLocation(url: "postgres://ada@/paywall?host=/run/pg/&sslmode=prefer").socketPath == "/run/pg/.s.PGSQL.5432")
        // A network URL is unchanged: no socket.
        #expect(try PostgresLocation(url: "postgres://ada@db.example/paywall").socketPath == nil)
    }

    /// A unix socket bound at `folder`/.s.PGSQL.5432 by this process (nothing answers on it).
    static func bindSocket(in folder: String) throws -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array((folder + "/.s.PGSQL.5432").utf8CString)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: path.map { UInt8(bitPattern: $0) }) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0, "bind: \(String(cString: strerror(errno)))")
        return descriptor
    }

    @Test("the socket's owner: in a folder anyone may write, only with requirepeer naming its user; never a file that is not a socket")
    func socketOwner() throws {
        let me = try #require(getpwuid(geteuid())).pointee
        let myName = String(cString: me.pw_name)
        // A user this process is not (the one whose socket an attacker's would not be).
        let other = geteuid() == 0 ? "nobody" : "root"
        for (mode, openToAll) in [(0o777 as mode_t, true), (0o755 as mode_t, false)] {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pg-socket-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            #expect(chmod(folder, mode) == 0)
            let descriptor = try Self.bindSocket(in: folder)
            defer { close(descriptor) }
            func verify(_ query: String) throws {
                try #require(try PostgresLocation(url: "postgres://ada:s3cret@/paywall?host=\(folder)\(query)").socketCheck).verify()
            }
            if openToAll {
                #expect(throws: PostgresConnectionPool.Unavailable.self, "a folder anyone may write, no requirepeer") { try verify("") }
                do { try verify("") } catch let error as PostgresConnectionPool.Unavailable {
                    #expect(error.detail.contains("may be written by anyone") && error.detail.contains("requirepeer=postgres"), "\(error.detail)")
                }
                // What opening a store there says: the refusal, not a connection's error.
                do {
                    let store = try Store(location: "postgres://ada:s3cret@/paywall?host=\(folder)")
                    try? store.close()
                    Issue.record("opened a store through a socket in a folder anyone may write")
                } catch {
                    #expect(error.description.contains("may be written by anyone") && !error.description.contains("s3cret"), "\(error)")
                }
            } else {
                try verify("")
            }
            try verify("&requirepeer=\(myName)")
            #expect(throws: PostgresConnectionPool.Unavailable.self, "owned by \(myName), not \(other)") { try verify("&requirepeer=\(other)") }
            // No socket there (PostgreSQL down): no connection tried, and the message says so.
            let gone = try #require(try PostgresLocation(url: "postgres://ada@/paywall?host=\(folder)&requirepeer=\(myName)")
                .socketCheck.map { PostgresLocation.SocketCheck(path: $0.path + ".gone", folder: $0.folder, requirePeer: $0.requirePeer) })
            #expect(throws: PostgresConnectionPool.Unavailable.self) { try gone.verify() }
        }
        // A plain file under the socket's name.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pg-file-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(FileManager.default.createFile(atPath: folder + "/.s.PGSQL.5432", contents: Data()))
        #expect(throws: PostgresConnectionPool.Unavailable.self) {
            try #require(try PostgresLocation(url: "postgres://ada@/paywall?host=\(folder)").socketCheck).verify()
        }
        // Shown in the redacted URL, which parses back to the same check.
        let named = try PostgresLocation(url: "postgres://ada:pw@/paywall?host=/run/postgresql&requirepeer=\(myName)")
        #expect(named.redacted == "postgres://ada@/paywall?host=/run/postgresql&requirepeer=\(myName)")
        #expect(try PostgresLocation(url: named.redacted).requirePeer?.uid == me.pw_uid)
    }

    @Test("through the server's unix socket: the same database as over TCP", .enabled(if: TestBackend.postgresSocketURL != nil))
    func throughSocket() throws {
        let tcp = try #require(TestBackend.postgresURL)
        let socket = try #require(TestBackend.postgresSocketURL)
        let schema = try PostgresTestSchema(baseURL: tcp)
        let overSocket = try Store(location: socket + (socket.contains("?") ? "&" : "?") + "search_path=\(schema.name)")
        defer { try? overSocket.close() }
        #expect(try PostgresLocation(url: socket).socketPath != nil, "PAYWALL_TEST_POSTGRES_SOCKET_URL names no socket: \(socket)")
        _ = try overSocket.addTitle(id: TitleID(validating: "socket-times"), name: "Socket Times", publisher: "Unix", actor: .system)
        let overTCP = try Store(location: schema.url)
        defer { try? overTCP.close() }
        #expect(try overTCP.title(id: TitleID(validating: "socket-times"))?.name == "Socket Times")
    }

    @Test("URL forms: scheme in any case, percent-encoded passwords decoded once, loopback without TLS by default")
    func forms() throws {
        let upper = try PostgresLocation(url: "POSTGRES://ada:p%25w@localhost/paywall")
        #expect(PostgresLocation.isURL("POSTGRESQL://x@y/z"))
        #expect(upper.password == "p%w" && upper.sslMode == "disable" && upper.port == 5432)
        #expect(upper.redacted == "postgres://ada@localhost:5432/paywall")
        #expect(try PostgresLocation(url: "postgres://ada@db.example/paywall").sslMode == "require")
        #expect(PostgresLocation.redact("postgres://ada:s3cret@h/d") == "postgres://ada:***@h/d")
        // An IPv6 literal: connected to without its URL brackets, shown with them.
        let six = try PostgresLocation(url: "postgres://ada@[::1]:5433/paywall")
        #expect(six.host == "::1" && six.port == 5433 && six.sslMode == "disable")
        #expect(six.redacted == "postgres://ada@[::1]:5433/paywall")
        #expect(try PostgresLocation(url: "postgres://ada@[2001:db8::5]/paywall").host == "2001:db8::5")
    }
}
