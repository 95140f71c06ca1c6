import Foundation
import PaywallCore
import PaywallService
import PaywallTestSupport
import Testing

/// App Store Server Notifications through the service, signed by a chain shaped like
/// Apple's (made with openssl at test time), checked with access decisions.
@Suite("App Store billing")
struct AppleBillingTests {
    static let chain: AppleTestChain? = try? AppleTestChain()

    final class App: @unchecked Sendable {
        let f: ServiceFixture
        let chain: AppleTestChain
        let account: AccountID
        let token: String

        init(chain: AppleTestChain? = AppleBillingTests.chain) throws {
            let chain = try #require(chain)
            self.chain = chain
            f = try ServiceFixture {
                $0.appleRootCertificate = chain.rootDER
                $0.appleBundleID = "com.example"
                $0.appleEnvironment = "Sandbox"
                $0.stripeWebhookSecrets = [StripeFixtures.secret]
            }
            // The chain made a moment ago is valid from now on: the manual clock starts here.
            f.clock.advance(by: Date().timeIntervalSince1970.rounded(.down) - f.clock.now().timeIntervalSince1970)
            _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "Euronews SA", actor: f.admin)
            _ = try f.service.addPlan(id: "news", name: "News", period: "month", titles: ["euronews"], actor: f.admin)
            account = try f.service.signUp(email: "reader@example.com", password: "correct horse battery", displayName: nil, actor: f.admin).id
            _ = try f.service.mapBillingProduct(provider: .apple, externalID: "com.example.news.monthly", plan: "news", actor: f.admin)
            token = try f.service.appAccountToken(account: "reader@example.com", actor: f.admin).uuidString.lowercased()
        }

        var now: Date { f.service.now }

        func payload(_ type: String, _ subtype: String? = nil, expires: Date, autoRenew: Bool = true, graceEnd: Date? = nil, token: String? = nil,
                     uuid: String = UUID().uuidString.lowercased(), signedDate: Date? = nil, offerType: Int? = nil, bundle: String = "com.example",
                     product: String = "com.example.news.monthly", noToken: Bool = false, revokedAt: Date? = nil, isUpgraded: Bool = false) throws -> String {
            try chain.notification(
                uuid: uuid, type: type, subtype: subtype, signedDate: signedDate ?? now, bundleID: bundle, originalTransactionID: "2000000001",
                productID: product, expires: expires, appAccountToken: noToken ? nil : token ?? self.token, autoRenew: autoRenew, graceEnd: graceEnd,
                offerType: offerType, revokedAt: revokedAt, isUpgraded: isUpgraded)
        }

        @discardableResult
        func post(_ signedPayload: String) throws -> BillingResult { try f.service.receiveAppleNotification(signedPayload: signedPayload) }

        @discardableResult
        func post(_ type: String, _ subtype: String? = nil, expires: Date, autoRenew: Bool = true, graceEnd: Date? = nil) throws -> BillingResult {
            try post(try payload(type, subtype, expires: expires, autoRenew: autoRenew, graceEnd: graceEnd))
        }

        func memberships() throws -> [Membership] { try f.service.membershipRecords(account: account.rawValue).1.map(\.membership) }

        func access() async throws -> String {
            var article = ArticleInput(id: "a1")
            article.tags = ["embargo"]
            let answer = try await f.service.checkAccess(AccessRequest(title: "euronews", article: article), reader: .account(account))
            guard answer.decision.access.description == "full" else { return "no full access" }
            return answer.decision.decidingRules.first ?? "none"
        }
    }

    @Test("a refund that arrives after a later notice (set aside as older) still ends the access: the later notice's transaction carries the revocation")
    func refundOvertaken() async throws {
        let app = try App()
        let end = app.now.addingTimeInterval(30 * 86_400)
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: end)
        app.f.clock.advance(by: 60)
        let refundedAt = app.now
        let refund = try app.payload("REFUND", expires: end, signedDate: refundedAt)
        app.f.clock.advance(by: 5)
        // The reader turns renewal off a moment after the refund; Apple's notice of that,
        // signed later, is delivered first, with the (revoked) transaction as it stands.
        let renewalOff = try app.payload("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", expires: end, autoRenew: false, revokedAt: refundedAt)
        #expect(try app.post(renewalOff).outcome == .applied)
        #expect(try app.memberships().map(\.status) == [.expired])
        #expect(try await app.access() == "no full access")
        #expect(try app.post(refund).outcome == .stale, "older than what was applied, and already said")
        #expect(try app.memberships().map(\.status) == [.expired])
        // The same notice without a revocation leaves the status as stored (nothing else changed).
        let other = try App()
        try other.post("SUBSCRIBED", "INITIAL_BUY", expires: end)
        other.f.clock.advance(by: 60)
        #expect(try other.post(try other.payload("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", expires: end, autoRenew: false)).outcome == .applied)
        #expect(try other.memberships().map(\.status) == [.active])
    }

    @Test("an offer code redeemed: a first purchase or a return opens the titles at once; a downgrade waits for its renewal; on a running subscription the status stays")
    func offerRedeemed() async throws {
        for subtype in ["INITIAL_BUY", "RESUBSCRIBE"] {
            let app = try App()
            let end = app.now.addingTimeInterval(90 * 86_400)
            #expect(try app.post("OFFER_REDEEMED", subtype, expires: end).outcome == .applied, "\(subtype)")
            #expect(try app.memberships().map(\.status) == [.active], "\(subtype)")
            #expect(try await app.access() == StripeBillingTests.member, "\(subtype)")
        }
        let app = try App()
        let end = app.now.addingTimeInterval(90 * 86_400)
        #expect(try app.post("OFFER_REDEEMED", "DOWNGRADE", expires: end).outcome == .ignored)
        #expect(try app.memberships().isEmpty)
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: end)
        app.f.clock.advance(by: 60)
        try app.post("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", expires: end, autoRenew: false)
        app.f.clock.advance(by: 60)
        let later = end.addingTimeInterval(30 * 86_400)
        #expect(try app.post("OFFER_REDEEMED", expires: later).outcome == .applied)
        let membership = try #require(try app.memberships().first)
        #expect(membership.status == .active && membership.currentPeriodEnd == later && !membership.cancelAtPeriodEnd)
    }

    @Test("the token given to the app is the account's, always the same")
    func token() throws {
        let app = try App()
        #expect(try app.f.service.appAccountToken(account: "reader@example.com", actor: app.f.admin).uuidString.lowercased() == app.token)
        #expect(try app.f.service.billingOverview(account: "reader@example.com").links.map(\.customer) == [app.token])
    }

    @Test("a subscription's whole life: trial, renewal, failed renewal in grace, recovered, auto-renew off, expired")
    func wholeLife() async throws {
        let app = try App()
        #expect(try await app.access() == "no full access")
        let trialEnd = app.now.addingTimeInterval(7 * 86_400)
        #expect(try app.post(try app.payload("SUBSCRIBED", "INITIAL_BUY", expires: trialEnd, offerType: 1)).outcome == .applied)
        var membership = try #require(try app.memberships().first)
        #expect(membership.source == .apple && membership.status == .active && membership.currentPeriodEnd == trialEnd)
        #expect(try await app.access() == StripeBillingTests.member)

        app.f.clock.advance(by: 7 * 86_400)
        let firstEnd = app.now.addingTimeInterval(30 * 86_400)
        try app.post("DID_RENEW", expires: firstEnd)
        #expect(try app.memberships().first?.currentPeriodEnd == firstEnd)

        app.f.clock.advance(by: 30 * 86_400)
        let graceEnd = app.now.addingTimeInterval(16 * 86_400)
        try app.post("DID_FAIL_TO_RENEW", "GRACE_PERIOD", expires: firstEnd, graceEnd: graceEnd)
        membership = try #require(try app.memberships().first)
        #expect(membership.status == .pastDue && membership.gracePeriodEnd == graceEnd)
        #expect(try await app.access() == StripeBillingTests.grace)

        app.f.clock.advance(by: 86_400)
        let secondEnd = app.now.addingTimeInterval(30 * 86_400)
        try app.post("DID_RENEW", "BILLING_RECOVERY", expires: secondEnd)
        #expect(try app.memberships().first?.status == .active)
        #expect(try await app.access() == StripeBillingTests.member)

        app.f.clock.advance(by: 86_400)
        try app.post("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", expires: secondEnd, autoRenew: false)
        membership = try #require(try app.memberships().first)
        #expect(membership.status == .active && membership.cancelAtPeriodEnd)

        app.f.clock.advance(by: secondEnd.timeIntervalSince(app.now) + 1)
        try app.post("EXPIRED", "VOLUNTARY", expires: secondEnd, autoRenew: false)
        #expect(try app.memberships().map(\.status) == [.expired])
        #expect(try await app.access() == "no full access")
        let history = try app.f.service.membershipRecords(account: "reader@example.com").1.first?.history ?? []
        #expect(history.map(\.to) == [.active, .pastDue, .active, .expired])
        #expect(history.allSatisfy { $0.actor == "billing:apple" && ($0.reason ?? "").contains("2000000001") })

        // Resubscribed later: the same original transaction, a new membership.
        app.f.clock.advance(by: 86_400)
        try app.post("SUBSCRIBED", "RESUBSCRIBE", expires: app.now.addingTimeInterval(30 * 86_400))
        #expect(try app.memberships().map(\.status) == [.active, .expired])
    }

    @Test("refund, revoke, grace period expired, and a failed renewal without grace end access",
          arguments: [("REFUND", nil), ("REVOKE", nil), ("GRACE_PERIOD_EXPIRED", nil), ("DID_FAIL_TO_RENEW", nil), ("EXPIRED", "BILLING_RETRY")] as [(String, String?)])
    func endings(_ type: String, _ subtype: String?) throws {
        let app = try App()
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: app.now.addingTimeInterval(30 * 86_400))
        app.f.clock.advance(by: 60)
        #expect(try app.post(type, subtype, expires: app.now.addingTimeInterval(29 * 86_400)).outcome == .applied)
        #expect(try app.memberships().map(\.status) == [.expired])
    }

    @Test("idempotent on notificationUUID; an older notification never overwrites a newer one")
    func onceAndInOrder() throws {
        let app = try App()
        let end = app.now.addingTimeInterval(30 * 86_400)
        let subscribed = try app.payload("SUBSCRIBED", "INITIAL_BUY", expires: end, signedDate: app.now)
        let expired = try app.payload("EXPIRED", "VOLUNTARY", expires: end, signedDate: app.now.addingTimeInterval(60))
        app.f.clock.advance(by: 120)
        #expect(try app.post(expired).outcome == .applied)  // nothing to expire yet: recorded
        #expect(try app.post(subscribed).outcome == .stale)
        #expect(try app.memberships().isEmpty)
        let before = try app.f.snapshot()
        #expect(try app.post(subscribed).outcome == .duplicate)
        #expect(try app.post(expired).outcome == .duplicate)
        #expect(try app.f.snapshot() == before)
        // TEST and other types are answered, not stored.
        let test = try app.chain.sign(["notificationType": "TEST", "notificationUUID": UUID().uuidString, "signedDate": Int64(app.now.timeIntervalSince1970 * 1000),
                                       "data": ["bundleId": "com.example", "environment": "Sandbox"]])
        #expect(try app.post(test).outcome == .ignored)
        #expect(try app.f.snapshot() == before)
    }

    @Test("an ended subscription bought again under another account of the same Apple ID moves to it, audited; the first account's ended membership stays")
    func resubscribedElsewhere() async throws {
        let app = try App()
        let end = app.now.addingTimeInterval(30 * 86_400)
        #expect(try app.post("SUBSCRIBED", "INITIAL_BUY", expires: end).outcome == .applied)
        app.f.clock.advance(by: 31 * 86_400)
        #expect(try app.post("EXPIRED", "VOLUNTARY", expires: end).outcome == .applied)
        _ = try await app.f.service.signUp(email: "other@example.com", password: "correct horse battery", displayName: nil, actor: app.f.admin)
        let other = try app.f.service.account("other@example.com")
        let otherToken = try app.f.service.appAccountToken(account: "other@example.com", actor: app.f.admin).uuidString.lowercased()
        app.f.clock.advance(by: 60)
        // A stale notice naming the other account moves nothing.
        let stale = try app.post(try app.payload("DID_RENEW", expires: end, token: otherToken, signedDate: app.now.addingTimeInterval(-120)))
        #expect(stale.outcome == .failed)
        let newEnd = app.now.addingTimeInterval(30 * 86_400)
        let bought = try app.post(try app.payload("SUBSCRIBED", "RESUBSCRIBE", expires: newEnd, token: otherToken))
        #expect(bought.outcome == .applied, "\(String(describing: bought.detail))")
        #expect(bought.accountID == other.id)
        let theirs = try app.f.service.membershipRecords(account: other.id.rawValue).1.map(\.membership)
        #expect(theirs.count == 1 && theirs.first?.status == .active && theirs.first?.currentPeriodEnd == newEnd.roundedDownToSecond, "\(theirs)")
        #expect(try app.memberships().allSatisfy { $0.status != .active }, "the first account's membership stays ended")
        let audit = try app.f.service.auditEntries(target: "account:\(other.id)", limit: 20).map(\.action)
        #expect(audit.contains("billing.move"), "\(audit)")
        // Its renewals follow it; a notice still naming the first account no longer applies.
        app.f.clock.advance(by: 60)
        #expect(try app.post(try app.payload("DID_RENEW", expires: newEnd.addingTimeInterval(30 * 86_400), token: otherToken)).outcome == .applied)
        #expect(try app.post("DID_RENEW", expires: newEnd.addingTimeInterval(60 * 86_400)).outcome == .failed)
    }

    @Test("a subscription stays with its account: a later transaction carrying another account's token fails, nothing moves")
    func subscriptionPinned() async throws {
        let app = try App()
        let end = app.now.addingTimeInterval(30 * 86_400)
        #expect(try app.post("SUBSCRIBED", "INITIAL_BUY", expires: end).outcome == .applied)
        _ = try await app.f.service.signUp(email: "other@example.com", password: "correct horse battery", displayName: nil, actor: app.f.admin)
        let otherToken = try app.f.service.appAccountToken(account: "other@example.com", actor: app.f.admin).uuidString.lowercased()
        app.f.clock.advance(by: 60)
        let moved = try app.post(try app.payload("DID_RENEW", expires: end.addingTimeInterval(30 * 86_400), token: otherToken))
        #expect(moved.outcome == .failed)
        #expect(try app.memberships().first?.currentPeriodEnd == end.roundedDownToSecond, "the first account's membership is untouched")
        let other = try app.f.service.account("other@example.com")
        #expect(try app.f.service.membershipRecords(account: other.id.rawValue).1.isEmpty, "the other account got nothing")
        #expect(try await app.access() != "no full access")
    }

    @Test("a refund reversed gives the period back; a refund of an earlier period takes nothing; a renewal extended moves the expiry")
    func refundsAndExtensions() async throws {
        let app = try App()
        let end = app.now.addingTimeInterval(30 * 86_400)
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: end)
        app.f.clock.advance(by: 60)
        try app.post("REFUND", expires: end)
        #expect(try await app.access() == "no full access")
        app.f.clock.advance(by: 60)
        #expect(try app.post("REFUND_REVERSED", expires: end).outcome == .applied)
        #expect(try app.memberships().contains { $0.status == .active })
        #expect(try await app.access() != "no full access")
        app.f.clock.advance(by: 60)
        // A refund of a period that ended before the notice: the current one stands.
        #expect(try app.post("REFUND", expires: app.now.addingTimeInterval(-86_400)).outcome != .applied)
        #expect(try await app.access() != "no full access")
        app.f.clock.advance(by: 60)
        let later = end.addingTimeInterval(7 * 86_400)
        #expect(try app.post("RENEWAL_EXTENDED", expires: later).outcome == .applied)
        #expect(try app.memberships().first { $0.status == .active }?.currentPeriodEnd == later.roundedDownToSecond)
        app.f.clock.advance(by: 60)
        // The reversal of that earlier period's refund: nothing changes now (it used to end
        // the current period and move its end back).
        #expect(try app.post("REFUND_REVERSED", expires: app.now.addingTimeInterval(-86_400)).outcome != .applied)
        #expect(try app.memberships().first { $0.status == .active }?.currentPeriodEnd == later.roundedDownToSecond)
        #expect(try await app.access() != "no full access")
    }

    @Test("auto-renew turned off or on during the billing grace period keeps the grace")
    func renewalStatusInGrace() async throws {
        let app = try App()
        let end = app.now.addingTimeInterval(86_400)
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: end)
        app.f.clock.advance(by: 86_400 + 60)
        let graceEnd = app.now.addingTimeInterval(16 * 86_400)
        #expect(try app.post("DID_FAIL_TO_RENEW", "GRACE_PERIOD", expires: end, graceEnd: graceEnd).outcome == .applied)
        #expect(try await app.access() != "no full access")
        for (subtype, autoRenew) in [("AUTO_RENEW_DISABLED", false), ("AUTO_RENEW_ENABLED", true)] {
            app.f.clock.advance(by: 60)
            #expect(try app.post("DID_CHANGE_RENEWAL_STATUS", subtype, expires: end, autoRenew: autoRenew).outcome == .applied)
            let membership = try #require(try app.memberships().first)
            #expect(membership.status == .pastDue && membership.gracePeriodEnd == graceEnd.roundedDownToSecond, "\(subtype): \(membership)")
            #expect(try await app.access() != "no full access", "\(subtype): the grace must stand")
        }
    }

    @Test("an upgrade takes effect at once: the new product's plan and period; a downgrade waits for the renewal")
    func upgrade() async throws {
        let app = try App()
        _ = try app.f.service.addPlan(id: "all", name: "All", period: "month", titles: nil, actor: app.f.admin)
        _ = try app.f.service.mapBillingProduct(provider: .apple, externalID: "com.example.all.monthly", plan: "all", actor: app.f.admin)
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: app.now.addingTimeInterval(20 * 86_400))
        app.f.clock.advance(by: 60)
        let downgrade = try app.post(try app.payload("DID_CHANGE_RENEWAL_PREF", "DOWNGRADE", expires: app.now.addingTimeInterval(20 * 86_400)))
        #expect(downgrade.outcome != .applied)
        app.f.clock.advance(by: 60)
        let newEnd = app.now.addingTimeInterval(30 * 86_400)
        let upgraded = try app.post(try app.payload("DID_CHANGE_RENEWAL_PREF", "UPGRADE", expires: newEnd, product: "com.example.all.monthly"))
        #expect(upgraded.outcome == .applied, "\(String(describing: upgraded.detail))")
        let active = try app.memberships().filter { $0.status == .active }
        #expect(active.map(\.planID.rawValue) == ["all"] && active.first?.currentPeriodEnd == newEnd.roundedDownToSecond, "\(active)")
    }

    @Test("the prorated refund of the transaction upgraded from takes nothing from the upgrade; a refund of the upgrade's own transaction ends it", arguments: ["REFUND", "REVOKE"])
    func refundAfterUpgrade(kind: String) async throws {
        let app = try App()
        _ = try app.f.service.addPlan(id: "all", name: "All", period: "month", titles: nil, actor: app.f.admin)
        _ = try app.f.service.mapBillingProduct(provider: .apple, externalID: "com.example.all.monthly", plan: "all", actor: app.f.admin)
        let oldEnd = app.now.addingTimeInterval(20 * 86_400)
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: oldEnd)
        app.f.clock.advance(by: 60)
        let newEnd = app.now.addingTimeInterval(30 * 86_400)
        #expect(try app.post(try app.payload("DID_CHANGE_RENEWAL_PREF", "UPGRADE", expires: newEnd, product: "com.example.all.monthly")).outcome == .applied)
        app.f.clock.advance(by: 60)
        // Apple refunds the unused part of the old product's transaction: revoked, upgraded,
        // its expiry still ahead.
        let refund = try app.post(try app.payload(kind, expires: oldEnd, isUpgraded: true))
        #expect(refund.outcome == .ignored, "\(refund)")
        let active = try app.memberships().filter { $0.status == .active }
        #expect(active.map(\.planID.rawValue) == ["all"] && active.first?.currentPeriodEnd == newEnd.roundedDownToSecond, "\(active)")
        #expect(try await app.access() != "no full access")
        app.f.clock.advance(by: 60)
        // The upgrade's own transaction refunded: the subscription ends.
        #expect(try app.post(try app.payload(kind, expires: newEnd, product: "com.example.all.monthly")).outcome == .applied)
        #expect(try await app.access() == "no full access")
    }

    @Test("a purchase without an appAccountToken waits, and says why")
    func noToken() throws {
        let app = try App()
        let result = try app.post(try app.payload("SUBSCRIBED", "INITIAL_BUY", expires: app.now.addingTimeInterval(86_400), noToken: true))
        #expect(result.outcome == .pending)
        #expect(try app.f.service.unappliedBillingEvents().first?.detail?.contains("carries no appAccountToken") == true)
    }

    @Test("a purchase without an appAccountToken, linked by an admin: its waiting events apply to the account, and its renewals follow")
    func linkedByAdmin() async throws {
        let app = try App()
        let end = app.now.addingTimeInterval(30 * 86_400)
        #expect(try app.post(try app.payload("SUBSCRIBED", "INITIAL_BUY", expires: end, noToken: true)).outcome == .pending)
        app.f.clock.advance(by: 60)
        #expect(try app.post(try app.payload("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", expires: end, autoRenew: false, noToken: true)).outcome == .pending)
        #expect(try await app.access() == "no full access")
        let results = try app.f.service.linkBillingSubscription("2000000001", provider: .apple, account: "reader@example.com", actor: app.f.admin)
        #expect(results.map(\.outcome) == [.applied, .applied] && results.allSatisfy { $0.accountID == app.account })
        let membership = try #require(try app.memberships().first)
        #expect(membership.status == .active && membership.cancelAtPeriodEnd && membership.currentPeriodEnd == end.roundedDownToSecond)
        #expect(try app.f.service.unappliedBillingEvents().isEmpty)
        #expect(try await app.access() != "no full access")
        // A renewal, still without a token, follows the stored subscription.
        app.f.clock.advance(by: 60)
        let renewed = try app.post(try app.payload("DID_RENEW", expires: end.addingTimeInterval(30 * 86_400), noToken: true))
        #expect(renewed.outcome == .applied && renewed.accountID == app.account)
        // Linking it again to the same account changes nothing; to another is refused.
        #expect(try app.f.service.linkBillingSubscription("2000000001", provider: .apple, account: "reader@example.com", actor: app.f.admin).isEmpty)
        _ = try await app.f.service.signUp(email: "other@example.com", password: "correct horse battery", displayName: nil, actor: app.f.admin)
        let before = try app.f.snapshot()
        func code(_ subscription: String, _ account: String, _ provider: BillingProvider = .apple) -> String? {
            do { _ = try app.f.service.linkBillingSubscription(subscription, provider: provider, account: account, actor: app.f.admin); return nil } catch {
                return error.code
            }
        }
        #expect(code("2000000001", "other@example.com") == "subscription_linked")
        #expect(code("2000000999", "other@example.com") == "no_events_waiting", "nothing of it waits: a typo links nothing")
        #expect(code("20000x", "other@example.com") == "invalid_value")
        #expect(code("sub_1", "other@example.com") == "invalid_value")
        #expect(code("2000000001", "nobody@example.com") == "account_not_found")
        #expect(code("2000000001", "other@example.com", .stripe) == "invalid_value")
        #expect(try app.f.snapshot() == before, "refusals write nothing")
        do {
            _ = try app.f.service.linkBillingSubscription("2000000999", provider: .apple, account: "other@example.com", actor: app.f.admin)
        } catch {
            #expect(error.description.contains("no event of subscription '2000000999' is waiting for an account"))
        }
    }

    @Test("an unknown appAccountToken is kept pending")
    func unknownToken() throws {
        let app = try App()
        let stranger = UUID().uuidString.lowercased()
        let result = try app.post(try app.payload("SUBSCRIBED", "INITIAL_BUY", expires: app.now.addingTimeInterval(86_400), token: stranger))
        #expect(result.outcome == .pending)
        #expect(try app.f.service.unappliedBillingEvents().first?.detail == "customer \(stranger) is not linked to an account yet")
    }

    @Test("refusals write nothing: another root, missing OIDs, another app, another environment, not configured")
    func refusals() throws {
        let app = try App()
        let before = try app.f.snapshot()
        func code(_ payload: String, _ service: PaywallService? = nil) -> String? {
            do { _ = try (service ?? app.f.service).receiveAppleNotification(signedPayload: payload); return nil } catch { return error.code }
        }
        let end = app.now.addingTimeInterval(86_400)
        let stranger = try AppleTestChain()
        let strangerPayload = try stranger.notification(
            type: "SUBSCRIBED", signedDate: app.now, originalTransactionID: "1", productID: "com.example.news.monthly", expires: end, appAccountToken: app.token)
        #expect(code(strangerPayload) == "invalid_signature")
        for (leaf, intermediate) in [(false, true), (true, false)] {
            let unmarked = try AppleTestChain(leafMarker: leaf, intermediateMarker: intermediate)
            let other = try ServiceFixture {
                $0.appleRootCertificate = unmarked.rootDER
                $0.appleBundleID = "com.example"
                $0.appleEnvironment = "Sandbox"
            }
            let otherBefore = try other.snapshot()
            #expect(code(try unmarked.notification(
                type: "SUBSCRIBED", signedDate: app.now, originalTransactionID: "1", productID: "p", expires: end, appAccountToken: app.token), other.service)
                == "invalid_signature")
            #expect(try other.snapshot() == otherBefore)
        }
        #expect(code(try app.payload("SUBSCRIBED", expires: end, bundle: "com.example.wrong")) == "invalid_event")
        #expect(code(try app.chain.notification(
            type: "SUBSCRIBED", signedDate: app.now, environment: "Production", originalTransactionID: "1", productID: "p", expires: end,
            appAccountToken: app.token)) == "invalid_event")
        #expect(code("not.a.jws") == "invalid_signature")
        #expect(try app.f.snapshot() == before)
        let bare = try ServiceFixture()
        #expect(code(try app.payload("SUBSCRIBED", expires: end), bare.service) == "billing_not_configured")
    }

    @Test("a reader paying through Stripe and the App Store keeps both memberships")
    func bothProviders() async throws {
        let app = try App()
        _ = try app.f.service.mapBillingProduct(provider: .stripe, externalID: "price_news", plan: "news", actor: app.f.admin)
        try app.post("SUBSCRIBED", "INITIAL_BUY", expires: app.now.addingTimeInterval(30 * 86_400))
        func stripe(_ type: String, _ object: [String: Any], _ id: String) throws {
            let body = StripeFixtures.event(id: id, type: type, created: app.now, object: object)
            _ = try app.f.service.receiveStripeEvent(body: body, signature: StripeFixtures.signature(body, at: app.now))
        }
        try stripe("checkout.session.completed", StripeFixtures.checkout(customer: "cus_1", account: app.account.rawValue, subscription: "sub_1"), "evt_1")
        try stripe("customer.subscription.created", StripeFixtures.subscription(
            id: "sub_1", customer: "cus_1", status: "active", price: "price_news", periodEnd: app.now.addingTimeInterval(30 * 86_400)), "evt_2")
        #expect(Set(try app.memberships().map(\.source)) == [.apple, .stripe])
        // One of them ending leaves the other's access.
        app.f.clock.advance(by: 60)
        try app.post("REFUND", expires: app.now.addingTimeInterval(30 * 86_400))
        #expect(try await app.access() == StripeBillingTests.member)
        #expect(Set(try app.f.service.billingOverview(account: "reader@example.com").links.map(\.provider)) == [.apple, .stripe])
    }
}
