import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallTokens
import Testing

/// The billing routes over HTTP: the body's exact bytes verified, one service call,
/// refusals answered 400 with nothing written.
@Suite("Billing routes")
struct BillingRouteTests {
    static let stripeSignature = HTTPField.Name("Stripe-Signature")!

    static func fixture(configured: Bool = true, backend: TestBackend = .sqlite) throws -> ServiceFixture {
        let f = try seededFixture(backend: backend) { if configured { $0.stripeWebhookSecrets = [StripeFixtures.secret] } }
        _ = try f.service.mapBillingProduct(provider: .stripe, externalID: "price_news", plan: "news", actor: f.admin)
        return f
    }

    static func stripe(_ client: any TestClientProtocol, _ body: [UInt8], signature: String?) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let signature { headers[stripeSignature] = signature }
        return try await client.execute(uri: "/v1/billing/stripe", method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    @Test("Stripe events signed over their exact bytes are applied, once; the reader then reads as a member", arguments: TestBackend.all)
    func stripeApplied(backend: TestBackend) async throws {
        let f = try Self.fixture(backend: backend)
        let account = try f.service.account("reader@example.com").id.rawValue
        let now = f.service.now
        // Bytes as Stripe sends them: pretty-printed, which re-encoding would change.
        let checkout = Array(String(decoding: StripeFixtures.event(id: "evt_1", type: "checkout.session.completed", created: now,
                                                                   object: StripeFixtures.checkout(customer: "cus_1", account: account, subscription: "sub_1")), as: UTF8.self)
            .replacingOccurrences(of: ",\"", with: ",\n  \"").utf8)
        let created = StripeFixtures.event(id: "evt_2", type: "customer.subscription.created", created: now, object: StripeFixtures.subscription(
            id: "sub_1", customer: "cus_1", status: "active", price: "price_news", periodEnd: now.addingTimeInterval(30 * 86_400)))
        let token = try accessToken(f, "reader@example.com")
        try await withAPI(f) { client in
            let first = try await Self.stripe(client, checkout, signature: StripeFixtures.signature(checkout, at: now))
            #expect(first.status == .ok)
            let firstOutcome = try first.object()["outcome"] as? String
            #expect(firstOutcome == "applied")
            let second = try await Self.stripe(client, created, signature: StripeFixtures.signature(created, at: now))
            let secondOutcome = try second.object()["outcome"] as? String
            #expect(secondOutcome == "applied")
            let again = try await Self.stripe(client, created, signature: StripeFixtures.signature(created, at: now))
            let duplicate = try again.object() as? [String: String]
            #expect(duplicate == ["provider": "stripe", "event": "evt_2", "type": "customer.subscription.created", "outcome": "duplicate"])
            let access = try await client.access(article: "a1", tags: ["embargo"], token: token)
            let level = try access.object()["access"] as? String
            #expect(level == "full")
        }
    }

    @Test("refused: bad or missing signature (400 invalid_signature), wrong media type (415), too large (413), not configured (404); nothing written", arguments: TestBackend.all)
    func stripeRefused(backend: TestBackend) async throws {
        let f = try Self.fixture(backend: backend)
        let body = StripeFixtures.event(id: "evt_1", type: "checkout.session.completed", created: f.service.now,
                                        object: StripeFixtures.checkout(customer: "cus_1", account: nil, subscription: nil))
        let before = try f.snapshot()
        try await withAPI(f) { client in
            let missing = try await Self.stripe(client, body, signature: nil)
            #expect(missing.status == .badRequest && missing.errorCode == "invalid_signature")
            let wrong = try await Self.stripe(client, body, signature: StripeFixtures.signature(body, at: f.service.now, secret: "whsec_other_secret_0000"))
            #expect(wrong.status == .badRequest && wrong.errorCode == "invalid_signature")
            #expect(wrong.errorMessage == "the event's signature could not be verified")
            let plain = try await client.execute(uri: "/v1/billing/stripe", method: .post, headers: [.contentType: "text/plain", Self.stripeSignature: "t=1"],
                                                 body: ByteBuffer(bytes: body))
            #expect(plain.status == .unsupportedMediaType)
            let huge = [UInt8](repeating: 0x20, count: 70_000)
            let large = try await Self.stripe(client, huge, signature: StripeFixtures.signature(huge, at: f.service.now))
            #expect(large.status == .contentTooLarge)
        }
        #expect(try f.snapshot() == before)

        let bare = try Self.fixture(configured: false, backend: backend)
        let bareBefore = try bare.snapshot()
        try await withAPI(bare) { client in
            let response = try await Self.stripe(client, body, signature: StripeFixtures.signature(body, at: bare.service.now))
            #expect(response.status == .notFound && response.errorCode == "billing_not_configured")
            let apple = try await client.post("/v1/billing/apple", #"{"signedPayload": "a.b.c"}"#)
            #expect(apple.status == .notFound && apple.errorCode == "billing_not_configured")
            // Whatever the body: the setting is what is missing.
            for body in ["{}", "not json", #"{"other": 1}"#] {
                let refused = try await client.post("/v1/billing/apple", body)
                #expect(refused.status == .notFound && refused.errorCode == "billing_not_configured", "\(body)")
                let stripe = try await client.post("/v1/billing/stripe", body, contentType: "text/plain")
                #expect(stripe.status == .notFound && stripe.errorCode == "billing_not_configured", "\(body)")
            }
        }
        #expect(try bare.snapshot() == bareBefore)
    }

    @Test("App Store notifications: the reader's token, a signed notification applied, refusals 400")
    func apple() async throws {
        let chain = try AppleTestChain()
        let f = try seededFixture {
            $0.appleRootCertificate = chain.rootDER
            $0.appleBundleID = "com.example"
            $0.appleEnvironment = "Sandbox"
        }
        f.clock.advance(by: Date().timeIntervalSince1970.rounded(.down) - f.clock.now().timeIntervalSince1970)
        _ = try f.service.mapBillingProduct(provider: .apple, externalID: "com.example.news", plan: "news", actor: f.admin)
        let token = try accessToken(f, "reader@example.com")
        try await withAPI(f) { client in
            let tokenResponse = try await client.execute(uri: "/v1/me/app-account-token", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(tokenResponse.status == .ok)
            let appToken = try #require(try tokenResponse.object()["appAccountToken"] as? String)
            let again = try await client.execute(uri: "/v1/me/app-account-token", method: .get, headers: [.authorization: "Bearer \(token)"])
            let sameToken = try again.object()["appAccountToken"] as? String
            #expect(sameToken == appToken)
            let unauthenticated = try await client.get("/v1/me/app-account-token")
            #expect(unauthenticated.status == .unauthorized)

            let signed = try chain.notification(
                type: "SUBSCRIBED", subtype: "INITIAL_BUY", signedDate: f.service.now, originalTransactionID: "1", productID: "com.example.news",
                expires: f.service.now.addingTimeInterval(30 * 86_400), appAccountToken: appToken)
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["signedPayload": signed]), as: UTF8.self)
            let applied = try await client.post("/v1/billing/apple", body)
            let outcome = try applied.object()["outcome"] as? String
            #expect(applied.status == .ok && outcome == "applied")
            let access = try await client.access(article: "a1", tags: ["embargo"], token: token)
            let level = try access.object()["access"] as? String
            #expect(level == "full")

            let before = try f.snapshot()
            let forged = try await client.post("/v1/billing/apple", #"{"signedPayload": "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"}"#)
            #expect(forged.status == .badRequest && forged.errorCode == "invalid_signature")
            let unknown = try await client.post("/v1/billing/apple", #"{"signedPayload": "x", "extra": 1}"#)
            #expect(unknown.status == .badRequest && unknown.errorCode == "unknown_field")
            #expect(try f.snapshot() == before)
        }
    }

    @Test("the admin API keeps the price and product mappings", arguments: TestBackend.all)
    func adminMappings(backend: TestBackend) async throws {
        let f = try Self.fixture(backend: backend)
        let admin = try adminToken(f, [.catalog])
        let members = try adminToken(f, [.members])
        try await withAPI(f) { client in
            let made = try await client.post("/admin/v1/billing/products", #"{"provider": "apple", "product": "com.example.news", "plan": "news"}"#, token: admin)
            #expect(made.status == .created)
            let list = try await client.execute(uri: "/admin/v1/billing/products", method: .get, headers: [.authorization: "Bearer \(admin)"])
            let products = try #require(try list.object()["products"] as? [[String: String]])
            #expect(products == [["provider": "apple", "product": "com.example.news", "plan": "news"], ["provider": "stripe", "product": "price_news", "plan": "news"]])
            // Audited, as every admin read is.
            #expect(try f.service.auditEntries(limit: 1).first?.action == "admin.billing.products")
            let noPlan = try await client.post("/admin/v1/billing/products", #"{"provider": "stripe", "product": "price_x", "plan": "nope"}"#, token: admin)
            #expect(noPlan.status == .notFound && noPlan.errorCode == "plan_not_found")
            let badProvider = try await client.post("/admin/v1/billing/products", #"{"provider": "paypal", "product": "x", "plan": "news"}"#, token: admin)
            #expect(badProvider.status == .badRequest && badProvider.errorCode == "invalid_field")
            let forbidden = try await client.post("/admin/v1/billing/products", #"{"provider": "stripe", "product": "x", "plan": "news"}"#, token: members)
            #expect(forbidden.status == .forbidden)
        }
    }

    @Test("the admin API links a customer or a waiting subscription to an account and answers the events applied; refusals are JSON errors with stable codes and write nothing", arguments: TestBackend.all)
    func adminLinks(backend: TestBackend) async throws {
        let f = try Self.fixture(backend: backend)
        let admin = try adminToken(f, [.members])
        let catalog = try adminToken(f, [.catalog])
        let now = f.service.now
        let end = now.addingTimeInterval(30 * 86_400)
        // Two subscriptions of customers no Checkout linked: both wait.
        for (event, subscription, customer) in [("evt_1", "sub_1", "cus_1"), ("evt_2", "sub_2", "cus_2")] {
            let body = StripeFixtures.event(id: event, type: "customer.subscription.created", created: now, object: StripeFixtures.subscription(
                id: subscription, customer: customer, status: "active", price: "price_news", periodEnd: end))
            #expect(try f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: now)).outcome == .pending)
        }
        try await withAPI(f) { client in
            let linked = try await client.post("/admin/v1/billing/links", #"{"provider": "stripe", "account": "reader@example.com", "customer": "cus_1"}"#, token: admin)
            #expect(linked.status == .ok)
            let results = try #require(try linked.object()["results"] as? [[String: String]])
            #expect(results == [["provider": "stripe", "event": "evt_1", "type": "customer.subscription.created", "outcome": "applied"]])
            #expect(try f.service.auditEntries(limit: 5).contains { $0.action == "billing.link" && $0.actor.rawValue.hasPrefix("admin:") }, "audited with the admin as the actor")

            let before = try f.snapshot()
            func refused(_ body: String, token: String? = nil) async throws -> (HTTPResponse.Status, String?) {
                let response = try await client.post("/admin/v1/billing/links", body, token: token ?? admin)
                return (response.status, response.errorCode)
            }
            #expect(try await refused(#"{"provider": "stripe", "account": "reader@example.com", "subscription": "sub_9"}"#) == (.notFound, "no_events_waiting"))
            #expect(try await refused(#"{"provider": "stripe", "account": "reader@example.com", "subscription": "sub_1"}"#) == (.ok, nil), "already this account's: nothing to do")
            #expect(try await refused(#"{"provider": "stripe", "account": "nobody@example.com", "subscription": "sub_2"}"#) == (.notFound, "account_not_found"))
            #expect(try await refused(#"{"provider": "stripe", "account": "reader@example.com", "customer": "cus_2", "subscription": "sub_2"}"#) == (.badRequest, "invalid_field"))
            #expect(try await refused(#"{"provider": "stripe", "account": "reader@example.com"}"#) == (.badRequest, "invalid_field"))
            #expect(try await refused(#"{"provider": "apple", "account": "reader@example.com", "customer": "cus_2"}"#) == (.badRequest, "invalid_field"))
            #expect(try await refused(#"{"provider": "apple", "account": "reader@example.com", "subscription": "sub_2"}"#) == (.badRequest, "invalid_value"))
            #expect(try await refused(#"{"provider": "stripe", "account": "reader@example.com", "subscription": "sub_2", "extra": 1}"#) == (.badRequest, "unknown_field"))
            #expect(try await refused(#"{"provider": "stripe", "account": "reader@example.com", "subscription": "sub_2"}"#, token: catalog).0 == .forbidden)
            #expect(try f.snapshot() == before, "refusals write nothing")

            // The other subscription, given to another account without its customer.
            _ = try await f.service.signUp(email: "partner@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
            let given = try await client.post("/admin/v1/billing/links", #"{"provider": "stripe", "account": "partner@example.com", "subscription": "sub_2"}"#, token: admin)
            #expect(given.status == .ok)
            let outcomes = try #require(try given.object()["results"] as? [[String: String]]).map { $0["outcome"] }
            #expect(outcomes == ["applied"])
            #expect(try await refused(#"{"provider": "stripe", "account": "reader@example.com", "subscription": "sub_2"}"#) == (.conflict, "subscription_linked"))
            #expect(try await refused(#"{"provider": "stripe", "account": "partner@example.com", "customer": "cus_1"}"#) == (.conflict, "customer_linked"))
        }
    }

    @Test("the admin API lists the events that wait or failed, applies them again, sets aside one that never will, and shows an account's billing; refusals write nothing", arguments: TestBackend.all)
    func adminEvents(backend: TestBackend) async throws {
        let f = try Self.fixture(backend: backend)
        let admin = try adminToken(f, [.members])
        let catalog = try adminToken(f, [.catalog])
        let now = f.service.now
        let end = now.addingTimeInterval(30 * 86_400)
        _ = try f.service.linkStripeCustomer("cus_1", account: "reader@example.com", actor: f.admin)
        // A linked customer's subscription at a price no plan has: failed. Another customer's: pending.
        for (event, subscription, customer, price) in [("evt_1", "sub_1", "cus_1", "price_new"), ("evt_2", "sub_2", "cus_2", "price_news")] {
            let body = StripeFixtures.event(id: event, type: "customer.subscription.created", created: now, object: StripeFixtures.subscription(
                id: subscription, customer: customer, status: "active", price: price, periodEnd: end))
            _ = try f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: now))
        }
        try await withAPI(f) { client in
            let listed = try await client.call(.get, "/admin/v1/billing/events", token: admin)
            #expect(listed.status == .ok && listed.headers[.cacheControl] == "private, no-store", "\(listed.text)")
            let events = try #require(try listed.object()["events"] as? [[String: Any]])
            #expect(Set(events.compactMap { $0["event"] as? String }) == ["evt_1", "evt_2"])
            #expect(events.first { $0["event"] as? String == "evt_1" }?["outcome"] as? String == "failed")
            #expect(events.first { $0["event"] as? String == "evt_2" }?["outcome"] as? String == "pending")
            #expect(try f.service.auditEntries(limit: 1).first?.action == "admin.billing.events")

            let before = try f.snapshot()
            let refusals: [(HTTPRequest.Method, String, String?, String?, HTTPResponse.Status, String?)] = [
                (.get, "/admin/v1/billing/events?limit=0", nil, admin, .badRequest, "invalid_parameter"),
                (.get, "/admin/v1/billing/events?status=failed", nil, admin, .badRequest, "unknown_parameter"),
                (.get, "/admin/v1/billing/events", nil, catalog, .forbidden, nil),
                (.post, "/admin/v1/billing/events/retry", #"{"all":true}"#, admin, .badRequest, "unknown_field"),
                (.post, "/admin/v1/billing/events/retry", nil, catalog, .forbidden, nil),
                (.post, "/admin/v1/billing/events/dismiss", #"{"provider":"stripe","event":"evt_9","reason":"typo"}"#, admin, .notFound, "billing_event_not_found"),
                (.post, "/admin/v1/billing/events/dismiss", #"{"provider":"paypal","event":"evt_2","reason":"typo"}"#, admin, .badRequest, "invalid_field"),
                (.post, "/admin/v1/billing/events/dismiss", #"{"provider":"stripe","event":"evt_2","reason":"   "}"#, admin, .badRequest, "invalid_name"),
                (.post, "/admin/v1/billing/events/dismiss", #"{"provider":"stripe","event":"evt_2"}"#, admin, .badRequest, "missing_field"),
                (.post, "/admin/v1/billing/events/dismiss", #"{"provider":"stripe","event":"evt_2","reason":"x","by":"me"}"#, admin, .badRequest, "unknown_field"),
                (.post, "/admin/v1/billing/events/dismiss", #"{"provider":"stripe","event":"evt_2","reason":"x"}"#, catalog, .forbidden, nil),
                (.get, "/admin/v1/accounts/nobody@example.com/billing", nil, admin, .notFound, "account_not_found"),
                (.get, "/admin/v1/accounts/reader@example.com/billing?limit=5", nil, admin, .badRequest, "unknown_parameter"),
            ]
            for (method, path, body, token, status, code) in refusals {
                let reply = try await client.call(method, path, body, token: token)
                #expect(reply.status == status && (code == nil || reply.errorCode == code), "\(method) \(path) \(body ?? ""): \(reply.status) \(reply.text)")
            }
            #expect(try f.snapshot() == before, "refusals write nothing")

            // The price mapped: a retry applies the failed one; the pending one still waits.
            _ = try f.service.mapBillingProduct(provider: .stripe, externalID: "price_new", plan: "news", actor: f.admin)
            let retried = try await client.call(.post, "/admin/v1/billing/events/retry", token: admin)
            #expect(retried.status == .ok, "\(retried.text)")
            let outcomes = try #require(try retried.object()["results"] as? [[String: String]]).reduce(into: [String: String]()) { $0[$1["event"] ?? ""] = $1["outcome"] }
            #expect(outcomes == ["evt_1": "applied", "evt_2": "pending"], "\(retried.text)")
            let retryAudit = try #require(try f.service.auditEntries(limit: 5).first { $0.action == "billing.retry" })
            #expect(retryAudit.actor == .admin("alice") || retryAudit.actor.rawValue.hasPrefix("admin:"), "\(retryAudit.actor.rawValue)")

            // The pending one will never be linked: set aside, with who and why.
            let dismissed = try await client.call(.post, "/admin/v1/billing/events/dismiss", #"{"provider":"stripe","event":"evt_2","reason":"a test customer"}"#, token: admin)
            #expect(try dismissed.status == .ok && dismissed.object()["outcome"] as? String == "ignored", "\(dismissed.text)")
            #expect(try dismissed.string("detail").contains("a test customer"))
            let again = try await client.call(.post, "/admin/v1/billing/events/dismiss", #"{"provider":"stripe","event":"evt_2","reason":"twice"}"#, token: admin)
            #expect(again.status == .conflict && again.errorCode == "billing_event_settled")
            let empty = try await client.call(.get, "/admin/v1/billing/events", token: admin)
            #expect((try empty.object()["events"] as? [Any])?.isEmpty == true, "\(empty.text)")

            let billing = try await client.call(.get, "/admin/v1/accounts/reader%40example.com/billing", token: admin)
            #expect(billing.status == .ok, "\(billing.text)")
            let overview = try billing.object()
            #expect((overview["links"] as? [[String: Any]])?.map { $0["customer"] as? String } == ["cus_1"])
            #expect((overview["subscriptions"] as? [[String: Any]])?.map { $0["id"] as? String } == ["sub_1"])
            #expect((overview["events"] as? [[String: Any]])?.map { $0["event"] as? String } == ["evt_1"])
            #expect(try f.service.auditEntries(limit: 1).first?.action == "admin.billing.view")
        }
    }
}
