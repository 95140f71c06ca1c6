import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import PaywallTestSupport
import PaywallCore
import PaywallService
@testable import PaywallStore

/// `paywall serve` as a process, on a free loopback port (a ``ChildProcess``: Foundation's
/// `Process` crashes now and then in a process with many open files).
final class ServerProcess: @unchecked Sendable {
    let child: ChildProcess
    private(set) var port = 0
    private var ended = false

    struct DidNotStart: Error, CustomStringConvertible {
        var status: Int32
        var stderr: String
        var description: String { "the server did not start (status \(status)): \(stderr)" }
    }

    init(_ cli: CLIHarness, arguments: [String] = [], environment: [String: String] = [:]) throws {
        child = try ChildProcess(
            executable: CLIHarness.executable.path, arguments: ["serve", "--port", "0"] + arguments,
            environment: cli.environment.merging(environment) { $1 }, directory: cli.folder.path,
            input: .null, output: .pipe, error: .pipe)
        // The first stdout line says where it listens. A server that neither says it nor
        // exits within 20 seconds is killed (the read below would otherwise wait for ever).
        let started = Mutex(false)
        let child = child
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) {
            if !started.withLock({ $0 }) { child.send(SIGKILL) }
        }
        var buffer = ""
        while let reader = child.output {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            buffer += String(decoding: chunk, as: UTF8.self)
            if let range = buffer.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let text = buffer[range]
                port = Int(text.split(separator: ":").last ?? "") ?? 0
                break
            }
        }
        started.withLock { $0 = port > 0 }
        guard port > 0 else {
            child.send(SIGKILL)  // said something else, or was killed above: it must end
            let stderr = String(decoding: child.error?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
            let exit = child.wait()
            ended = true
            throw DidNotStart(status: exit.code, stderr: stderr)
        }
        // Its output read to the end from now on: a server whose log fills a pipe nobody
        // reads blocks on its next line.
        for stream in [child.output, child.error] {
            guard let stream else { continue }
            Thread { while !stream.availableData.isEmpty {} }.start()
        }
    }

    var base: String { "http://127.0.0.1:\(port)" }
    var pid: pid_t { child.pid }

    /// Sends `signal` and waits for the exit status.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        child.send(signal)
        ended = true
        return child.wait().code
    }

    deinit {
        if !ended {
            child.send(SIGKILL)
            _ = child.wait()
        }
    }
}

/// A minimal JSON client over URLSession (a real HTTP client, loopback only).
struct APIClient: Sendable {
    let base: String

    struct Reply: Sendable {
        var status: Int
        var access: String
        var deviceToken: String
    }

    func post(_ path: String, _ body: String, token: String? = nil) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return try await send(request)
    }

    func text(_ path: String) async throws -> String {
        let (data, _) = try await URLSession.shared.data(for: URLRequest(url: URL(string: base + path)!))
        return String(decoding: data, as: UTF8.self)
    }

    func get(_ path: String) async throws -> Reply {
        try await send(URLRequest(url: URL(string: base + path)!))
    }

    private func send(_ request: URLRequest) async throws -> Reply {
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return Reply(status: status, access: object["access"] as? String ?? "", deviceToken: object["deviceToken"] as? String ?? "")
    }

    func access(title: String, article: String, token: String?) async throws -> String {
        let reply = try await post("/v1/access", #"{"title":"\#(title)","article":{"id":"\#(article)"}}"#, token: token)
        return reply.access.isEmpty ? "status \(reply.status)" : reply.access
    }
}

@Suite("paywall serve, end to end", .serialized)
struct ServeTests {
    /// A policy where anonymous devices are metered too (the shipped one meters signed-in
    /// readers only), so a device's meter can be seen surviving a restart.
    static let policy = """
        meter "free" { limit 3 per 30 days }
        defaults { access teaser; teaser 2 paragraphs }
        rule "members" { when membership.entitled; grant full }
        rule "metered" { when true; grant full using meter "free" }
        rule "offers" { when not membership.entitled; offer subscribe }
        """

    func seeded() throws -> CLIHarness {
        let cli = try CLIHarness()
        let policies = cli.folder.appendingPathComponent("policies")
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        try Data(Self.policy.utf8).write(to: policies.appendingPathComponent("test.policy"))
        for command in [
            ["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"],
            ["title", "add", "le-monde", "--name", "Le Monde", "--publisher", "LM"],
            ["plan", "add", "news", "--name", "News", "--period", "month", "--titles", "euronews"],
            ["keys", "generate"],
        ] { #expect(try cli.run(command).status == 0) }
        for email in ["member@example.com", "reader@example.com"] {
            #expect(try cli.run(["account", "create", "--email", email], input: "correct horse battery\n").status == 0)
        }
        #expect(try cli.run(["membership", "grant", "member@example.com", "--plan", "news"]).status == 0)
        return cli
    }

    func token(_ cli: CLIHarness, _ email: String) throws -> String {
        try cli.run(["token", "issue", "--account", email]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("without --demo and without a key it refuses to start; bad settings are usage errors before binding")
    func refusals() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["db", "migrate"]).status == 0, "a server without --demo needs an existing database")
        #expect(throws: ServerProcess.DidNotStart.self) { try ServerProcess(cli, environment: ["PAYWALL_DEV_KEYS": "0"]) }
        do {
            _ = try ServerProcess(cli, environment: ["PAYWALL_DEV_KEYS": "0"])
        } catch let error as ServerProcess.DidNotStart {
            #expect(error.status == 2)
            #expect(error.stderr.contains("no active signing key"), "\(error.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: cli.keys + "/keyring.json"), "no key was made")
        #expect(throws: ServerProcess.DidNotStart.self, "no development key unless asked for") { try ServerProcess(cli) }
        for (arguments, environment) in [(["--port", "70000"], [:]), ([], ["PAYWALL_PORT": "eighty"]), (["--port", "0", "--log-level", "loud"], [:]),
                                         (["--port", "0", "--access-ttl", "9d"], [:]), (["--port", "0", "--access-ttl", "-5m"], [:]), (["--port", "0", "--host", "no-such-host.invalid"], [:]), (["--port", "0"], ["PAYWALL_SCRYPT_LN": "3", "PAYWALL_TESTING": "0"]),
                                         (["--port", "0", "--log-format", "xml"], [:]), (["--port", "0", "--host", ""], [:]),
                                         (["--port", "0", "--host", "999.1.1.1"], [:]), (["--port", "0", "--host", "::zz"], [:]), (["--port", "0"], ["PAYWALL_HOST": "-web-"]),
                                         (["--port", "0"], ["PAYWALL_IDLE_TIMEOUT": "2h"]), (["--port", "0"], ["PAYWALL_IDLE_TIMEOUT": "soon"])] as [([String], [String: String])] {
            let result = try cli.run(["serve"] + arguments, extraEnvironment: environment)
            #expect(result.status == 64, "\(arguments) \(environment): \(result.stderr)")
            #expect(result.stderr.contains("invalid"), "\(result.stderr)")
        }
        // A misspelt setting is not ignored (the default would be taken silently).
        let typo = try cli.run(["serve", "--port", "0"], extraEnvironment: ["PAYWALL_PORTT": "9"])
        #expect(typo.status == 64 && typo.stderr.contains("PAYWALL_PORTT is not a setting of paywall (did you mean PAYWALL_PORT?)"), "\(typo.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.keys + "/keyring.json"), "refused before anything was made")
        // Without --demo, no development key even when asked for: a usage error, no key made.
        let devKeys = try cli.run(["serve", "--port", "0"], extraEnvironment: ["PAYWALL_DEV_KEYS": "1"])
        #expect(devKeys.status == 64 && devKeys.stderr.contains("serve makes no development key without --demo"), "\(devKeys.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.keys + "/keyring.json"), "no key was made")
        // The demo with a key folder that can be neither opened nor made: refused before a
        // database is made.
        let demoDatabase = cli.folder.appendingPathComponent("demo.sqlite").path
        let badKeys = try cli.run(["serve", "--demo", "--port", "0", "--db", demoDatabase, "--keys", cli.folder.appendingPathComponent("missing/Keys").path])
        #expect(badKeys.status == 2 && badKeys.stderr.contains("missing"), "\(badKeys.status) \(badKeys.stderr)")
        #expect(!FileManager.default.fileExists(atPath: demoDatabase), "no database left behind")
        let serviceLink = try cli.run(["serve"], extraEnvironment: ["PAYWALL_PORT": "tcp://10.0.0.7:8080"])
        #expect(serviceLink.status == 64 && serviceLink.stderr.contains("Kubernetes service link"), "\(serviceLink.stderr)")
    }

    /// Whether a TCP connection to the loopback port is accepted now.
    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    @Test("SIGTERM: the server stops accepting at once, then exits 0")
    func stopsAcceptingAtOnce() throws {
        let cli = try seeded()
        for round in 0..<3 {
            let server = try ServerProcess(cli, arguments: ["--policies", cli.folder.appendingPathComponent("policies").path])
            #expect(Self.accepts(server.port))
            // Its watchers sleep between looks (two seconds): the server stopped only after
            // their sleeps ended, and answered new connections meanwhile.
            Thread.sleep(forTimeInterval: 0.5)
            server.child.send(SIGTERM)
            Thread.sleep(forTimeInterval: 0.3)
            #expect(!Self.accepts(server.port), "round \(round): a connection accepted 0.3 s after SIGTERM")
            #expect(server.stop(SIGTERM) == 0)
        }
    }

    @Test("SIGHUP reloads the policy folder; a policy that does not check is refused and the one in force stays")
    func hangupReloads() async throws {
        let cli = try seeded()
        let folder = cli.folder.appendingPathComponent("policies")
        let server = try ServerProcess(cli, arguments: ["--policies", folder.path])
        let client = APIClient(base: server.base)
        func revision() async throws -> String {
            let object = try JSONSerialization.jsonObject(with: Data(try await client.text("/readyz").utf8)) as? [String: Any]
            return object?["policyRevision"] as? String ?? ""
        }
        func waitForChange(from old: String) async throws -> String {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let now = try await revision()
                if now != old { return now }
                try await Task.sleep(for: .milliseconds(100))
            }
            return old
        }
        let first = try await revision()
        #expect(!first.isEmpty)
        let file = folder.appendingPathComponent("test.policy")
        try Data(Self.policy.replacingOccurrences(of: "limit 3 per", with: "limit 4 per").utf8).write(to: file)
        try await Task.sleep(for: .milliseconds(2_500))
        #expect(try await revision() == first, "the folder is read on SIGHUP (or a reload), not watched")
        server.child.send(SIGHUP)
        let second = try await waitForChange(from: first)
        #expect(second != first, "the edited folder is in force after SIGHUP")
        // A policy that does not check: refused, the second stays, the server answers.
        try Data("rule \"broken\" { when nonsense.fact; grant full }".utf8).write(to: file)
        server.child.send(SIGHUP)
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await revision() == second)
        let member = try token(cli, "member@example.com")
        #expect(try await client.access(title: "euronews", article: "h1", token: member) == "full")
        #expect(server.stop(SIGTERM) == 0)
    }

    @Test("members, metered readers, concurrent checks, device meters across a restart, SIGTERM exits 0")
    func journey() async throws {
        let cli = try seeded()
        let arguments = ["--policies", cli.folder.appendingPathComponent("policies").path]
        let server = try ServerProcess(cli, arguments: arguments)
        let client = APIClient(base: server.base)

        // A member reads the plan's titles in full; elsewhere the meter applies.
        let member = try token(cli, "member@example.com")
        #expect(try await client.access(title: "euronews", article: "m1", token: member) == "full")
        // Elsewhere (le-monde is not in the plan) the member is a metered reader: the
        // meter's three, then the teaser; the plan's title stays full and costs no unit.
        var elsewhere: [String] = []
        for article in ["e1", "e2", "e3", "e4"] { elsewhere.append(try await client.access(title: "le-monde", article: article, token: member)) }
        #expect(elsewhere == ["full", "full", "full", "teaser"])
        #expect(try await client.access(title: "euronews", article: "m2", token: member) == "full")

        // A signed-in reader without a membership: exactly the policy's three, then the teaser.
        let reader = try token(cli, "reader@example.com")
        var answers: [String] = []
        for article in ["r1", "r2"] { answers.append(try await client.access(title: "le-monde", article: article, token: reader)) }
        #expect(answers == ["full", "full"])
        // 20 concurrent checks of different articles with one unit left: exactly one full.
        let concurrent = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<20 { group.addTask { try await client.access(title: "le-monde", article: "c\(index)", token: reader) } }
            var all: [String] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        #expect(concurrent.filter { $0 == "full" }.count == 1, "\(concurrent)")
        #expect(concurrent.filter { $0 == "teaser" }.count == 19)
        #expect(try await client.access(title: "le-monde", article: "r1", token: reader) == "full", "a re-read is free")

        // The same article twice at once, for a device: counted once.
        let device = try await client.post("/v1/devices", "{}")
        #expect(device.status == 201)
        let deviceToken = device.deviceToken
        async let first = client.access(title: "euronews", article: "d1", token: deviceToken)
        async let second = client.access(title: "euronews", article: "d1", token: deviceToken)
        #expect(try await [first, second] == ["full", "full"])
        #expect(try await client.access(title: "euronews", article: "d2", token: deviceToken) == "full")

        // SIGTERM: drains, closes, exits 0. The device's meter is in the store.
        #expect(server.stop(SIGTERM) == 0)
        let restarted = try ServerProcess(cli, arguments: arguments)
        let again = APIClient(base: restarted.base)
        #expect(try await again.access(title: "euronews", article: "d3", token: deviceToken) == "full", "third of three")
        #expect(try await again.access(title: "euronews", article: "d4", token: deviceToken) == "teaser", "the meter survived the restart")
        #expect(try await again.get("/healthz").status == 200)
        // Prometheus metrics over swift-metrics: decisions by access and rule, units, token checks, latency.
        #expect(try await again.get("/no-such-route").status == 404)
        let metrics = try await again.text("/metrics")
        #expect(metrics.contains(#"paywall_decisions_total{access="full",rule="metered"} 1"#), "\(metrics.prefix(2000))")
        #expect(metrics.contains(#"paywall_decisions_total{access="teaser",rule="defaults"} 1"#))
        #expect(metrics.contains(#"paywall_meter_units_consumed_total{meter="free"} 1"#))
        #expect(metrics.contains("paywall_token_verifications_total"))
        // The group commit: each metered transaction's time and reads.
        #expect(metrics.contains("paywall_meter_commit_duration_count"), "\(metrics.prefix(3000))")
        #expect(metrics.contains("paywall_meter_commit_reads"))
        // The SQLite writer's meter state: the device loaded once after the restart (d3),
        // then counted from memory (d4).
        #expect(metrics.contains("paywall_meter_state_loads_total 1"), "\(metrics.prefix(3000))")
        #expect(metrics.contains("paywall_meter_state_readers 1"))
        #expect(metrics.contains("paywall_meter_state_resets_total 0") || !metrics.contains("paywall_meter_state_resets_total "))
        // Requests and latency by route, method and status; errors only where there were.
        #expect(metrics.contains(#"http_server_request_duration_count{http_route="/v1/access",http_request_method="POST",http_response_status_code="200"} 2"#))
        #expect(metrics.contains(#"hb_requests{http_route="NotFound",http_request_method="GET",http_response_status_code="404"} 1"#))
        #expect(metrics.contains(#"hb_request_errors{http_route="NotFound",http_request_method="GET",error_type="404"} 1"#))
        #expect(!metrics.contains(#"error_type="200""#))
        // Errors by their code, the router's own 404 included.
        #expect(metrics.contains(#"paywall_errors_total{code="not_found"} 1"#), "\(metrics.prefix(3000))")
        #expect(restarted.stop(SIGTERM) == 0)

        let store = try Store(path: cli.database, configuration: { var c = StoreConfiguration(); c.readOnly = true; return c }())
        let deviceKey = try #require(try store.reads(since: .distantPast, limit: 10_000).first { $0.articleID == "d1" }?.subject)
        #expect(try store.meterUsage(subject: deviceKey, window: 30 * 86_400).used == 3)
    }

    @Test("a key retired with the CLI beside a running server: the server refuses its tokens within seconds, without a signal")
    func keyRetiredBeside() async throws {
        let cli = try seeded()
        let server = try ServerProcess(cli, arguments: ["--policies", cli.folder.appendingPathComponent("policies").path])
        let client = APIClient(base: server.base)
        let member = try token(cli, "member@example.com")
        #expect(try await client.access(title: "euronews", article: "k1", token: member) == "full")
        let old = try #require(try cli.json(try cli.run(["keys", "list", "--json"]).stdout) as? [[String: Any]]).compactMap { $0["kid"] as? String }
        #expect(old.count == 1)
        #expect(try cli.run(["keys", "rotate", "--publish-ahead", "0s"]).status == 0)
        #expect(try cli.run(["keys", "retire", "--force", "--", old[0]]).status == 0)
        var answer = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            answer = try await client.access(title: "euronews", article: "k1", token: member)
            if answer == "status 401" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(answer == "status 401", "a token of the retired key still answered: \(answer)")
        #expect(try await client.access(title: "euronews", article: "k1", token: try token(cli, "member@example.com")) == "full", "the new key's tokens verify")
        #expect(server.stop() == 0)
    }

    @Test("a connection that sends nothing is closed after PAYWALL_IDLE_TIMEOUT: headers never finished, or an idle keep-alive")
    func idleConnectionsClosed() throws {
        let cli = try seeded()
        let server = try ServerProcess(cli, arguments: ["--policies", cli.folder.appendingPathComponent("policies").path], environment: ["PAYWALL_IDLE_TIMEOUT": "1s"])
        defer { _ = server.stop() }
        for sent in ["GET /healthz HTTP/1.1\r\nHost: x\r\n", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"] {
            let started = Date()
            let received = try Self.sendAndReadUntilClosed(port: server.port, sent, timeout: 20)
            let waited = Date().timeIntervalSince(started)
            #expect(waited >= 0.9 && waited < 10, "closed after \(waited) s")
            if sent.hasSuffix("\r\n\r\n") { #expect(received.hasPrefix("HTTP/1.1 200"), "answered, then closed: \(received.prefix(60))") }
        }
    }

    /// Connects to 127.0.0.1:`port`, sends `text`, and reads until the server closes the
    /// connection (or `timeout` seconds pass: an error). Returns what was read.
    static func sendAndReadUntilClosed(port: Int, _ text: String, timeout: Int) throws -> String {
        let connection = try LoopbackSocket(port: port, timeout: timeout)
        let bytes = Array(text.utf8)
        guard connection.send(bytes) == bytes.count else { throw LoopbackSocket.Failed(step: "send") }
        let (received, closed) = connection.readUntilClosed()
        guard closed else { throw LoopbackSocket.Failed(step: "recv (still open after \(timeout) s)") }
        return String(decoding: received, as: UTF8.self)
    }

    @Test("--demo without a policy folder (run outside the repository): a message naming --policies, and no database made")
    func demoWithoutPolicies() throws {
        let cli = try CLIHarness()
        let missing = cli.folder.appendingPathComponent("Policies").path
        let result = try cli.run(["serve", "--demo", "--port", "0", "--db", cli.database], extraEnvironment: ["PAYWALL_POLICIES": missing])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("--policies"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.database), "no database before the policy is known good")
    }

    @Test("--demo never seeds the database only PAYWALL_DB names (production's, exported in the shell): exit 64, nothing made")
    func demoRefusesEnvironmentDatabase() throws {
        let cli = try CLIHarness()  // its environment names its database in PAYWALL_DB
        let result = try cli.run(["serve", "--demo", "--port", "0"])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("does not use the database PAYWALL_DB names; give it one with --db"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.database))
        #expect(!FileManager.default.fileExists(atPath: cli.folder.appendingPathComponent("paywall.sqlite").path))
    }

    @Test("a port already taken: a clear message and a non-zero exit, at once (no spinning)")
    func portTaken() throws {
        let cli = try seeded()
        let arguments = ["--policies", cli.folder.appendingPathComponent("policies").path]
        let first = try ServerProcess(cli, arguments: arguments)
        let started = Date()
        let second = try cli.run(["serve", "--port", String(first.port)] + arguments)
        #expect(second.status != 0)
        #expect(second.stderr.contains("cannot listen on 127.0.0.1:\(first.port)"), "\(second.stderr)")
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(first.stop() == 0)
    }

    @Test("kill -9 during a stream of metered checks: every read answered full is in the store")
    func killDuringChecks() async throws {
        let cli = try seeded()
        let arguments = ["--policies", cli.folder.appendingPathComponent("policies").path]
        let server = try ServerProcess(cli, arguments: arguments)
        let client = APIClient(base: server.base)
        // Each device has three free articles; many devices, checked concurrently.
        var minted: [String] = []
        for _ in 0..<12 { minted.append(try await client.post("/v1/devices", "{}").deviceToken) }
        let devices = minted
        let acknowledged = AcknowledgedReads()
        let checks = Task {
            await withTaskGroup(of: Void.self) { group in
                for (index, device) in devices.enumerated() {
                    group.addTask {
                        for article in 0..<3 {
                            if let answer = try? await client.access(title: "euronews", article: "k\(index)-\(article)", token: device), answer == "full" {
                                acknowledged.add("k\(index)-\(article)")
                            }
                        }
                    }
                }
            }
        }
        while acknowledged.count < 12, !Task.isCancelled { try await Task.sleep(for: .milliseconds(5)) }
        server.stop(SIGKILL)
        await checks.value
        #expect(acknowledged.count >= 12)

        // Restarted, the server knows every acknowledged read: each is a free re-read, and
        // a device whose three reads were all answered full is on the teaser.
        let restarted = try ServerProcess(cli, arguments: arguments)
        let again = APIClient(base: restarted.base)
        for read in acknowledged.all.sorted() {
            let parts = read.dropFirst().split(separator: "-")
            let device = devices[Int(parts[0]) ?? 0]
            #expect(try await again.access(title: "euronews", article: read, token: device) == "full", "\(read) re-read after the restart")
        }
        for (index, device) in devices.enumerated() where (0..<3).allSatisfy({ acknowledged.all.contains("k\(index)-\($0)") }) {
            #expect(try await again.access(title: "euronews", article: "k\(index)-new", token: device) == "teaser", "device \(index)'s meter survived")
        }
        #expect(restarted.stop(SIGTERM) == 0)

        let store = try Store(path: cli.database)
        let stored = Set(try store.reads(since: .distantPast, limit: 100_000).map(\.articleID))
        let lost = acknowledged.all.subtracting(stored)
        #expect(lost.isEmpty, "answered full but not stored: \(lost.sorted())")
        #expect(try store.health().isHealthy)
    }
}

/// Reads the server answered `full`, collected from concurrent tasks.
final class AcknowledgedReads: @unchecked Sendable {
    private let lock = NSLock()
    private var reads: Set<String> = []
    func add(_ read: String) { lock.lock(); reads.insert(read); lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return reads.count }
    var all: Set<String> { lock.lock(); defer { lock.unlock() }; return reads }
}
