import Foundation
import Testing
import PaywallBilling
import PaywallCore
import PaywallCrypto
import PaywallTestSupport

@Suite("Stripe signatures")
struct StripeSignatureTests {
    let body = Array(#"{"id":"evt_1","object":"event"}"#.utf8)
    let now = Date(timeIntervalSince1970: 1_767_225_600)
    var verifier: StripeSignatureVerifier { StripeSignatureVerifier(secrets: [StripeFixtures.secret]) }

    @Test("HMAC-SHA256 matches RFC 4231 test case 2")
    func hmacVector() throws {
        let mac = try #require(HMACSHA256.authenticate(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
        #expect(mac.map { String(format: "%02x", $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("a signature made as Stripe makes it verifies, also among other v1 and v0 values")
    func valid() throws {
        let header = StripeFixtures.signature(body, at: now)
        try verifier.verify(body: body, header: header, now: now)
        let t = Int64(now.timeIntervalSince1970)
        let wrong = String(repeating: "ab", count: 32)
        let v1 = header.split(separator: ",")[1]
        try verifier.verify(body: body, header: "t=\(t),v1=\(wrong),\(v1),v0=\(wrong)", now: now)
        // The same signature from Stripe's own helper in the module.
        #expect(StripeSignatureVerifier.header(body: body, secret: StripeFixtures.secret, timestamp: t) == header)
    }

    @Test("several secrets: any of them verifies (rolling a secret)")
    func rotation() throws {
        let old = StripeSignatureVerifier(secrets: ["whsec_old_secret_0123456789", StripeFixtures.secret])
        try old.verify(body: body, header: StripeFixtures.signature(body, at: now), now: now)
        try old.verify(body: body, header: StripeFixtures.signature(body, at: now, secret: "whsec_old_secret_0123456789"), now: now)
    }

    @Test("refusals: no header, no timestamp, no v1, wrong secret, changed body, too old, too far ahead")
    func refusals() {
        let t = Int64(now.timeIntervalSince1970)
        #expect(throws: BillingError.missingSignature) { try verifier.verify(body: body, header: nil, now: now) }
        #expect(throws: BillingError.malformedSignature("no timestamp 't'")) {
            try verifier.verify(body: body, header: "v1=" + String(repeating: "0", count: 64), now: now)
        }
        #expect(throws: BillingError.malformedSignature("no v1 signature")) { try verifier.verify(body: body, header: "t=\(t),v0=abc", now: now) }
        #expect(throws: BillingError.signatureMismatch) {
            try verifier.verify(body: body, header: StripeFixtures.signature(body, at: now, secret: "whsec_someone_else_0000"), now: now)
        }
        #expect(throws: BillingError.signatureMismatch) {
            try verifier.verify(body: body + [0x20], header: StripeFixtures.signature(body, at: now), now: now)
        }
        #expect(throws: BillingError.timestampOutOfTolerance(seconds: 301)) {
            try verifier.verify(body: body, header: StripeFixtures.signature(body, at: now.addingTimeInterval(-301)), now: now)
        }
        #expect(throws: BillingError.timestampOutOfTolerance(seconds: -400)) {
            try verifier.verify(body: body, header: StripeFixtures.signature(body, at: now.addingTimeInterval(400)), now: now)
        }
        // At the edge of the tolerance it still verifies.
        #expect(throws: Never.self) { try verifier.verify(body: body, header: StripeFixtures.signature(body, at: now.addingTimeInterval(-300)), now: now) }
    }

    @Test("events from Stripe's object shapes: period end from the items, or from the subscription (older API versions)")
    func parsing() throws {
        let end = Date(timeIntervalSince1970: 1_770_000_000)
        let current = StripeFixtures.event(id: "evt_a", type: "customer.subscription.updated", created: now, object: StripeFixtures.subscription(
            id: "sub_1", customer: "cus_1", status: "past_due", price: "price_news", periodEnd: end, cancelAtPeriodEnd: true))
        let parsed = try #require(try StripeEvent.parse(current, grace: 86_400).change)
        #expect(parsed.customer == "cus_1")
        #expect(parsed.subscription == SubscriptionState(
            id: "sub_1", products: ["price_news"], status: .pastDue, providerStatus: "past_due", periodEnd: end, graceEnd: now.addingTimeInterval(86_400),
            cancelAtPeriodEnd: true))
        let legacy = StripeFixtures.event(id: "evt_b", type: "customer.subscription.created", created: now, object: StripeFixtures.subscription(
            id: "sub_1", customer: "cus_1", status: "trialing", price: "price_news", periodEnd: end, legacy: true))
        #expect(try StripeEvent.parse(legacy, grace: 0).change?.subscription?.periodEnd == end)
        let invoice = StripeFixtures.event(id: "evt_c", type: "invoice.paid", created: now, object: StripeFixtures.invoice(
            id: "in_1", customer: "cus_1", subscription: "sub_1", price: "price_news", periodEnd: end, paid: true))
        #expect(try StripeEvent.parse(invoice, grace: 0).change?.subscription == SubscriptionState(
            id: "sub_1", products: ["price_news"], status: .active, providerStatus: "invoice paid", periodEnd: end))
        // An upgrade's invoice: its proration lines (old price credited, new one charged for
        // the rest of the period) name no plan; the regular line does.
        let upgrade = StripeFixtures.event(id: "evt_u", type: "invoice.paid", created: now, object: StripeFixtures.upgradeInvoice(
            id: "in_2", customer: "cus_1", subscription: "sub_1", from: "price_news", to: "price_premium", periodEnd: end))
        #expect(try StripeEvent.parse(upgrade, grace: 0).change?.subscription?.products == ["price_premium"])
        // A renewal invoice carrying a mid-period change's pending proration, flagged (current
        // versions) under the line's invoice-item details: the regular line names the plan.
        var renewal = StripeFixtures.invoice(id: "in_5", customer: "cus_1", subscription: "sub_1", price: "price_premium", periodEnd: end, paid: true)
        var renewalLines = renewal["lines"] as? [String: Any] ?? [:]
        let regular = try #require((renewalLines["data"] as? [[String: Any]])?.first)
        var pending = regular
        pending["amount"] = 300
        pending["pricing"] = ["type": "price_details", "price_details": ["price": "price_news", "product": "prod_test"], "unit_amount_decimal": "300"]
        pending["parent"] = ["type": "invoice_item_details", "invoice_item_details": ["invoice_item": "ii_1", "proration": true, "subscription": "sub_1"] as [String: Any]]
        renewalLines["data"] = [pending, regular]
        renewal["lines"] = renewalLines
        let renewed = StripeFixtures.event(id: "evt_r", type: "invoice.paid", created: now, object: renewal)
        #expect(try StripeEvent.parse(renewed, grace: 0).change?.subscription?.products == ["price_premium"])
        // A failed invoice says the subscription is unpaid only for a renewal or a first
        // invoice: an upgrade's (`subscription_update`) or a one-off invoice changes nothing.
        for (reason, changes) in [("subscription_cycle", true), ("subscription_create", true), ("subscription_update", false), ("manual", false)] {
            var failed = StripeFixtures.invoice(id: "in_6", customer: "cus_1", subscription: "sub_1", price: "price_premium", periodEnd: end, paid: false)
            failed["billing_reason"] = reason
            let event = StripeFixtures.event(id: "evt_f", type: "invoice.payment_failed", created: now, object: failed)
            let change = try StripeEvent.parse(event, grace: 86_400).change
            #expect((change?.subscription?.status == .pastDue) == changes, "\(reason)")
            #expect((change == nil) == !changes, "\(reason)")
        }
        // The account a subscription names: in its metadata, and in an invoice's subscription
        // details (current versions under `parent`, older ones on the invoice); empty is none.
        #expect(try StripeEvent.parse(current, grace: 0).change?.subscriptionAccount == nil)
        let named = StripeFixtures.event(id: "evt_n", type: "customer.subscription.deleted", created: now, object: StripeFixtures.subscription(
            id: "sub_1", customer: "cus_1", status: "canceled", price: "price_news", periodEnd: end, account: "acc-2"))
        #expect(try StripeEvent.parse(named, grace: 0).change?.subscriptionAccount == "acc-2")
        var older = StripeFixtures.invoice(id: "in_3", customer: "cus_1", subscription: "sub_1", price: "price_news", periodEnd: end, paid: true)
        older["parent"] = NSNull()
        older["subscription"] = "sub_1"
        older["subscription_details"] = ["metadata": ["paywall_account": "acc-3"]]
        let olderChange = try StripeEvent.parse(StripeFixtures.event(id: "evt_o", type: "invoice.paid", created: now, object: older), grace: 0).change
        #expect(olderChange?.subscriptionAccount == "acc-3" && olderChange?.subscription?.id == "sub_1")
        let blank = StripeFixtures.event(id: "evt_e", type: "invoice.payment_failed", created: now, object: StripeFixtures.invoice(
            id: "in_4", customer: "cus_1", subscription: "sub_1", price: "price_news", periodEnd: end, paid: false, account: ""))
        #expect(try StripeEvent.parse(blank, grace: 0).change?.subscriptionAccount == nil)
        let other = StripeFixtures.event(id: "evt_d", type: "plan.created", created: now, object: StripeFixtures.object("price"))
        #expect(try StripeEvent.parse(other, grace: 0).change == nil)
        #expect(throws: BillingError.self) { try StripeEvent.parse(Array("[]".utf8), grace: 0) }
    }
}

@Suite("App Store signed data")
struct AppStoreVerificationTests {
    static let folder = repositoryRoot.appendingPathComponent("../shared/testdata/appstore").standardizedFileURL

    static func vector(_ name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent("mock_signed_data/\(name)"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func appleVerifier(bundle: String = "com.example") throws -> AppStoreVerifier {
        let root = try X509Certificate(der: Array(try Data(contentsOf: folder.appendingPathComponent("testCA.der"))))
        return AppStoreVerifier(root: root, bundleID: bundle, environment: "Sandbox")
    }

    @Test("Apple's testNotification verifies with testCA as the root, at its signedDate")
    func appleVector() throws {
        let parsed = try AppStoreNotification.parse(signedPayload: try Self.vector("testNotification"), verifier: try Self.appleVerifier(), now: Date())
        #expect(parsed.type == "TEST")
        #expect(parsed.change == nil)
        // Apple's signed transaction and renewal info verify too.
        let verifier = try Self.appleVerifier()
        let transaction = try verifier.verify(try Self.vector("transactionInfo"), at: Date())
        #expect(transaction["bundleId"]?.stringValue == "com.example")
        _ = try verifier.verify(try Self.vector("renewalInfo"), at: Date())
    }

    @Test("Apple's wrongBundleId and missingX5CHeaderClaim are refused")
    func appleRefusals() throws {
        #expect(throws: BillingError.wrongBundle("com.example.wrong")) {
            try AppStoreNotification.parse(signedPayload: try Self.vector("wrongBundleId"), verifier: try Self.appleVerifier(), now: Date())
        }
        #expect(throws: BillingError.malformedJWS("the header has no x5c chain")) {
            try AppStoreNotification.parse(signedPayload: try Self.vector("missingX5CHeaderClaim"), verifier: try Self.appleVerifier(), now: Date())
        }
    }

    @Test("Apple's vector is refused under another root, and after its certificates' validity")
    func wrongRoot() throws {
        let other = try AppleTestChain()
        let verifier = AppStoreVerifier(root: try X509Certificate(der: other.rootDER), bundleID: "com.example", environment: "Sandbox")
        #expect {
            try AppStoreNotification.parse(signedPayload: try Self.vector("testNotification"), verifier: verifier, now: Date())
        } throws: { error in
            if case .untrustedChain = error as? BillingError { true } else { false }
        }
        // A chain checked at a time outside its certificates' validity.
        #expect {
            try X509Chain.verify(
                leaf: try X509Certificate(der: other.leafDER), intermediates: [try X509Certificate(der: other.intermediateDER)],
                root: try X509Certificate(der: other.rootDER), at: Date().addingTimeInterval(20 * 365 * 86_400))
        } throws: { error in
            (error as? CryptoError) == .untrustedCertificate("certificate has expired")
        }
        // Without the intermediate, the leaf does not reach the root.
        #expect(throws: CryptoError.untrustedCertificate("unable to get local issuer certificate")) {
            try X509Chain.verify(leaf: try X509Certificate(der: other.leafDER), intermediates: [], root: try X509Certificate(der: other.rootDER), at: Date())
        }
    }

    @Test("a signedDate no time_t holds is refused before any check, never a crash; so is a chain time out of range")
    func hostileSignedDate() throws {
        let chain = try AppleTestChain()
        let verifier = AppStoreVerifier(root: try X509Certificate(der: chain.rootDER), bundleID: "com.example", environment: "Sandbox")
        for date in [1e22, -1e22, 1.5, -5.0] as [Double] {
            let signed = try chain.sign(["notificationType": "TEST", "notificationUUID": "u", "signedDate": date,
                                         "data": ["bundleId": "com.example", "environment": "Sandbox"]])
            #expect("\(date)") {
                try AppStoreNotification.parse(signedPayload: signed, verifier: verifier, now: Date())
            } throws: { error in
                if case .malformedJWS = error as? BillingError { true } else { false }
            }
        }
        for seconds in [1e20, -1e20, Double.infinity] {
            #expect(throws: CryptoError.untrustedCertificate("the time to check the chain at is out of range")) {
                try X509Chain.verify(
                    leaf: try X509Certificate(der: chain.leafDER), intermediates: [try X509Certificate(der: chain.intermediateDER)],
                    root: try X509Certificate(der: chain.rootDER), at: Date(timeIntervalSince1970: seconds))
            }
        }
    }

    @Test("a chain made here with Apple's OIDs verifies; without either OID, or a changed payload, it is refused")
    func madeChain() throws {
        let chain = try AppleTestChain()
        let verifier = AppStoreVerifier(root: try X509Certificate(der: chain.rootDER), bundleID: "com.example", environment: "Sandbox")
        let now = Date()
        let signed = try chain.notification(
            type: "SUBSCRIBED", subtype: "INITIAL_BUY", signedDate: now, originalTransactionID: "1000", productID: "com.example.news",
            expires: now.addingTimeInterval(30 * 86_400), appAccountToken: "7e3fb20b-4cdb-47cc-936d-99d65f608138")
        let parsed = try #require(try AppStoreNotification.parse(signedPayload: signed, verifier: verifier, now: now).change)
        #expect(parsed.customer == "7e3fb20b-4cdb-47cc-936d-99d65f608138")
        #expect(parsed.subscription?.status == .active && parsed.subscription?.products == ["com.example.news"])

        let parts = signed.split(separator: ".")
        let forged = "\(parts[0]).\(AppleTestChain.base64URL(Array("{\"signedDate\":\(Int64(now.timeIntervalSince1970 * 1000))}".utf8))).\(parts[2])"
        #expect(throws: BillingError.badSignature) { try verifier.verify(forged, at: now) }

        for (leaf, intermediate) in [(false, true), (true, false)] {
            let unmarked = try AppleTestChain(leafMarker: leaf, intermediateMarker: intermediate)
            let unmarkedVerifier = AppStoreVerifier(root: try X509Certificate(der: unmarked.rootDER), bundleID: "com.example", environment: "Sandbox")
            #expect {
                try unmarkedVerifier.verify(try unmarked.sign(["signedDate": Int64(now.timeIntervalSince1970 * 1000)]), at: now)
            } throws: { error in
                if case .missingMarker = error as? BillingError { true } else { false }
            }
        }
        // Our chain's leaf under Apple's root: refused.
        #expect(throws: BillingError.self) { try Self.appleVerifier().verify(signed, at: now) }
        // Wrong environment.
        let production = AppStoreVerifier(root: try X509Certificate(der: chain.rootDER), bundleID: "com.example", environment: "Production")
        #expect(throws: BillingError.wrongEnvironment("Sandbox")) { try AppStoreNotification.parse(signedPayload: signed, verifier: production, now: now) }
    }
}
