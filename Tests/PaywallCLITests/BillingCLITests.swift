import Foundation
import PaywallCore
import PaywallTestSupport
import Testing

/// `paywall billing`: mappings, replay from a file, what could not be applied and why,
/// retry, an account's links and events.
@Suite("paywall billing")
struct BillingCLITests {
    @Test("a replay stops at a refused event, saying which and what before it was applied; the file replayed again once fixed")
    func replayStops() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        #expect(try cli.run(["plan", "add", "news", "--name", "News", "--period", "month", "--titles", "euronews"]).status == 0)
        #expect(try cli.run(["billing", "map", "stripe", "price_news", "news"]).status == 0)
        #expect(try cli.run(["account", "create", "--email", "ada@example.com"], input: "correct horse battery\n").status == 0)
        let account = try #require((try cli.json(try cli.run(["account", "show", "ada@example.com", "--json"]).stdout) as? [String: Any])?["account"] as? [String: Any])
        let id = try #require(account["id"] as? String)
        let now = Date()
        let end = now.addingTimeInterval(30 * 86_400)
        func events(status: String) -> String {
            [
                StripeFixtures.event(id: "evt_1", type: "checkout.session.completed", created: now,
                                     object: StripeFixtures.checkout(customer: "cus_1", account: id, subscription: "sub_1")),
                StripeFixtures.event(id: "evt_2", type: "customer.subscription.created", created: now.addingTimeInterval(1), object: StripeFixtures.subscription(
                    id: "sub_1", customer: "cus_1", status: status, price: "price_news", periodEnd: end)),
                StripeFixtures.event(id: "evt_3", type: "customer.subscription.updated", created: now.addingTimeInterval(2), object: StripeFixtures.subscription(
                    id: "sub_1", customer: "cus_1", status: "active", price: "price_news", periodEnd: end)),
            ].map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
        }
        let file = cli.folder.appendingPathComponent("events.jsonl")
        try events(status: "no-such-status").write(to: file, atomically: true, encoding: .utf8)
        let stopped = try cli.run(["billing", "replay", "stripe", file.path])
        #expect(stopped.status != 0)
        #expect(stopped.stderr.contains("event 2 of 3 was refused (the event is malformed"), "\(stopped.stderr)")
        #expect(stopped.stderr.contains("the 1 before it were taken (applied, or waiting or failed as listed) and none after it"), "\(stopped.stderr)")
        #expect(stopped.stdout.contains("evt_1") && stopped.stdout.contains("1 applied") && !stopped.stdout.contains("evt_2"), "what the first became: \(stopped.stdout)")
        let shown = try cli.run(["billing", "show", "ada@example.com"]).stdout
        #expect(shown.contains("evt_1") && !shown.contains("evt_3"), "\(shown)")
        try events(status: "active").write(to: file, atomically: true, encoding: .utf8)
        let fixed = try cli.run(["billing", "replay", "stripe", file.path, "--actor", "ops"])
        #expect(fixed.status == 0 && fixed.stdout.contains("2 applied"), "\(fixed.stdout) \(fixed.stderr)")
        // Both replays are audited, the stopped one with where it stopped.
        let entries = try #require(try cli.json(try cli.run(["audit", "list", "--json"]).stdout) as? [[String: Any]])
        let replays = entries.filter { $0["action"] as? String == "billing.replay" }
        #expect(replays.count == 2, "\(replays)")
        // `details` is the entry's JSON object as text.
        let details = replays.compactMap { entry -> [String: Any]? in
            guard let text = entry["details"] as? String else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        }
        #expect(details.count == 2)
        #expect(details.contains { $0["stoppedAt"] as? String == "2" && $0["events"] as? String == "3" && $0["applied"] as? String == "1" }, "\(details)")
        #expect(details.contains { $0["stoppedAt"] == nil && $0["source"] as? String == file.path && $0["duplicate"] as? String == "1" }, "\(details)")
        #expect(replays.contains { ($0["actor"] as? String)?.contains("ops") == true }, "\(replays)")
    }

    @Test("map prices, replay Stripe events from a file, list failures, retry, show the account")
    func flow() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        #expect(try cli.run(["plan", "add", "news", "--name", "News", "--period", "month", "--titles", "euronews"]).status == 0)
        #expect(try cli.run(["account", "create", "--email", "ada@example.com"], input: "correct horse battery\n").status == 0)
        let account = try #require((try cli.json(try cli.run(["account", "show", "ada@example.com", "--json"]).stdout) as? [String: Any])?["account"] as? [String: Any])
        let id = try #require(account["id"] as? String)

        let mapped = try cli.run(["billing", "map", "stripe", "price_news", "news"])
        #expect(mapped.status == 0 && mapped.stdout.contains("stripe price_news buys plan news"), "\(mapped.stderr)")
        #expect(try cli.run(["billing", "map", "paypal", "x", "news"]).status != 0)
        #expect(try cli.run(["billing", "map", "stripe", "price_x", "nope"]).stderr.contains("no plan 'nope'"))

        let now = Date()
        let end = now.addingTimeInterval(30 * 86_400)
        let events = [
            StripeFixtures.event(id: "evt_1", type: "checkout.session.completed", created: now,
                                 object: StripeFixtures.checkout(customer: "cus_1", account: id, subscription: "sub_1")),
            StripeFixtures.event(id: "evt_2", type: "customer.subscription.created", created: now.addingTimeInterval(1), object: StripeFixtures.subscription(
                id: "sub_1", customer: "cus_1", status: "active", price: "price_news", periodEnd: end)),
            StripeFixtures.event(id: "evt_3", type: "customer.subscription.created", created: now.addingTimeInterval(1), object: StripeFixtures.subscription(
                id: "sub_2", customer: "cus_1", status: "active", price: "price_unmapped", periodEnd: end)),
        ].map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
        let file = cli.folder.appendingPathComponent("events.jsonl")
        try events.write(to: file, atomically: true, encoding: .utf8)
        let replayed = try cli.run(["billing", "replay", "stripe", file.path])
        #expect(replayed.status == 0, "\(replayed.stderr)")
        #expect(replayed.stdout.contains("2 applied, 1 failed"))
        let again = try cli.run(["billing", "replay", "stripe", file.path, "--json"])
        let outcomes = (try cli.json(again.stdout) as? [[String: Any]])?.compactMap { $0["outcome"] as? String }
        #expect(outcomes == ["duplicate", "duplicate", "failed"])

        let failures = try cli.run(["billing", "failures"])
        #expect(failures.stdout.contains("evt_3") && failures.stdout.contains("no plan is mapped to stripe price 'price_unmapped'"))
        #expect(try cli.run(["billing", "map", "stripe", "price_unmapped", "news"]).status == 0)
        let retried = try cli.run(["billing", "retry"])
        #expect(retried.stdout.contains("1 applied"), "\(retried.stdout)")
        #expect(try cli.run(["billing", "failures"]).stdout.contains("every event was applied"))

        let shown = try cli.run(["billing", "show", "ada@example.com"])
        #expect(shown.stdout.contains("stripe  cus_1") && shown.stdout.contains("sub_1") && shown.stdout.contains("evt_2"), "\(shown.stdout)")
        let overview = try #require(try cli.json(try cli.run(["billing", "show", "ada@example.com", "--json"]).stdout) as? [String: Any])
        #expect((overview["subscriptions"] as? [Any])?.count == 2)
        let memberships = try cli.run(["membership", "show", "ada@example.com"])
        #expect(memberships.stdout.contains("stripe"), "\(memberships.stdout)")

        let token = try cli.run(["billing", "app-token", "ada@example.com"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: token) != nil)
        #expect(try cli.run(["billing", "app-token", "ada@example.com"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == token)
        let products = try cli.run(["billing", "products"])
        #expect(products.stdout.contains("price_news") && products.stdout.contains("price_unmapped"))

        // Support cannot delete an account Stripe still charges for (as the reader cannot)…
        let audit = try cli.run(["audit", "list", "--json"]).stdout
        let refused = try cli.run(["account", "delete", "ada@example.com", "--yes"])
        #expect(refused.status == 1 && refused.stderr.contains("still renews") && refused.stderr.contains("--even-if-renewing"), "\(refused.stderr)")
        #expect(try cli.run(["audit", "list", "--json"]).stdout == audit, "a refusal writes nothing")
        #expect(try cli.run(["account", "show", "ada@example.com"]).status == 0)
        // …until it says the provider's side is dealt with.
        #expect(try cli.run(["account", "delete", "ada@example.com", "--yes", "--even-if-renewing"]).status == 0)
        #expect(try cli.run(["account", "show", "ada@example.com"]).status == 1)
    }
    @Test("link-customer and link-subscription apply the events waiting for them; wrong ids, accounts and repeats are refused with a message and change nothing")
    func links() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        #expect(try cli.run(["plan", "add", "news", "--name", "News", "--period", "month", "--titles", "euronews"]).status == 0)
        #expect(try cli.run(["billing", "map", "stripe", "price_news", "news"]).status == 0)
        for email in ["ada@example.com", "bob@example.com"] {
            #expect(try cli.run(["account", "create", "--email", email], input: "correct horse battery\n").status == 0)
        }
        let now = Date()
        let end = now.addingTimeInterval(30 * 86_400)
        // Two customers no Checkout linked: their subscriptions wait.
        let events = [("evt_1", "sub_1", "cus_1"), ("evt_2", "sub_2", "cus_2")].map { event, subscription, customer in
            String(decoding: StripeFixtures.event(id: event, type: "customer.subscription.created", created: now, object: StripeFixtures.subscription(
                id: subscription, customer: customer, status: "active", price: "price_news", periodEnd: end)), as: UTF8.self)
        }.joined(separator: "\n")
        let file = cli.folder.appendingPathComponent("events.jsonl")
        try events.write(to: file, atomically: true, encoding: .utf8)
        #expect(try cli.run(["billing", "replay", "stripe", file.path]).stdout.contains("2 pending"))

        let customer = try cli.run(["billing", "link-customer", "ada@example.com", "cus_1"])
        #expect(customer.status == 0 && customer.stdout.contains("cus_1 is linked to ada@example.com; 1 waiting event applied"), "\(customer.stdout)\(customer.stderr)")
        let subscription = try cli.run(["billing", "link-subscription", "bob@example.com", "sub_2", "--provider", "stripe"])
        #expect(subscription.status == 0 && subscription.stdout.contains("subscription sub_2 is bob@example.com's; 1 waiting event applied"),
                "\(subscription.stdout)\(subscription.stderr)")
        #expect(try cli.run(["membership", "show", "bob@example.com"]).stdout.contains("news"))
        #expect(try cli.run(["billing", "show", "bob@example.com"]).stdout.contains("sub_2"))

        let before = try cli.run(["audit", "list", "--json"]).stdout
        func refused(_ arguments: [String], _ message: String, status: Int32 = 1) throws {
            let result = try cli.run(arguments)
            #expect(result.status == status && result.stderr.contains(message), "\(arguments): \(result.status) \(result.stderr)")
        }
        try refused(["billing", "link-customer", "bob@example.com", "cus_1"], "customer 'cus_1' is already linked to account")
        try refused(["billing", "link-customer", "bob@example.com", "not-a-customer"], "a Stripe customer id such as cus_")
        try refused(["billing", "link-subscription", "ada@example.com", "sub_2", "--provider", "stripe"], "subscription 'sub_2' is already account")
        try refused(["billing", "link-subscription", "ada@example.com", "sub_9", "--provider", "stripe"], "no event of subscription 'sub_9' is waiting for an account")
        try refused(["billing", "link-subscription", "ada@example.com", "2000000001"], "no event of subscription '2000000001' is waiting")
        try refused(["billing", "link-subscription", "ada@example.com", "sub_2"], "an App Store original transaction id (digits)")
        try refused(["billing", "link-subscription", "nobody@example.com", "sub_2", "--provider", "stripe"], "nobody@example.com")
        try refused(["billing", "link-subscription", "ada@example.com", "sub_2", "--provider", "paypal"], "the provider must be stripe or apple", status: 64)
        #expect(try cli.run(["audit", "list", "--json"]).stdout == before, "refusals change nothing")
    }
}
