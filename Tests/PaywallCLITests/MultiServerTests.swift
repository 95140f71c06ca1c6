import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import PaywallCore
@testable import PaywallStore
import PaywallTestSupport

/// Two `paywall serve` processes on one PostgreSQL database, as behind a load balancer.
/// Runs when `PAYWALL_TEST_POSTGRES_URL` is set (CI sets it).
@Suite("Several servers on one PostgreSQL", .serialized, .enabled(if: TestBackend.postgresURL != nil))
struct MultiServerTests {
    /// The serve tests' setup (devices metered too), on a schema of the test database.
    func seeded() throws -> CLIHarness {
        let cli = try CLIHarness(backend: .postgres)
        let policies = cli.folder.appendingPathComponent("policies")
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        try Data(ServeTests.policy.utf8).write(to: policies.appendingPathComponent("test.policy"))
        for command in [
            ["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"],
            ["plan", "add", "news", "--name", "News", "--period", "month", "--titles", "euronews"],
            ["keys", "generate"],
        ] {
            let result = try cli.run(command)
            #expect(result.status == 0, "\(command): \(result.stderr)")
        }
        #expect(try cli.run(["account", "create", "--email", "reader@example.com"], input: "correct horse battery\n").status == 0)
        return cli
    }

    /// Server B runs two metered-read transactions at once (`PAYWALL_METER_COMMITTERS=2`):
    /// the races below then cross batches within a server as well as between servers.
    func servers(_ cli: CLIHarness) throws -> (ServerProcess, ServerProcess) {
        let arguments = ["--policies", cli.folder.appendingPathComponent("policies").path]
        return (try ServerProcess(cli, arguments: arguments), try ServerProcess(cli, arguments: arguments, environment: ["PAYWALL_METER_COMMITTERS": "2"]))
    }

    /// The policy revision a server reports in force.
    func revision(_ server: ServerProcess) async throws -> String {
        let text = try await APIClient(base: server.base).text("/readyz")
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        return object?["policyRevision"] as? String ?? ""
    }

    @Test("the meter's last unit, a membership granted through one server, a published policy: the same on both")
    func exactAcrossServers() async throws {
        let cli = try seeded()
        let (a, b) = try servers(cli)
        let clients = [APIClient(base: a.base), APIClient(base: b.base)]

        // A device with two of its three free articles spent (on A), then 20 different
        // articles asked at once, split over both servers: exactly one more is full.
        let device = try await clients[0].post("/v1/devices", "{}").deviceToken
        for article in ["a1", "a2"] {
            #expect(try await clients[0].access(title: "euronews", article: article, token: device) == "full")
        }
        let answers = await withTaskGroup(of: String.self) { group in
            for index in 0..<20 {
                group.addTask { (try? await clients[index % 2].access(title: "euronews", article: "race\(index)", token: device)) ?? "error" }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(answers.filter { $0 == "full" }.count == 1, "\(answers)")
        #expect(answers.filter { $0 == "teaser" }.count == 19, "\(answers)")

        // A reader whose meter is spent on A is offered the teaser on B; a membership
        // granted through the CLI counts on both at once.
        let reader = try cli.run(["token", "issue", "--account", "reader@example.com"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for article in ["r1", "r2", "r3"] {
            #expect(try await clients[0].access(title: "euronews", article: article, token: reader) == "full")
        }
        #expect(try await clients[1].access(title: "euronews", article: "r4", token: reader) == "teaser")
        #expect(try cli.run(["membership", "grant", "reader@example.com", "--plan", "news"]).status == 0)
        #expect(try await clients[1].access(title: "euronews", article: "r5", token: reader) == "full")
        #expect(try await clients[0].access(title: "euronews", article: "r6", token: reader) == "full")

        // A policy published through the CLI is in force on both within a few seconds.
        let before = try await revision(a)
        #expect(try await revision(b) == before)
        let proposed = cli.folder.appendingPathComponent("proposed")
        try FileManager.default.createDirectory(at: proposed, withIntermediateDirectories: true)
        try Data(ServeTests.policy.replacingOccurrences(of: "limit 3 per", with: "limit 5 per").utf8)
            .write(to: proposed.appendingPathComponent("test.policy"))
        let published = try cli.run(["policy", "publish", proposed.path, "--author", "ada", "--json"])
        #expect(published.status == 0, "\(published.stderr)")
        let object = try cli.json(published.stdout) as? [String: Any]
        let newRevision = try #require(object?["revision"] as? String)
        #expect(newRevision != before)
        let deadline = Date().addingTimeInterval(10)
        var seen = ("", "")
        while Date() < deadline {
            seen = (try await revision(a), try await revision(b))
            if seen == (newRevision, newRevision) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(seen == (newRevision, newRevision), "both servers switch within seconds")
        // Two more free articles for the device under the new policy (5 a month).
        #expect(try await clients[1].access(title: "euronews", article: "after1", token: device) == "full")
        #expect(a.stop() == 0)
        #expect(b.stop() == 0)
    }

    /// A JSON answer: its status, its top-level strings and its error code.
    struct Reply: Sendable {
        var status: Int
        var strings: [String: String] = [:]
        var errorCode: String?
    }

    /// A JSON request (loopback, a real HTTP client).
    static func call(_ base: String, _ path: String, _ body: [String: String]? = nil, raw: Data? = nil, token: String? = nil,
                     headers: [String: String] = [:]) async -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.httpBody = raw ?? (try? JSONSerialization.data(withJSONObject: body ?? [:]))
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        guard let (data, response) = try? await URLSession.shared.data(for: request) else { return Reply(status: 0) }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return Reply(
            status: (response as? HTTPURLResponse)?.statusCode ?? 0, strings: object.compactMapValues { $0 as? String },
            errorCode: (object["error"] as? [String: Any])?["code"] as? String)
    }

    /// `count` requests at once, in order of their index.
    static func race(_ count: Int, _ request: @escaping @Sendable (Int) async -> Reply) async -> [Reply] {
        await withTaskGroup(of: (Int, Reply).self) { group in
            for index in 0..<count { group.addTask { (index, await request(index)) } }
            return await group.reduce(into: [(Int, Reply)]()) { $0.append($1) }.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    @Test("one trial per person, one refresh successor, the gift limit, the sign-in throttle's count, a payment event once: exact across two servers")
    func otherExactnessAcrossServers() async throws {
        let cli = try CLIHarness(backend: .postgres)
        let policies = cli.folder.appendingPathComponent("policies")
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        try Data(ServeTests.policy.replacingOccurrences(of: "offer subscribe", with: "offer subscribe, trial 14 days").utf8)
            .write(to: policies.appendingPathComponent("test.policy"))
        for command in [
            ["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"],
            ["plan", "add", "news", "--name", "News", "--period", "month", "--titles", "euronews"], ["keys", "generate"],
        ] { #expect(try cli.run(command).status == 0) }
        let environment = ["PAYWALL_GIFT_MONTHLY_LIMIT": "3", "PAYWALL_STRIPE_WEBHOOK_SECRETS": StripeFixtures.secret]
        let a = try ServerProcess(cli, arguments: ["--policies", policies.path], environment: environment)
        let b = try ServerProcess(cli, arguments: ["--policies", policies.path], environment: environment)
        let bases = [a.base, b.base]
        let password = "correct horse battery staple"
        func signUp(_ email: String, on base: String) async throws -> Reply {
            let reply = await Self.call(base, "/v1/accounts", ["email": email, "password": password])
            #expect(reply.status == 201, "sign-up \(email): \(reply)")
            return reply
        }

        // One trial per person: two accounts of one person (the same address, plus-tagged),
        // twelve starts at once over both servers.
        let first = try await signUp("trial.person@example.com", on: a.base)
        let second = try await signUp("trial.person+work@example.com", on: b.base)
        let trialTokens = [first.strings["accessToken"] ?? "", second.strings["accessToken"] ?? ""]
        let trials = await Self.race(12) { index in await Self.call(bases[index % 2], "/v1/trials", [:], token: trialTokens[(index / 2) % 2]) }
        #expect(trials.filter { $0.status == 201 }.count == 1, "\(trials.map(\.status))")
        #expect(trials.filter { $0.status == 409 && $0.errorCode == "trial_already_used" }.count == 11)

        // A refresh token sent ten times at once over both servers: one successor for all.
        let session = try await signUp("refresh@example.com", on: a.base)
        let refreshToken = try #require(session.strings["refreshToken"])
        let refreshes = await Self.race(10) { index in await Self.call(bases[index % 2], "/v1/sessions/refresh", ["refreshToken": refreshToken]) }
        #expect(refreshes.allSatisfy { $0.status == 200 }, "\(refreshes.map(\.status))")
        #expect(Set(refreshes.compactMap { $0.strings["refreshToken"] }).count == 1, "one successor")

        // The gift limit (3 a month) with twelve gifts at once over both servers.
        let giver = try await signUp("giver@example.com", on: b.base)
        #expect(try cli.run(["membership", "grant", "giver@example.com", "--plan", "news"]).status == 0)
        let giverToken = try #require(giver.strings["accessToken"])
        let gifts = await Self.race(12) { index in
            await Self.call(bases[index % 2], "/v1/gifts", ["title": "euronews", "article": "g\(index)"], token: giverToken)
        }
        #expect(gifts.filter { $0.status == 201 }.count == 3, "\(gifts.map(\.status))")
        #expect(gifts.filter { $0.status == 403 }.count == 9)

        // Twenty wrong passwords at once over both servers: every attempt let through is
        // counted (none lost between the servers), and the block refuses the rest.
        _ = try await signUp("throttled@example.com", on: a.base)
        let guesses = await Self.race(20) { index in
            await Self.call(bases[index % 2], "/v1/sessions", ["email": "throttled@example.com", "password": "wrong password \(index)"])
        }
        let wrong = guesses.filter { $0.status == 401 }.count
        #expect(wrong + guesses.filter { $0.status == 429 }.count == 20, "\(guesses.map(\.status))")
        #expect(wrong >= 6 && wrong < 20, "the free attempts, then refused: \(guesses.map(\.status))")
        let store = try Store(location: cli.database)
        defer { try? store.close() }
        let counted = try store.read { db in
            try db.fetchValue(Int.self, "SELECT SUM(failures) FROM sign_in_failures WHERE key LIKE ?", ["%throttled@example.com%"]) ?? 0
        }
        #expect(counted == wrong, "\(counted) failures counted for \(wrong) wrong passwords answered")

        // One payment event delivered twelve times at once over both servers: taken once.
        let now = Date()
        let event = StripeFixtures.event(id: "evt_multi", type: "customer.subscription.created", created: now, object: StripeFixtures.subscription(
            id: "sub_multi", customer: "cus_multi", status: "active", price: "price_news", periodEnd: now.addingTimeInterval(30 * 86_400)))
        let signature = StripeFixtures.signature(event, at: now)
        let deliveries = await Self.race(12) { index in
            await Self.call(bases[index % 2], "/v1/billing/stripe", raw: Data(event), headers: ["Stripe-Signature": signature])
        }
        let outcomes = deliveries.map { $0.strings["outcome"] ?? "status \($0.status)" }
        #expect(outcomes.filter { $0 == "duplicate" }.count == 11 && outcomes.filter { $0 == "pending" }.count == 1, "\(outcomes)")
        let events = try store.read { db in try db.fetchValue(Int.self, "SELECT COUNT(*) FROM billing_events WHERE event_id = 'evt_multi'") ?? 0 }
        #expect(events == 1)
        #expect(a.stop() == 0)
        #expect(b.stop() == 0)
    }

    @Test("one server killed with SIGKILL while the other keeps answering: nothing acknowledged is lost")
    func killOneServer() async throws {
        let cli = try seeded()
        let (a, b) = try servers(cli)
        let clients = [APIClient(base: a.base), APIClient(base: b.base)]
        var devices: [String] = []
        for index in 0..<16 { devices.append(try await clients[index % 2].post("/v1/devices", "{}").deviceToken) }
        let acknowledged = AcknowledgedReads()
        let survivorAnswered = AcknowledgedReads()
        let checks = Task {
            await withTaskGroup(of: Void.self) { group in
                for (index, device) in devices.enumerated() {
                    group.addTask {
                        for article in 0..<3 {
                            let id = "k\(index)-\(article)"
                            // Half the devices on each server; after A dies its half fails.
                            if let answer = try? await clients[index % 2].access(title: "euronews", article: id, token: device), answer == "full" {
                                acknowledged.add(id)
                                if index % 2 == 1 { survivorAnswered.add(id) }
                            }
                        }
                    }
                }
            }
        }
        while acknowledged.count < 8, !Task.isCancelled { try await Task.sleep(for: .milliseconds(5)) }
        a.stop(SIGKILL)
        await checks.value
        // B kept answering: all of its devices' reads were full, and it still serves.
        #expect(survivorAnswered.count == 24, "B answered \(survivorAnswered.count) of its 24 reads")
        #expect(try await clients[1].get("/healthz").status == 200)
        #expect(try await clients[1].get("/readyz").status == 200)

        let store = try Store(location: cli.database)
        defer { try? store.close() }
        let stored = Set(try store.reads(since: .distantPast, limit: 100_000).map(\.articleID))
        let lost = acknowledged.all.subtracting(stored)
        #expect(lost.isEmpty, "answered full but not stored: \(lost.sorted())")
        #expect(b.stop() == 0)
    }
}

/// PostgreSQL restarted under two servers. Runs only when `PAYWALL_TEST_POSTGRES_RESTART`
/// holds the command that restarts the test cluster: CI runs it on its own, after the
/// other tests (a restart would fail any test using the database at that moment).
@Suite("PostgreSQL restarts under the servers", .serialized,
       .enabled(if: TestBackend.postgresURL != nil && ProcessInfo.processInfo.environment["PAYWALL_TEST_POSTGRES_RESTART"] != nil))
struct PostgresRestartTests {
    /// Runs `command` with /bin/sh and waits for it on a thread of its own (Foundation's
    /// `Process` was seen to miss the exit of `pg_ctlcluster`, whose server daemonizes).
    static func shell(_ command: String) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread {
                var pid: pid_t = 0
                let words: [String] = ["/bin/sh", "-c", command]
                let arguments = words.map { strdup($0) }
                defer { arguments.forEach { free($0) } }
                var argv = arguments + [nil]
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                // The daemonized server must not hold the test's output open.
                for descriptor: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_RDWR, 0) }
                guard posix_spawn(&pid, "/bin/sh", &actions, nil, &argv, environ) == 0 else {
                    continuation.resume(returning: -1)
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1, errno == EINTR {}
                continuation.resume(returning: (status & 0x7f) == 0 ? (status >> 8) & 0xff : -2)
            }.start()
        }
    }

    @Test("during a stream of checks: the servers report not ready, then recover by themselves")
    func restartDuringChecks() async throws {
        let cli = try MultiServerTests().seeded()
        let (a, b) = try MultiServerTests().servers(cli)
        let clients = [APIClient(base: a.base), APIClient(base: b.base)]
        let device = try await clients[0].post("/v1/devices", "{}").deviceToken
        let notReady = AcknowledgedReads()
        let stop = AcknowledgedReads()
        // Readiness and checks polled on both servers while the database goes away.
        let watcher = Task {
            var round = 0
            while stop.count == 0 {
                for (index, client) in clients.enumerated() {
                    if let reply = try? await client.get("/readyz"), reply.status == 503 { notReady.add("server\(index)") }
                    _ = try? await client.access(title: "euronews", article: "w\(round % 2)", token: device)
                }
                round += 1
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let command = ProcessInfo.processInfo.environment["PAYWALL_TEST_POSTGRES_RESTART"] ?? ""
        let status = await Self.shell(command)
        #expect(status == 0, "\(command) failed (\(status))")
        // Both recover without being restarted: ready again, and checks answered.
        let deadline = Date().addingTimeInterval(30)
        var ready = [false, false]
        while Date() < deadline, ready.contains(false) {
            for (index, client) in clients.enumerated() where !ready[index] {
                ready[index] = (try? await client.get("/readyz"))?.status == 200
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        stop.add("stop")
        await watcher.value
        #expect(ready == [true, true], "both servers ready again")
        #expect(notReady.count == 2, "both reported not ready while PostgreSQL was down: \(notReady.all)")
        for client in clients {
            #expect(try await client.access(title: "euronews", article: "after", token: device) == "full")
        }
        #expect(a.stop() == 0)
        #expect(b.stop() == 0)
    }
}
