import Foundation
import PaywallCore
import PaywallCrypto
import PaywallTokens

/// Verifies App Store signed data (JWS Compact, ES256) as Apple's own libraries do: the
/// header's `x5c` holds leaf, intermediate and root (base64 DER); the leaf and the
/// intermediate must chain up to the configured root — the only trust anchor, whatever
/// root the `x5c` names — at the payload's `signedDate`; the leaf must carry Apple's
/// receipt-signing marker extension and the intermediate Apple's WWDR marker; the
/// signature must verify under the leaf's P-256 key.
public struct AppStoreVerifier: Sendable {
    /// Apple's marker extension of the leaf (the App Store receipt signer).
    public static let leafMarker = "1.2.840.113635.100.6.11.1"
    /// Apple's marker extension of the intermediate (Apple WWDR CA).
    public static let intermediateMarker = "1.2.840.113635.100.6.2.1"

    public let root: X509Certificate
    public let bundleID: String
    /// `Production` or `Sandbox` (the payloads' `environment`).
    public let environment: String

    public init(root: X509Certificate, bundleID: String, environment: String) {
        self.root = root
        self.bundleID = bundleID
        self.environment = environment
    }

    /// The verified payload of a compact JWS. `at`: the instant to check the chain at when
    /// the payload has no `signedDate`.
    public func verify(_ jws: String, at fallback: Date) throws(BillingError) -> JSONObject {
        let parts = jws.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformedJWS("not three dot-separated parts") }
        guard let headerBytes = Base64URL.decode(parts[0]), let header = try? JSONValue.parse(headerBytes, maxDepth: 4).objectValue else {
            throw .malformedJWS("the header is not base64url JSON")
        }
        guard header["alg"]?.stringValue == "ES256" else { throw .malformedJWS("the algorithm is not ES256") }
        guard let chain = header["x5c"]?.arrayValue else { throw .malformedJWS("the header has no x5c chain") }
        guard chain.count == 3 else { throw .malformedJWS("the x5c chain has \(chain.count) certificates, not 3") }
        var certificates: [X509Certificate] = []
        for item in chain {
            guard let text = item.stringValue, let der = Data(base64Encoded: text) else { throw .malformedJWS("an x5c entry is not base64") }
            do { certificates.append(try X509Certificate(der: Array(der))) } catch { throw .malformedJWS(error.description) }
        }
        guard let payloadBytes = Base64URL.decode(parts[1]), let payload = try? JSONValue.parse(payloadBytes, maxDepth: 32).objectValue else {
            throw .malformedJWS("the payload is not base64url JSON")
        }
        guard let signature = Base64URL.decode(parts[2]), signature.count == 64 else { throw .malformedJWS("the signature is not 64 bytes") }
        // Apple's verifiers check the chain at the time the data was signed: certificates
        // outlive none of the data they sign.
        // Read before anything is verified: only a whole number of milliseconds from 1970 to
        // 9999 is a date (1e22 would have trapped converting to time_t).
        let signedAt: Date
        if let value = payload["signedDate"] {
            guard let millis = value.numberValue, millis.isFinite, millis >= 0, millis < 253_402_300_800_000, millis == millis.rounded(.down) else {
                throw .malformedJWS("signedDate is not a time in milliseconds since 1970")
            }
            signedAt = Date(timeIntervalSince1970: millis / 1000)
        } else {
            signedAt = fallback
        }
        let (leaf, intermediate) = (certificates[0], certificates[1])
        guard leaf.hasExtension(oid: Self.leafMarker) else { throw .missingMarker(certificate: "leaf", oid: Self.leafMarker) }
        guard intermediate.hasExtension(oid: Self.intermediateMarker) else {
            throw .missingMarker(certificate: "intermediate", oid: Self.intermediateMarker)
        }
        do {
            try X509Chain.verify(leaf: leaf, intermediates: [intermediate], root: root, at: signedAt)
        } catch {
            throw .untrustedChain(error.description)
        }
        let key: PublicKey
        do { key = try leaf.es256PublicKey() } catch { throw .untrustedChain("the leaf's key: \(error.description)") }
        let signingInput = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
        guard key.verify(signature: signature, message: signingInput) else { throw .badSignature }
        return payload
    }
}

/// Reads a verified App Store Server Notification V2 into the change it asks of our
/// memberships. The subscription is Apple's `originalTransactionId`, the customer the
/// `appAccountToken` the app set at purchase (a UUID we give per account), the plan the
/// product's.
public enum AppStoreNotification {
    /// The verified notification: its UUID, type (`TYPE` or `TYPE/SUBTYPE`) and change
    /// (nil for a type we do not act on, such as TEST).
    public static func parse(signedPayload: String, verifier: AppStoreVerifier, now: Date) throws(BillingError) -> (id: String, type: String, change: BillingChange?) {
        let payload = JSONFields(try verifier.verify(signedPayload, at: now))
        let id = try payload.requiredString("notificationUUID")
        guard id.utf8.count <= 64 else { throw .malformedEvent("'notificationUUID' is longer than 64 bytes") }
        let kind = try payload.requiredString("notificationType")
        let subtype = try payload.string("subtype")
        let type = subtype.map { "\(kind)/\($0)" } ?? kind
        // A summary notification (bulk renewal extension) has no `data`: nothing per subscription.
        guard let data = try payload.fields("data") else { return (id, type, nil) }
        // Another app's notification is refused before anything else is read of it.
        let bundle = try data.requiredString("bundleId")
        guard bundle == verifier.bundleID else { throw .wrongBundle(bundle) }
        let environment = try data.requiredString("environment")
        guard environment == verifier.environment else { throw .wrongEnvironment(environment) }
        guard let signedDate = try payload.millis("signedDate") else { throw .malformedEvent("'signedDate' is required") }
        guard handled(kind) else { return (id, type, nil) }
        guard let signedTransaction = try data.string("signedTransactionInfo") else { throw .malformedEvent("'data.signedTransactionInfo' is required") }
        let transaction = JSONFields(try verifier.verify(signedTransaction, at: signedDate), path: "transaction")
        guard try transaction.string("bundleId") == verifier.bundleID else { throw .wrongBundle(try transaction.string("bundleId") ?? "") }
        let renewal = try data.string("signedRenewalInfo").map { text throws(BillingError) in
            JSONFields(try verifier.verify(text, at: signedDate), path: "renewal")
        }
        var state = SubscriptionState(
            id: try transaction.requiredString("originalTransactionId"), products: [try transaction.requiredString("productId")], status: nil,
            providerStatus: type, periodEnd: try transaction.millis("expiresDate"))
        if let renewal, let autoRenew = try renewal.integer("autoRenewStatus") { state.cancelAtPeriodEnd = autoRenew == 0 }
        // A transaction superseded by an upgrade (Apple sets `isUpgraded` on it): what happens
        // to it says nothing of the subscription, which goes on with the upgrade's.
        let upgraded = try transaction.bool("isUpgraded") == true
        switch kind {
        case "SUBSCRIBED", "DID_RENEW":
            state.status = .active
        case "DID_FAIL_TO_RENEW":
            if subtype == "GRACE_PERIOD", let graceEnd = try renewal?.millis("gracePeriodExpiresDate") {
                state.status = .pastDue
                state.graceEnd = graceEnd
            } else {
                // Billing retry without a grace period: no access until Apple recovers the payment.
                state.status = .expired
            }
        case "GRACE_PERIOD_EXPIRED", "EXPIRED":
            state.status = .expired
        case "DID_CHANGE_RENEWAL_STATUS":
            // Only the renewal changes; the status stays as it is.
            state.cancelAtPeriodEnd = subtype == "AUTO_RENEW_DISABLED" ? true : subtype == "AUTO_RENEW_ENABLED" ? false : state.cancelAtPeriodEnd
        case "REFUND", "REVOKE":
            // A refund of an earlier period (its transaction expired before this notice) takes
            // nothing away from the period the reader is in now.
            if let expires = state.periodEnd, expires <= signedDate, kind == "REFUND" { return (id, type, nil) }
            // Nor does the (prorated) refund of a transaction the reader upgraded from: its
            // expiry is still ahead, its product the old one, and taken as the subscription's
            // end it expired the plan just bought (found in review; Apple's own model of a
            // revoked transaction carries `isUpgraded`).
            if upgraded { return (id, type, nil) }
            state.status = .expired
        case "REFUND_REVERSED":
            // Apple undid the refund: the transaction's period is the reader's again. The
            // reversal of an earlier period's refund (its transaction expired before this
            // notice) changes nothing now, as that refund took nothing away: taken as
            // "expired" it ended the period the reader is paying for.
            if let expires = state.periodEnd, expires <= signedDate { return (id, type, nil) }
            state.status = .active
        case "RENEWAL_EXTENDED":
            // The developer extended the period (a service outage, say): the new expiry stands.
            state.status = .active
        case "DID_CHANGE_RENEWAL_PREF":
            // An upgrade takes effect at once, with a new period on the new product (the
            // transaction's). A downgrade or a crossgrade at the next renewal changes nothing
            // until then: that renewal's DID_RENEW says so.
            guard subtype == "UPGRADE" else { return (id, type, nil) }
            state.status = .active
        case "OFFER_REDEEMED":
            switch subtype {
            case "INITIAL_BUY", "RESUBSCRIBE", "UPGRADE":
                // A first purchase or a return through an offer code (Apple may send no
                // SUBSCRIBED for it: "three months free" must open the titles now, not at
                // the first DID_RENEW), or an upgrade, at once.
                state.status = .active
            case "DOWNGRADE":
                // At the next renewal: its DID_RENEW says so.
                return (id, type, nil)
            default:
                // No subtype: an offer on a subscription already running. Its period and
                // renewal as the transaction says; the status stays as stored.
                break
            }
        default:
            return (id, type, nil)
        }
        // A transaction Apple revoked (refunded, or taken back from Family Sharing) for the
        // period the reader is in: no access, whatever the notice is about. A later notice
        // (a renewal preference changed) carries it too, so a REFUND that lost the race to
        // it, and was set aside as older, still takes effect. A revoked transaction of an
        // earlier period takes nothing away now (as a REFUND of one does not); REFUND_REVERSED
        // carries a transaction no longer revoked.
        if try transaction.millis("revocationDate") != nil, kind != "REFUND_REVERSED", !upgraded, let expires = state.periodEnd, expires > signedDate {
            state.status = .expired
            state.graceEnd = nil
        }
        let token = try transaction.string("appAccountToken").flatMap { $0.isEmpty ? nil : $0.lowercased() }
        if let token, UUID(uuidString: token) == nil { throw .malformedEvent("'appAccountToken' is not a UUID") }
        let change = BillingChange(provider: .apple, eventID: id, type: type, occurredAt: signedDate, customer: token, subscription: state)
        return (id, type, change)
    }

    static func handled(_ kind: String) -> Bool {
        ["SUBSCRIBED", "DID_RENEW", "DID_FAIL_TO_RENEW", "GRACE_PERIOD_EXPIRED", "EXPIRED", "DID_CHANGE_RENEWAL_STATUS", "REFUND", "REVOKE",
         "REFUND_REVERSED", "RENEWAL_EXTENDED", "DID_CHANGE_RENEWAL_PREF", "OFFER_REDEEMED"].contains(kind)
    }
}
