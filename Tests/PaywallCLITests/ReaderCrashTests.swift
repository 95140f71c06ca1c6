import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import PaywallCore
@testable import PaywallStore

/// What the server acknowledged to the readers, collected from concurrent tasks.
final class ReaderLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var accounts: Set<String> = []
    private var received: Set<String> = []
    private var sent: Set<String> = []
    private var spent: Set<String> = []
    private var failures: [String: Int] = [:]
    private var finished = false

    func account(_ email: String) { lock.withLock { _ = accounts.insert(email) } }
    /// A refresh token the server handed out (acknowledged: it must be usable).
    func received(_ token: String) { lock.withLock { _ = received.insert(token) } }
    /// A token about to be refreshed: from now on its state is not known to the reader.
    func sending(_ token: String) { lock.withLock { _ = sent.insert(token) } }
    /// A token whose refresh the server acknowledged: it must never rotate again.
    func spent(_ token: String) { lock.withLock { _ = spent.insert(token) } }
    /// A sign-up not acknowledged (a status, or the client's error): said when too few land.
    func failed(_ reason: String) { lock.withLock { failures[reason, default: 0] += 1 } }
    func finish() { lock.withLock { finished = true } }

    var isFinished: Bool { lock.withLock { finished } }
    var failureSummary: String {
        lock.withLock { failures.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ") }
    }

    var accountCount: Int { lock.withLock { accounts.count } }
    var snapshot: (accounts: Set<String>, live: Set<String>, spent: Set<String>) {
        lock.withLock { (accounts, received.subtracting(sent), spent) }
    }
}

@Suite("readers' accounts across kill -9", .serialized)
struct ReaderCrashTests {
    /// A session of its own (as `BillingCrashTests`): on the shared one these requests queued
    /// behind other suites' and a CI run once saw fewer than 12 sign-ups in 60 s; a request
    /// to the killed server also fails fast.
    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 30
        configuration.httpMaximumConnectionsPerHost = 8
        return URLSession(configuration: configuration)
    }()

    static func post(_ base: String, _ path: String, _ body: [String: String]) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await session.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
    }

    @Test("kill -9 under sign-ups and refreshes: every acknowledged account and session is stored, no refresh token rotates twice")
    func killDuringSignUpsAndRefreshes() async throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["keys", "generate"]).status == 0)
        // Every sign-up comes from 127.0.0.1: lift the per-address sign-up limit.
        let server = try ServerProcess(cli, environment: ["PAYWALL_SIGNUPS_PER_ADDRESS": "100000"])
        let base = server.base
        let ledger = ReaderLedger()
        let work = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        for n in 0..<100 {
                            let email = "w\(worker)-\(n)@example.com"
                            let reply: (Int, [String: Any])
                            do { reply = try await Self.post(base, "/v1/accounts", ["email": email, "password": "a long enough passphrase", "name": "W"]) } catch {
                                ledger.failed("\(type(of: error)) \((error as NSError).code)")
                                continue
                            }
                            guard reply.0 == 201, var current = reply.1["refreshToken"] as? String else {
                                ledger.failed("status \(reply.0)")
                                continue
                            }
                            ledger.account(email)
                            ledger.received(current)
                            for _ in 0..<3 {
                                ledger.sending(current)
                                guard let (status, body) = try? await Self.post(base, "/v1/sessions/refresh", ["refreshToken": current]),
                                      status == 200, let next = body["refreshToken"] as? String
                                else { break }
                                ledger.spent(current)
                                ledger.received(next)
                                current = next
                            }
                        }
                    }
                }
            }
            ledger.finish()
        }
        // Waits for a dozen acknowledged sign-ups, however slow the machine: a CI run once
        // saw every suite stall for a minute at once (all finished within 0.2 s of each
        // other), and a wall-clock minute here ended the test before any sign-up landed.
        let deadline = Date().addingTimeInterval(300)
        while ledger.accountCount < 12, !ledger.isFinished, Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        server.stop(SIGKILL)
        await work.value
        let (accounts, live, spent) = ledger.snapshot
        #expect(accounts.count >= 12 && !live.isEmpty && !spent.isEmpty,
                "\(accounts.count) sign-ups acknowledged before the kill; not acknowledged: \(ledger.failureSummary)")

        let store = try Store(path: cli.database)
        defer { try? store.close() }
        #expect(try store.health().isHealthy)
        let missing = try accounts.filter { try store.account(email: EmailAddress($0)) == nil }
        #expect(missing.isEmpty, "acknowledged sign-ups lost: \(missing.sorted())")
        let unusable = try live.filter { try store.session(token: $0) == nil }
        #expect(unusable.isEmpty, "\(unusable.count) acknowledged refresh tokens unusable after the restart")
        // Checked after the live ones: a spent token presented again may revoke its family.
        for token in spent {
            let again = try store.refreshSession(token: token, lifetime: 3_600)
            if case .rotated = again { Issue.record("a spent refresh token rotated again") }
        }
    }
}
