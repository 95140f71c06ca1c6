import Foundation
import PaywallCrypto

/// Stripe events built from Stripe's own object shapes (`../shared/testdata/stripe/objects.json`,
/// from Stripe's published OpenAPI fixtures), with the fields a test sets, signed as Stripe signs.
public enum StripeFixtures {
    public static let secret = "whsec_test_0123456789abcdefghijklmnop"

    /// The example objects by type (`event`, `subscription`, `invoice`, `checkout.session`…).
    public nonisolated(unsafe) static let objects: [String: Any] = {  // read-only after first use
        let url = repositoryRoot.appendingPathComponent("../shared/testdata/stripe/objects.json").standardizedFileURL
        guard let data = try? Data(contentsOf: url), let objects = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return objects
    }()

    public static func object(_ type: String) -> [String: Any] { objects[type] as? [String: Any] ?? [:] }

    /// An event of `type` whose `data.object` is `object`, as JSON bytes.
    public static func event(id: String, type: String, created: Date, object: [String: Any]) -> [UInt8] {
        var event = self.object("event")
        event["id"] = id
        event["type"] = type
        event["created"] = Int(created.timeIntervalSince1970)
        event["api_version"] = "2025-03-31.basil"
        event["data"] = ["object": object]
        return (try? Array(JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]))) ?? []
    }

    /// A subscription object. `legacy`: the period end on the subscription (older API
    /// versions) instead of on its items.
    public static func subscription(
        id: String, customer: String, status: String, price: String, periodEnd: Date, cancelAtPeriodEnd: Bool = false, legacy: Bool = false,
        account: String? = nil
    ) -> [String: Any] {
        var subscription = object("subscription")
        subscription["id"] = id
        if let account { subscription["metadata"] = ["paywall_account": account] }
        subscription["customer"] = customer
        subscription["status"] = status
        subscription["cancel_at_period_end"] = cancelAtPeriodEnd
        subscription["cancel_at"] = NSNull()
        subscription["canceled_at"] = NSNull()
        subscription["ended_at"] = NSNull()
        var items = subscription["items"] as? [String: Any] ?? [:]
        var item = (items["data"] as? [[String: Any]])?.first ?? object("subscription_item")
        var priceObject = item["price"] as? [String: Any] ?? object("price")
        priceObject["id"] = price
        item["price"] = priceObject
        item["subscription"] = id
        if legacy {
            item["current_period_end"] = nil
            item["current_period_start"] = nil
            subscription["current_period_end"] = Int(periodEnd.timeIntervalSince1970)
        } else {
            item["current_period_end"] = Int(periodEnd.timeIntervalSince1970)
            item["current_period_start"] = Int(periodEnd.timeIntervalSince1970) - 30 * 86_400
        }
        items["data"] = [item]
        subscription["items"] = items
        return subscription
    }

    /// An invoice of a subscription (current API: the subscription under
    /// `parent.subscription_details`, the price under `pricing.price_details`).
    public static func invoice(
        id: String, customer: String, subscription: String, price: String, periodEnd: Date, paid: Bool, account: String? = nil
    ) -> [String: Any] {
        var invoice = object("invoice")
        invoice["id"] = id
        invoice["customer"] = customer
        invoice["status"] = paid ? "paid" : "open"
        invoice["billing_reason"] = "subscription_cycle"
        let metadata: [String: Any] = account.map { ["paywall_account": $0] } ?? [:]
        invoice["parent"] = ["type": "subscription_details", "quote_details": NSNull(),
                             "subscription_details": ["metadata": metadata, "subscription": subscription]]
        var lines = invoice["lines"] as? [String: Any] ?? [:]
        var line = (lines["data"] as? [[String: Any]])?.first ?? [:]
        line["period"] = ["start": Int(periodEnd.timeIntervalSince1970) - 30 * 86_400, "end": Int(periodEnd.timeIntervalSince1970)]
        line["pricing"] = ["type": "price_details", "price_details": ["price": price, "product": "prod_test"], "unit_amount_decimal": "1000"]
        // The published example line is a proration; a renewal's line is not.
        line["parent"] = ["type": "subscription_item_details", "subscription_item_details": [
            "invoice_item": NSNull(), "proration": false, "proration_details": ["credited_items": NSNull()],
            "subscription": subscription, "subscription_item": "si_test",
        ] as [String: Any]]
        lines["data"] = [line]
        invoice["lines"] = lines
        return invoice
    }

    /// A downgrade invoiced at once (`proration_behavior=always_invoice`): proration lines
    /// only, a credit for `from`'s unused time and a smaller charge for `to`'s remainder,
    /// paid at once (its total is not positive). It covers no period of the subscription.
    public static func prorationInvoice(id: String, customer: String, subscription: String, from: String, to: String, periodEnd: Date) -> [String: Any] {
        var invoice = Self.invoice(id: id, customer: customer, subscription: subscription, price: to, periodEnd: periodEnd, paid: true)
        var lines = invoice["lines"] as? [String: Any] ?? [:]
        let regular = (lines["data"] as? [[String: Any]])?.first ?? [:]
        lines["data"] = [
            prorationLine(regular, price: from, amount: -700, subscription: subscription),
            prorationLine(regular, price: to, amount: 300, subscription: subscription),
        ]
        invoice["lines"] = lines
        invoice["billing_reason"] = "subscription_update"
        return invoice
    }

    /// An upgrade's invoice: a proration credit for unused time on `from` (negative), a
    /// proration charge for `to`'s remainder, then `to`'s regular line.
    public static func upgradeInvoice(id: String, customer: String, subscription: String, from: String, to: String, periodEnd: Date) -> [String: Any] {
        var invoice = Self.invoice(id: id, customer: customer, subscription: subscription, price: to, periodEnd: periodEnd, paid: true)
        var lines = invoice["lines"] as? [String: Any] ?? [:]
        let regular = (lines["data"] as? [[String: Any]])?.first ?? [:]
        lines["data"] = [
            prorationLine(regular, price: from, amount: -500, subscription: subscription),
            prorationLine(regular, price: to, amount: 800, subscription: subscription), regular,
        ]
        invoice["lines"] = lines
        return invoice
    }

    /// A proration line of `price` for `amount` (negative: a credit), shaped as `regular`.
    static func prorationLine(_ regular: [String: Any], price: String, amount: Int, subscription: String) -> [String: Any] {
        var line = regular
        line["amount"] = amount
        line["pricing"] = ["type": "price_details", "price_details": ["price": price, "product": "prod_test"], "unit_amount_decimal": String(abs(amount))]
        line["parent"] = ["type": "subscription_item_details", "subscription_item_details": [
            "invoice_item": NSNull(), "proration": true, "proration_details": ["credited_items": NSNull()],
            "subscription": subscription, "subscription_item": "si_test",
        ] as [String: Any]]
        return line
    }

    /// A completed Checkout session that names our account.
    public static func checkout(customer: String, account: String?, subscription: String?) -> [String: Any] {
        var session = object("checkout.session")
        session["customer"] = customer
        session["client_reference_id"] = account ?? NSNull()
        session["mode"] = "subscription"
        session["status"] = "complete"
        session["payment_status"] = "paid"
        session["subscription"] = subscription ?? NSNull()
        return session
    }

    /// The `Stripe-Signature` header for `body`.
    public static func signature(_ body: [UInt8], at time: Date, secret: String = secret) -> String {
        let t = Int64(time.timeIntervalSince1970)
        let mac = HMACSHA256.authenticate(key: Array(secret.utf8), message: Array("\(t).".utf8) + body) ?? []
        return "t=\(t),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }
}

/// A certificate chain shaped like Apple's (root, intermediate with the WWDR marker OID,
/// leaf with the receipt-signing marker OID), made with the `openssl` command line, and
/// App Store signed data (JWS with `x5c`) signed by its leaf.
public final class AppleTestChain: @unchecked Sendable {
    public let folder: TestFolder
    public let rootDER: [UInt8]
    public let intermediateDER: [UInt8]
    public let leafDER: [UInt8]
    public let leafKey: PrivateKey
    public var rootPath: String { folder.path("root.der") }

    /// `leafMarker`/`intermediateMarker` false: that certificate lacks Apple's OID.
    public init(leafMarker: Bool = true, intermediateMarker: Bool = true) throws {
        let base = try TestFolder("paywall-apple-chain")
        folder = base
        let dir = base.url.path
        func run(_ arguments: [String]) throws {
            let run = try runProgram("/usr/bin/openssl", arguments, directory: base.url.path)
            guard run.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["openssl": arguments.joined(separator: " "), "stderr": run.stderr]) }
        }
        func write(_ name: String, _ text: String) throws { try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8) }
        for name in ["root", "int", "leaf"] {
            try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "\(name).key"])
        }
        try write("root.ext", "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n")
        try write("int.ext", "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                  + (intermediateMarker ? "1.2.840.113635.100.6.2.1=ASN1:NULL\n" : ""))
        try write("leaf.ext", "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n"
                  + (leafMarker ? "1.2.840.113635.100.6.11.1=ASN1:NULL\n" : ""))
        try run(["req", "-new", "-x509", "-key", "root.key", "-subj", "/CN=Paywall Test Root", "-days", "3650", "-extensions", "v3_ca",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "root.pem"])
        try run(["req", "-new", "-key", "int.key", "-subj", "/CN=Paywall Test WWDR", "-out", "int.csr"])
        try run(["x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "2", "-days", "3650",
                 "-extfile", "int.ext", "-out", "int.pem"])
        try run(["req", "-new", "-key", "leaf.key", "-subj", "/CN=Paywall Test App Store", "-out", "leaf.csr"])
        try run(["x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key", "-set_serial", "3", "-days", "3650",
                 "-extfile", "leaf.ext", "-out", "leaf.pem"])
        for name in ["root", "int", "leaf"] {
            try run(["x509", "-in", "\(name).pem", "-outform", "DER", "-out", "\(name).der"])
        }
        func read(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: base.url.appendingPathComponent(name))) }
        rootDER = try read("root.der")
        intermediateDER = try read("int.der")
        leafDER = try read("leaf.der")
        leafKey = try PrivateKey(pem: String(decoding: try read("leaf.key"), as: UTF8.self), algorithm: .es256)
    }

    /// A compact JWS of `payload` with this chain in `x5c`.
    public func sign(_ payload: [String: Any], x5c: Bool = true) throws -> String {
        var header: [String: Any] = ["alg": "ES256"]
        if x5c { header["x5c"] = [leafDER, intermediateDER, rootDER].map { Data($0).base64EncodedString() } }
        let head = Self.base64URL(Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])))
        let body = Self.base64URL(Array(try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])))
        let signature = try leafKey.sign(Array("\(head).\(body)".utf8))
        return "\(head).\(body).\(Self.base64URL(signature))"
    }

    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A notification's signedPayload, with a signed transaction and renewal info shaped as
    /// Apple's models (`../shared/testdata/appstore/models`).
    public func notification(
        uuid: String = UUID().uuidString.lowercased(), type: String, subtype: String? = nil, signedDate: Date, bundleID: String = "com.example",
        environment: String = "Sandbox", originalTransactionID: String, productID: String, expires: Date, appAccountToken: String?,
        autoRenew: Bool = true, graceEnd: Date? = nil, offerType: Int? = nil, revokedAt: Date? = nil, isUpgraded: Bool = false
    ) throws -> String {
        let millis = { (date: Date) in Int64(date.timeIntervalSince1970 * 1000) }
        var transaction: [String: Any] = [
            "transactionId": "\(originalTransactionID)-\(millis(signedDate))", "originalTransactionId": originalTransactionID,
            "webOrderLineItemId": "34343", "bundleId": bundleID, "productId": productID, "subscriptionGroupIdentifier": "55555",
            "purchaseDate": millis(signedDate), "originalPurchaseDate": millis(signedDate), "expiresDate": millis(expires), "quantity": 1,
            "type": "Auto-Renewable Subscription", "inAppOwnershipType": "PURCHASED", "signedDate": millis(signedDate),
            "environment": environment, "transactionReason": "PURCHASE", "storefront": "USA", "storefrontId": "143441", "price": 10990, "currency": "USD",
        ]
        if let appAccountToken { transaction["appAccountToken"] = appAccountToken }
        if let offerType { transaction["offerType"] = offerType }
        if isUpgraded { transaction["isUpgraded"] = true }
        if let revoked = revokedAt ?? (type == "REFUND" || type == "REVOKE" ? signedDate : nil) {
            transaction["revocationDate"] = millis(revoked)
            transaction["revocationReason"] = 0
        }
        var renewal: [String: Any] = [
            "originalTransactionId": originalTransactionID, "autoRenewProductId": productID, "productId": productID,
            "autoRenewStatus": autoRenew ? 1 : 0, "signedDate": millis(signedDate), "environment": environment,
            "recentSubscriptionStartDate": millis(signedDate), "renewalDate": millis(expires),
        ]
        if let graceEnd {
            renewal["gracePeriodExpiresDate"] = millis(graceEnd)
            renewal["isInBillingRetryPeriod"] = true
        }
        var payload: [String: Any] = [
            "notificationType": type, "notificationUUID": uuid, "version": "2.0", "signedDate": millis(signedDate),
            "data": [
                "environment": environment, "appAppleId": 41234, "bundleId": bundleID, "bundleVersion": "1.2.3",
                "signedTransactionInfo": try sign(transaction), "signedRenewalInfo": try sign(renewal), "status": 1,
            ] as [String: Any],
        ]
        if let subtype { payload["subtype"] = subtype }
        return try sign(payload)
    }
}
