import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import PaywallCore
import PaywallTestSupport
@testable import PaywallStore

/// Stripe event ids the server answered 2xx, collected from concurrent tasks.
final class EventLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var acknowledged: Set<String> = []
    func acknowledge(_ id: String) { lock.withLock { _ = acknowledged.insert(id) } }
    var count: Int { lock.withLock { acknowledged.count } }
    var ids: Set<String> { lock.withLock { acknowledged } }
}

@Suite("Stripe webhooks across kill -9", .serialized)
struct BillingCrashTests {
    static let secret = StripeFixtures.secret

    /// A session of its own with short timeouts: requests to the killed server fail fast
    /// instead of queueing behind other suites' requests on the shared session.
    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.httpMaximumConnectionsPerHost = 8
        return URLSession(configuration: configuration)
    }()

    static func post(_ base: String, _ body: [UInt8]) async -> Int {
        guard let url = URL(string: base + "/v1/billing/stripe") else { return 0 }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        request.setValue("application/json; charset=utf-8", forHTTPHeaderField: "Content-Type")
        request.setValue(StripeFixtures.signature(body, at: Date()), forHTTPHeaderField: "Stripe-Signature")
        guard let (_, response) = try? await session.data(for: request) else { return 0 }
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// One column of every stored event (synchronous: GRDB's blocking read).
    static func column(_ store: Store, _ name: String) throws -> [String] {
        try store.read { try $0.fetchValues(String.self, "SELECT \(name) FROM billing_events") }
    }

    @Test("kill -9 under a stream of events: every event answered 2xx is applied once; the rest, redelivered, once")
    func killDuringEvents() async throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["keys", "generate"]).status == 0)
        let count = 60
        // Accounts, plan and price mapping, written before the server starts.
        var accounts: [AccountID] = []
        do {
            let store = try Store(path: cli.database)
            _ = try store.addTitle(id: TitleID(rawValue: "euronews"), name: "Euronews", publisher: "E", actor: .system)
            _ = try store.addPlan(id: PlanID(rawValue: "news"), name: "News", period: .month, bundle: .all, actor: .system)
            _ = try store.mapBillingProduct(provider: .stripe, externalID: "price_news", planID: PlanID(rawValue: "news"), actor: .system)
            for n in 0..<count {
                accounts.append(try store.createAccount(email: EmailAddress("r\(n)@example.com"), displayName: nil, passwordHash: "$scrypt$x", actor: .system).id)
            }
            try store.close()
        }
        let now = Date()
        // Per account: the Checkout session that links its customer, then its subscription.
        let events: [[(String, [UInt8])]] = accounts.enumerated().map { n, account in
            [
                ("evt_c\(n)", StripeFixtures.event(id: "evt_c\(n)", type: "checkout.session.completed", created: now,
                                                   object: StripeFixtures.checkout(customer: "cus_\(n)", account: account.rawValue, subscription: "sub_\(n)"))),
                ("evt_s\(n)", StripeFixtures.event(id: "evt_s\(n)", type: "customer.subscription.created", created: now.addingTimeInterval(1),
                                                   object: StripeFixtures.subscription(id: "sub_\(n)", customer: "cus_\(n)", status: "active", price: "price_news",
                                                                                       periodEnd: now.addingTimeInterval(30 * 86_400)))),
            ]
        }
        let environment = ["PAYWALL_STRIPE_WEBHOOK_SECRETS": Self.secret]
        let server = try ServerProcess(cli, environment: environment)
        let base = server.base
        let ledger = EventLedger()
        let work = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        for n in stride(from: worker, to: count, by: 4) {
                            for (id, body) in events[n] where await Self.post(base, body) / 100 == 2 { ledger.acknowledge(id) }
                        }
                    }
                }
            }
        }
        let deadline = Date().addingTimeInterval(120)
        while ledger.count < 30, Date() < deadline { try await Task.sleep(for: .milliseconds(2)) }
        server.stop(SIGKILL)
        await work.value
        let acknowledged = ledger.ids
        #expect(acknowledged.count >= 30 && acknowledged.count < 2 * count, "the kill came at \(acknowledged.count) of \(2 * count) events")

        // Before any redelivery: every acknowledged event is stored.
        do {
            let store = try Store(path: cli.database)
            #expect(try store.health().isHealthy)
            let stored = Set(try Self.column(store, "event_id"))
            #expect(acknowledged.subtracting(stored).isEmpty, "acknowledged events lost: \(acknowledged.subtracting(stored).sorted())")
            try store.close()
        }

        // Stripe delivers again what was not acknowledged (and may repeat the rest).
        let restarted = try ServerProcess(cli, environment: environment)
        for pair in events {
            for (id, body) in pair {
                let status = await Self.post(restarted.base, body)
                #expect(status == 200, "\(id): \(status)")
            }
        }
        // Counted by provider, type and outcome.
        let metricsURL = try #require(URL(string: restarted.base + "/metrics"))
        let (metricsData, _) = try await Self.session.data(from: metricsURL)
        let metrics = String(decoding: metricsData, as: UTF8.self)
        #expect(metrics.contains(#"paywall_billing_events_total{provider="stripe",type="customer.subscription.created",outcome="applied"}"#),
                "\(metrics.prefix(3000))")
        #expect(metrics.contains(#"paywall_billing_events_total{provider="stripe",type="unverified",outcome="received"} 120"#))
        if acknowledged.count > 0 {
            #expect(metrics.contains(#"outcome="duplicate"}"#))
        }
        restarted.stop(SIGTERM)

        let store = try Store(path: cli.database)
        defer { try? store.close() }
        let outcomes = try Self.column(store, "outcome")
        #expect(outcomes.count == 2 * count && outcomes.allSatisfy { $0 == "applied" })
        for account in accounts {
            let memberships = try store.memberships(accountID: account)
            #expect(memberships.count == 1 && memberships.first?.source == .stripe && memberships.first?.status == .active)
            if let membership = memberships.first { #expect(try store.membershipHistory(id: membership.id).count == 1) }
        }
    }
}
