import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PaywallCore
@testable import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallTokens
import Testing

/// An admin token for `subject` with `scopes`.
func adminToken(_ f: ServiceFixture, _ scopes: Set<AdminScope> = Set(AdminScope.allCases), subject: String = "alice", lifetime: TimeInterval? = nil, audience: String? = nil) throws -> String {
    try f.service.issueAdminToken(subject: subject, scopes: scopes, lifetime: lifetime, audience: audience, actor: f.admin).token
}

extension TestClientProtocol {
    /// Any method, with a bearer token and a JSON body when given.
    func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, token: String? = nil) async throws -> TestResponse {
        var fields: HTTPFields = [:]
        if body != nil { fields[.contentType] = "application/json" }
        if let token { fields[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) })
    }
}

@Suite("Admin API /admin/v1 in process")
struct AdminRouteTests {
    /// One call of every admin route that succeeds with the right token, and its scope.
    static let calls: [(method: HTTPRequest.Method, path: String, body: String?, scope: AdminScope)] = [
        (.get, "/admin/v1/titles", nil, .catalog),
        (.post, "/admin/v1/titles", #"{"id":"el-pais","name":"El País","publisher":"PRISA","tags":["spanish"]}"#, .catalog),
        (.get, "/admin/v1/titles/euronews", nil, .catalog),
        (.patch, "/admin/v1/titles/euronews", #"{"tags":["europe","video"]}"#, .catalog),
        (.post, "/admin/v1/titles/the-daily/retire", nil, .catalog),
        (.get, "/admin/v1/plans", nil, .catalog),
        (.post, "/admin/v1/plans", #"{"id":"daily","name":"Daily","period":"week","titles":["the-daily"]}"#, .catalog),
        (.get, "/admin/v1/plans/news", nil, .catalog),
        (.patch, "/admin/v1/plans/news", #"{"name":"News and more","titles":["euronews","le-monde","the-daily"]}"#, .catalog),
        (.get, "/admin/v1/accounts/member@example.com", nil, .members),
        (.get, "/admin/v1/accounts?email=mem&limit=5", nil, .members),
        (.get, "/admin/v1/accounts/member%40example.com/memberships", nil, .members),
        (.post, "/admin/v1/accounts/reader@example.com/memberships", #"{"plan":"news","reason":"support ticket 12"}"#, .members),
        (.post, "/admin/v1/accounts/member@example.com/memberships/cancel", #"{"mode":"now"}"#, .members),
        (.post, "/admin/v1/accounts/member@example.com/memberships/past-due", #"{"graceEnd":"2026-01-08T00:00:00Z"}"#, .members),
        (.post, "/admin/v1/accounts/reader@example.com/comps", #"{"titles":["the-daily"],"days":7}"#, .members),
        (.get, "/admin/v1/accounts/trial@example.com/trial", nil, .members),
        (.post, "/admin/v1/accounts/reader@example.com/trial", #"{"days":7}"#, .members),
        (.post, "/admin/v1/accounts/trial@example.com/trial/end", nil, .members),
        (.post, "/admin/v1/accounts/trial@example.com/sign-out", nil, .members),
        (.get, "/admin/v1/accounts/reader@example.com/export", nil, .privacy),
        (.delete, "/admin/v1/accounts/trial@example.com", nil, .privacy),
        (.get, "/admin/v1/accounts/member@example.com/billing", nil, .members),
        (.get, "/admin/v1/billing/events?limit=10", nil, .members),
        (.post, "/admin/v1/billing/events/retry", nil, .members),
        (.get, "/admin/v1/audit?limit=5", nil, .audit),
        (.get, "/admin/v1/reads?from=2025-12-01T00:00:00Z&to=2026-02-01T00:00:00Z", nil, .audit),
        (.get, "/admin/v1/policy", nil, .policy),
        (.post, "/admin/v1/policy/reload", nil, .policy),
    ]

    @Test("account search by email prefix: any case, in email order, limited; refusals with stable codes write nothing; audited", arguments: TestBackend.all)
    func accountSearch(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        for email in ["Rita.R@example.org", "rita@example.com", "ritz@example.com"] {
            _ = try await f.service.signUp(email: email, password: "correct horse battery", displayName: nil, actor: f.admin)
        }
        let token = try adminToken(f, [.members])
        let catalog = try adminToken(f, [.catalog])
        try await withAPI(f) { client in
            func emails(_ query: String) async throws -> [String] {
                let response = try await client.call(.get, "/admin/v1/accounts?\(query)", token: token)
                #expect(response.status == .ok && response.headers[.cacheControl] == "private, no-store", "\(query): \(response.text)")
                return try #require(try response.object()["accounts"] as? [[String: Any]]).compactMap { $0["email"] as? String }
            }
            #expect(try await emails("email=RIT") == ["Rita.R@example.org", "rita@example.com", "ritz@example.com"])
            #expect(try await emails("email=rita&limit=1") == ["Rita.R@example.org"])
            #expect(try await emails("email=rita%40") == ["rita@example.com"])
            #expect(try await emails("email=nobody").isEmpty)
            let audited = try #require(try f.service.auditEntries(limit: 1).first)
            #expect(audited.action == "admin.accounts.search" && audited.details.contains("nobody"), "\(audited.details)")

            let before = try f.snapshot()
            for (query, status, code) in [
                ("", HTTPResponse.Status.badRequest, "missing_parameter"), ("email=a%20b", .badRequest, "invalid_value"),
                ("email=%C3%A9", .badRequest, "invalid_value"), ("email=a&limit=0", .badRequest, "invalid_parameter"),
                ("email=a&limit=1001", .badRequest, "invalid_parameter"), ("email=a&name=b", .badRequest, "unknown_parameter"),
            ] {
                let response = try await client.call(.get, "/admin/v1/accounts?\(query)", token: token)
                #expect(response.status == status && response.errorCode == code, "\(query): \(response.status) \(response.text)")
            }
            #expect(try await client.call(.get, "/admin/v1/accounts?email=a", token: catalog).status == .forbidden)
            #expect(try f.snapshot() == before, "refusals write nothing")
        }
    }

    @Test("a title retired through the API: its members and metered readers get 404 title_retired, gifts refuse it, it is listed as retired; restored, it is read again", arguments: TestBackend.all)
    func retireTitle(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let token = try adminToken(f, [.catalog])
        let member = try accessToken(f, "member@example.com")
        try await withAPI(f) { client in
            #expect(try await client.access(title: "le-monde", article: "a1", token: member).status == .ok)
            // A metered read of the title, which the policy's impact report will meet.
            #expect(try await client.access(title: "le-monde", article: "m1", token: try accessToken(f, "reader@example.com")).status == .ok)
            #expect(try f.snapshot()["reads"] == 1, "the read is recorded")
            // A gift link given before the retirement.
            let giftToken = try #require(try await client.post("/v1/gifts", #"{"title":"le-monde","article":"a1"}"#, token: member).object()["giftToken"] as? String)
            #expect(try await client.post("/v1/access", GiftRouteTests.accessBody(title: "le-monde", article: "a1", gift: giftToken)).status == .ok)
            let retired = try await client.call(.post, "/admin/v1/titles/le-monde/retire", nil, token: token)
            #expect(retired.status == .ok, "\(retired.text)")
            let body = try retired.object()
            #expect(body["leftPlans"] as? [String] == ["news"] && body["emptiedPlans"] as? [String] == [])
            #expect((body["title"] as? [String: Any])?["retiredAt"] is String)

            for token in [member, nil] as [String?] {
                let refused = try await client.access(title: "le-monde", article: "a2", token: token)
                #expect(refused.status == .notFound && refused.errorCode == "title_retired", "\(refused.text)")
            }
            // A feed's preview answers each item: the retired title's, and an unknown one's, say so; the rest are decided.
            let preview = try await client.post("/v1/access/preview", #"{"articles":[{"title":"euronews","article":{"id":"p1"}},{"title":"le-monde","article":{"id":"p2"}},{"title":"nope","article":{"id":"p3"}}]}"#, token: member)
            #expect(preview.status == .ok, "\(preview.text)")
            let items = try #require(try preview.object()["articles"] as? [[String: Any]])
            #expect(items.map { $0["access"] as? String } == ["full", "none", "none"], "\(preview.text)")
            #expect(items.map { $0["unavailable"] as? String } == [nil, "title_retired", "title_not_found"], "\(preview.text)")
            #expect(try await client.access(title: "euronews", article: "a3", token: member).status == .ok, "the plan's other title stays")
            let gift = try await client.json("/v1/gifts", ["title": "le-monde", "article": "a1"], token: member)
            #expect(gift.status == .notFound && gift.errorCode == "title_retired", "\(gift.text)")
            let giftReads = try f.snapshot()["gift_reads"]
            let opened = try await client.post("/v1/access", GiftRouteTests.accessBody(title: "le-monde", article: "a1", gift: giftToken))
            #expect(opened.status == .notFound && opened.errorCode == "title_retired", "a link given before opens nothing: \(opened.text)")
            #expect(try f.snapshot()["gift_reads"] == giftReads, "and no gift read is recorded")
            // The policy's impact report replays reads: those of the retired title are left out, not an error.
            let policy = try f.service.policy()
            #expect(try f.service.policyImpact(current: policy, proposed: policy, since: f.clock.now().addingTimeInterval(-86_400), limit: 100).replayed == 0)
            let listed = try await client.call(.get, "/admin/v1/titles/le-monde", token: token)
            #expect(try listed.object()["retiredAt"] is String)
            #expect(try await client.call(.post, "/admin/v1/titles/le-monde/retire", #"{"now":true}"#, token: token).errorCode == "unknown_field")
            #expect(try await client.call(.post, "/admin/v1/titles/nope/retire", nil, token: token).errorCode == "title_not_found")
            let plan = try await client.call(.patch, "/admin/v1/plans/news", #"{"titles":["euronews","le-monde"]}"#, token: token)
            #expect(plan.status == .notFound && plan.errorCode == "title_retired", "\(plan.text)")

            let restored = try await client.call(.post, "/admin/v1/titles/le-monde/restore", nil, token: token)
            #expect(try restored.status == .ok && restored.object()["retiredAt"] == nil, "\(restored.text)")
            #expect(try await client.access(title: "le-monde", article: "a2", token: member).status == .ok)
            let actions = try f.service.auditEntries(limit: 10).map(\.action)
            #expect(actions.contains("title.retire") && actions.contains("title.restore"))
        }
    }

    @Test("support answers a data request and an erasure: the export file, audited; a delete refused while a provider renews, then forced; refusals write nothing", arguments: TestBackend.all)
    func exportAndDelete(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let token = try adminToken(f, [.privacy], subject: "sam")
        let support = try adminToken(f, [.members, .catalog, .audit, .policy], subject: "kim")
        _ = try await f.service.grantMembership(account: "reader@example.com", plan: "news", until: nil, source: MembershipSource(rawValue: "stripe"), actor: .system)
        try await withAPI(f) { client in
            // Every other scope together is not enough: a reader's data is `privacy`'s.
            let untouched = try f.snapshot()
            for (method, path) in [(HTTPRequest.Method.get, "/admin/v1/accounts/reader@example.com/export"), (.delete, "/admin/v1/accounts/reader@example.com?evenIfRenewing=true")] {
                let refused = try await client.call(method, path, token: support)
                #expect(refused.status == .forbidden && refused.errorCode == "insufficient_scope", "\(method) \(path): \(refused.status) \(refused.text)")
            }
            #expect(try f.snapshot() == untouched, "refused for its scope: nothing written, not even an audit entry")
            let file = try await client.call(.get, "/admin/v1/accounts/reader%40example.com/export", token: token)
            #expect(file.status == .ok && file.headers[.cacheControl] == "private, no-store", "\(file.text)")
            #expect(file.headers[.contentDisposition]?.hasPrefix(#"attachment; filename="paywall-data-"#) == true)
            #expect((try file.object()["account"] as? [String: Any])?["email"] as? String == "reader@example.com")
            let exported = try #require(try f.service.auditEntries(limit: 1).first)
            #expect(exported.action == "account.export" && exported.actor == .admin("sam"))

            let before = try f.snapshot()
            for (path, status, code) in [
                ("/admin/v1/accounts/reader@example.com", HTTPResponse.Status.conflict, "subscription_active"),
                ("/admin/v1/accounts/reader@example.com?evenIfRenewing=yes", .badRequest, "invalid_parameter"),
                ("/admin/v1/accounts/reader@example.com?force=true", .badRequest, "unknown_parameter"),
                ("/admin/v1/accounts/nobody@example.com", .notFound, "account_not_found"),
            ] {
                let refused = try await client.call(.delete, path, token: token)
                #expect(refused.status == status && refused.errorCode == code, "\(path): \(refused.status) \(refused.text)")
            }
            #expect(try f.snapshot() == before, "refusals write nothing")
            let deleted = try await client.call(.delete, "/admin/v1/accounts/reader@example.com?evenIfRenewing=true", token: token)
            #expect(deleted.status == .noContent && deleted.headers[.cacheControl] == "no-store", "\(deleted.text)")
            #expect(throws: ServiceError.self) { try f.service.account("reader@example.com") }
            let audited = try #require(try f.service.auditEntries(limit: 1).first)
            #expect(audited.action == "account.delete" && audited.actor == .admin("sam"))
            #expect(try await client.call(.get, "/admin/v1/accounts/reader@example.com/export", token: token).status == .notFound)
        }
    }

    @Test("every admin route succeeds with a token of its scope, and audits the admin as the actor")
    func everyRouteSucceeds() async throws {
        for call in Self.calls {
            let f = try seededFixture()
            let token = try adminToken(f, [call.scope], subject: "alice")
            let auditBefore = try f.snapshot()["audit_log"] ?? 0
            let response = try await withAPI(f) { client in try await client.call(call.method, call.path, call.body, token: token) }
            #expect([.ok, .created, .noContent].contains(response.status), "\(call.method) \(call.path): \(response.text)")
            #expect(response.status == .noContent || response.headers[.contentType]?.hasPrefix("application/json") == true)
            let entries = try f.service.auditEntries(limit: 1)
            #expect(try (try f.snapshot()["audit_log"] ?? 0) > auditBefore, "\(call.method) \(call.path) wrote no audit entry")
            #expect(entries.first?.actor == .admin("alice"), "\(call.method) \(call.path): \(entries.first?.actor.rawValue ?? "none")")
        }
    }

    /// The token mistakes and what each must get.
    enum Mistake: String, CaseIterable, Sendable {
        case none, malformedHeader, reader, device, comp, wrongScope, expired, wrongAudience, wrongType, badSignature, revoked
    }

    @Test("every token and scope mistake on every route: 401 or 403 with a stable code, nothing written", arguments: Mistake.allCases)
    func tokenMistakes(_ mistake: Mistake) async throws {
        let f = try seededFixture()
        for call in Self.calls {
            let other = AdminScope.allCases.first { $0 != call.scope } ?? .catalog
            var token: String?
            var header: String?
            switch mistake {
            case .none: token = nil
            case .malformedHeader: header = "Token abc"
            case .reader: token = try accessToken(f, "member@example.com")
            case .device: token = try f.service.issueDeviceToken(renewing: nil).token
            case .comp: token = try f.service.issueCompGrant(account: "reader@example.com", titles: ["euronews"], days: 1, audience: nil, actor: f.admin).token
            case .wrongScope: token = try adminToken(f, [other])
            case .expired:
                let issued = try adminToken(f, [call.scope], lifetime: 60)
                f.clock.advance(by: 120)
                token = issued
            case .wrongAudience: token = try adminToken(f, [call.scope], audience: "somebody-else")
            case .wrongType:
                // Signed with the service's own key, but typed as a generic JWT.
                _ = try adminToken(f)  // makes the development key
                let ring = try KeyRing.load(directory: f.folder.appendingPathComponent("Keys"))
                let (record, key) = try ring.signingKey(at: f.clock.now())
                let now = Int(f.clock.now().timeIntervalSince1970)
                let payload = #"{"iss":"paywall","sub":"alice","aud":"paywall-api","iat":\#(now),"exp":\#(now + 600),"jti":"x","scope":"catalog members audit policy"}"#
                token = try JWSSigner(key: key, kid: record.kid).sign(type: "JWT", payload: Array(payload.utf8))
            case .badSignature:
                let good = try adminToken(f, [call.scope])
                token = String(good.dropLast(4)) + (good.hasSuffix("AAAA") ? "BBBB" : "AAAA")
            case .revoked:
                let issued = try f.service.issueAdminToken(subject: "alice", scopes: [call.scope], lifetime: nil, audience: nil, actor: f.admin)
                try f.service.revokeAdminTokens(tokenID: issued.claims.tokenID, subject: nil, actor: f.admin)
                token = issued.token
            }
            let before = try f.snapshot()
            let (sentToken, sentHeader) = (token, header)
            let response = try await withAPI(f) { client in
                var fields: HTTPFields = [:]
                if call.body != nil { fields[.contentType] = "application/json" }
                if let sentToken { fields[.authorization] = "Bearer \(sentToken)" }
                if let sentHeader { fields[.authorization] = sentHeader }
                return try await client.execute(uri: call.path, method: call.method, headers: fields, body: call.body.map { ByteBuffer(string: $0) })
            }
            let route = "\(call.method) \(call.path) with \(mistake)"
            switch mistake {
            case .none:
                #expect(response.status == .unauthorized, "\(route)")
                #expect(response.errorCode == "token_required", "\(route)")
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            case .malformedHeader, .expired, .wrongAudience, .wrongType, .badSignature, .revoked:
                #expect(response.status == .unauthorized, "\(route)")
                #expect(response.errorCode == "invalid_token", "\(route)")
                #expect(response.errorMessage == "the token was refused" || mistake == .malformedHeader, "the reason stays in the log: \(response.text)")
            case .reader, .device, .comp:
                #expect(response.status == .forbidden, "\(route)")
                #expect(response.errorCode == "admin_token_required", "\(route)")
            case .wrongScope:
                #expect(response.status == .forbidden, "\(route)")
                #expect(response.errorCode == "insufficient_scope", "\(route)")
                #expect(response.errorMessage?.contains("'\(call.scope.rawValue)'") == true, "\(route): \(response.text)")
            }
            #expect(try f.snapshot() == before, "\(route) wrote something")
            if mistake == .expired { f.clock.advance(by: -120) }
        }
    }

    @Test("titles: list, create, get, retag; bad input refused with stable codes, nothing written")
    func titles() async throws {
        let f = try seededFixture()
        let token = try adminToken(f, [.catalog])
        let (list, created, duplicate, got, missing, badSlug, retagged, unknownField, badTags, query) = try await withAPI(f) { client in
            (try await client.call(.get, "/admin/v1/titles", token: token),
             try await client.call(.post, "/admin/v1/titles", #"{"id":"el-pais","name":"El País","publisher":"PRISA"}"#, token: token),
             try await client.call(.post, "/admin/v1/titles", #"{"id":"euronews","name":"E","publisher":"E"}"#, token: token),
             try await client.call(.get, "/admin/v1/titles/el-pais", token: token),
             try await client.call(.get, "/admin/v1/titles/nope", token: token),
             try await client.call(.get, "/admin/v1/titles/Not%20A%20Slug", token: token),
             try await client.call(.patch, "/admin/v1/titles/el-pais", #"{"tags":["Spanish","daily"]}"#, token: token),
             try await client.call(.post, "/admin/v1/titles", #"{"id":"x","name":"X","publisher":"X","owner":"me"}"#, token: token),
             try await client.call(.patch, "/admin/v1/titles/el-pais", #"{"tags":["no spaces"]}"#, token: token),
             try await client.call(.get, "/admin/v1/titles?limit=1", token: token))
        }
        #expect(list.status == .ok)
        #expect(try (try list.object()["titles"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["euronews", "le-monde", "the-daily"])
        #expect(created.status == .created)
        #expect(try created.object()["id"] as? String == "el-pais")
        #expect(duplicate.status == .conflict && duplicate.errorCode == "title_exists")
        #expect(try got.status == .ok && (try got.object()["publisher"] as? String) == "PRISA")
        #expect(missing.status == .notFound && missing.errorCode == "title_not_found")
        #expect(badSlug.status == .badRequest && badSlug.errorCode == "invalid_identifier", "\(badSlug.text)")
        #expect(try retagged.status == .ok && (try retagged.object()["tags"] as? [String]) == ["daily", "spanish"])
        #expect(unknownField.status == .badRequest && unknownField.errorCode == "unknown_field")
        #expect(badTags.status == .badRequest && badTags.errorCode == "invalid_identifier", "\(badTags.text)")
        #expect(query.status == .badRequest && query.errorCode == "unknown_parameter")
        #expect(try f.service.titles().count == 4)
        #expect(try f.service.auditEntries(target: "title:el-pais", limit: 10).map(\.actor).allSatisfy { $0 == .admin("alice") })
    }

    @Test("catalog changes: a title renamed, a plan's titles changed (its members read them at once); bad input refused with nothing written")
    func catalogUpdates() async throws {
        let f = try seededFixture()
        let token = try adminToken(f, [.catalog])
        let member = try accessToken(f, "member@example.com")
        let membersRule = "members read the titles in their plan"
        @Sendable func rules(_ client: any TestClientProtocol, _ title: String, _ article: String) async throws -> [String] {
            let response = try await client.call(.post, "/v1/access", #"{"title":"\#(title)","article":{"id":"\#(article)"}}"#, token: member)
            return try response.object()["decidingRules"] as? [String] ?? []
        }
        try await withAPI(f) { client in
            #expect(try await !rules(client, "the-daily", "d1").contains(membersRule), "not in the plan yet")
            let before = try f.snapshot()
            let audited = try f.snapshot()["audit_log"]
            // Refused, nothing written.
            for (body, status, code) in [
                ("{}", HTTPResponse.Status.badRequest, "missing_field"),
                (#"{"titles":["euronews"],"allTitles":true}"#, .badRequest, "invalid_value"),
                (#"{"titles":[]}"#, .badRequest, "invalid_value"),
                (#"{"titles":["euronews","nope"]}"#, .notFound, "title_not_found"),
                (#"{"period":"year"}"#, .badRequest, "unknown_field"),
                (#"{"name":"\u0007"}"#, .badRequest, "invalid_name"),
            ] {
                let response = try await client.call(.patch, "/admin/v1/plans/news", body, token: token)
                #expect(response.status == status && response.errorCode == code, "\(body): \(response.text)")
            }
            let unknown = try await client.call(.patch, "/admin/v1/plans/nope", #"{"name":"N"}"#, token: token)
            #expect(unknown.status == .notFound && unknown.errorCode == "plan_not_found")
            #expect(try f.snapshot() == before && (try f.snapshot()["audit_log"]) == audited)
            #expect(try f.service.plans().first { $0.id.rawValue == "news" }?.bundle == .titles([TitleID(rawValue: "euronews"), TitleID(rawValue: "le-monde")]))

            // The plan now gives euronews and the-daily: its member reads the-daily in full at
            // once (the cached facts were dropped), le-monde no longer.
            let changed = try await client.call(.patch, "/admin/v1/plans/news", #"{"titles":["the-daily","euronews"]}"#, token: token)
            #expect(try changed.status == .ok && (try changed.object()["titles"] as? [String]) == ["euronews", "the-daily"], "\(changed.text)")
            #expect(try await rules(client, "the-daily", "d2").contains(membersRule))
            #expect(try await !rules(client, "le-monde", "l1").contains(membersRule))
            let entry = try #require(try f.service.auditEntries(target: "plan:news", limit: 1).first)
            #expect(entry.action == "plan.update" && entry.actor == .admin("alice") && entry.details.contains("\"previous_titles\":\"euronews,le-monde\""), "\(entry)")
            let everything = try await client.call(.patch, "/admin/v1/plans/news", #"{"name":"Everything","allTitles":true}"#, token: token)
            #expect(try everything.status == .ok && (try everything.object()["allTitles"] as? Bool) == true && (try everything.object()["name"] as? String) == "Everything")
            #expect(try await rules(client, "le-monde", "l2").contains(membersRule))

            // A title renamed; the same again writes nothing; a bad tag beside a new name changes nothing.
            let renamed = try await client.call(.patch, "/admin/v1/titles/euronews", #"{"name":"Euronews English","publisher":"Euronews SA"}"#, token: token)
            #expect(try renamed.status == .ok && (try renamed.object()["name"] as? String) == "Euronews English")
            let renames = try f.service.auditEntries(target: "title:euronews", limit: 10).filter { $0.action == "title.update" }
            #expect(renames.count == 1 && renames.first?.details.contains("\"previous_name\":\"Euronews\"") == true && renames.first?.details.contains("publisher") == false,
                    "only what changed: \(renames)")
            _ = try await client.call(.patch, "/admin/v1/titles/euronews", #"{"name":"Euronews English"}"#, token: token)
            #expect(try f.service.auditEntries(target: "title:euronews", limit: 10).filter { $0.action == "title.update" }.count == 1)
            let mixed = try await client.call(.patch, "/admin/v1/titles/euronews", #"{"name":"Other","tags":["no spaces"]}"#, token: token)
            #expect(mixed.status == .badRequest && mixed.errorCode == "invalid_identifier", "\(mixed.text)")
            // Tags alone: audited with the previous ones; the same tags again write nothing.
            #expect(try await client.call(.patch, "/admin/v1/titles/euronews", #"{"tags":["europe"]}"#, token: token).status == .ok)
            let tagged = try f.service.auditEntries(target: "title:euronews", limit: 20)
            #expect(tagged.first?.action == "title.set-tags" && tagged.first?.details.contains("\"previous_tags\":\"\"") == true, "\(tagged.first.map(\.details) ?? "")")
            #expect(try await client.call(.patch, "/admin/v1/titles/euronews", #"{"tags":["europe"]}"#, token: token).status == .ok)
            #expect(try f.service.auditEntries(target: "title:euronews", limit: 20).count == tagged.count)
            let empty = try await client.call(.patch, "/admin/v1/titles/euronews", "{}", token: token)
            #expect(empty.status == .badRequest && empty.errorCode == "missing_field")
            #expect(try f.service.titles().first { $0.id.rawValue == "euronews" }?.name == "Euronews English")
        }
    }

    @Test("plans: list, create, get; an unknown title or period refused")
    func plans() async throws {
        let f = try seededFixture()
        let token = try adminToken(f, [.catalog])
        let before = try f.snapshot()
        let (forgot, both) = try await withAPI(f) { client in
            (try await client.call(.post, "/admin/v1/plans", #"{"id":"p","name":"P","period":"month"}"#, token: token),
             try await client.call(.post, "/admin/v1/plans", #"{"id":"p","name":"P","period":"month","titles":["euronews"],"allTitles":true}"#, token: token))
        }
        // Neither titles nor allTitles: refused, not a plan of the whole catalog.
        #expect(forgot.status == .badRequest && forgot.errorCode == "missing_field" && forgot.text.contains("allTitles"), "\(forgot.text)")
        #expect(both.status == .badRequest && both.errorCode == "invalid_field", "\(both.text)")
        let (badPeriod, badTitle, missingName, noTitles) = try await withAPI(f) { client in
            (try await client.call(.post, "/admin/v1/plans", #"{"id":"p","name":"P","period":"decade","titles":["euronews"]}"#, token: token),
             try await client.call(.post, "/admin/v1/plans", #"{"id":"p","name":"P","period":"month","titles":["nope"]}"#, token: token),
             try await client.call(.post, "/admin/v1/plans", #"{"id":"p","period":"month"}"#, token: token),
             try await client.call(.post, "/admin/v1/plans", #"{"id":"p","name":"P","period":"month","titles":[]}"#, token: token))
        }
        #expect(badPeriod.status == .badRequest && badPeriod.errorCode == "invalid_value")
        // An empty list is a mistake, not every title.
        #expect(noTitles.status == .badRequest && noTitles.errorCode == "invalid_value", "\(noTitles.text)")
        #expect(badTitle.status == .notFound && badTitle.errorCode == "title_not_found")
        #expect(missingName.status == .badRequest && missingName.errorCode == "missing_field")
        #expect(try f.snapshot() == before)
        let (created, all, one, missing) = try await withAPI(f) { client in
            (try await client.call(.post, "/admin/v1/plans", #"{"id":"everything","name":"Everything","period":"year","allTitles":true}"#, token: token),
             try await client.call(.get, "/admin/v1/plans", token: token),
             try await client.call(.get, "/admin/v1/plans/everything", token: token),
             try await client.call(.get, "/admin/v1/plans/nope", token: token))
        }
        #expect(try created.status == .created && (try created.object()["allTitles"] as? Bool) == true)
        #expect(try (try all.object()["plans"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["everything", "news"])
        #expect(try one.status == .ok && (try one.object()["period"] as? String) == "year")
        #expect(missing.status == .notFound && missing.errorCode == "plan_not_found")
    }

    @Test("a plan nothing refers to is deleted (204, audited); one with memberships or a billing mapping is not (409 plan_in_use); refusals write nothing", arguments: TestBackend.all)
    func deletePlan(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let catalog = try adminToken(f, [.catalog])
        let members = try adminToken(f, [.members])
        _ = try f.service.addPlan(id: "typo", name: "Typo", period: "month", titles: ["euronews"], actor: f.admin)
        _ = try f.service.addPlan(id: "sold", name: "Sold", period: "year", titles: nil, actor: f.admin)
        _ = try f.service.mapBillingProduct(provider: .stripe, externalID: "price_sold", plan: "sold", actor: f.admin)
        try await withAPI(f) { client in
            let before = try f.snapshot()
            let refusals: [(TestResponse, HTTPResponse.Status, String)] = [
                (try await client.call(.delete, "/admin/v1/plans/news", token: catalog), .conflict, "plan_in_use"),
                (try await client.call(.delete, "/admin/v1/plans/sold", token: catalog), .conflict, "plan_in_use"),
                (try await client.call(.delete, "/admin/v1/plans/nope", token: catalog), .notFound, "plan_not_found"),
                (try await client.call(.delete, "/admin/v1/plans/typo", token: members), .forbidden, "insufficient_scope"),
                (try await client.call(.delete, "/admin/v1/plans/typo", #"{"force":true}"#, token: catalog), .badRequest, "unknown_field"),
            ]
            for (reply, status, code) in refusals {
                #expect(reply.status == status && reply.errorCode == code, "\(reply.status) \(reply.text)")
            }
            #expect(refusals[0].0.text.contains("membership"), "\(refusals[0].0.text)")
            #expect(try f.snapshot() == before, "refusals write nothing")
            let deleted = try await client.call(.delete, "/admin/v1/plans/typo", token: catalog)
            #expect(deleted.status == .noContent, "\(deleted.text)")
            #expect(try await client.call(.get, "/admin/v1/plans/typo", token: catalog).status == .notFound)
            let entry = try #require(try f.service.auditEntries(target: "plan:typo", limit: 5).first)
            #expect(entry.action == "plan.delete" && entry.actor == .admin("alice") && entry.details.contains("euronews"))
            // The id is free again.
            #expect(try f.service.addPlan(id: "typo", name: "Fixed", period: "month", titles: nil, actor: f.admin).name == "Fixed")
        }
    }

    @Test("accounts by email or id; memberships granted, comped, canceled three ways, marked past due")
    func members() async throws {
        let f = try seededFixture()
        let token = try adminToken(f, [.members])
        let member = try f.service.account("member@example.com")
        // A device signed in and a reset link waiting: support sees both (never the link's token).
        _ = try f.service.signInReader(email: "member@example.com", password: "correct horse battery", deviceName: "Kitchen tablet", client: "test")
        _ = try f.service.requestPasswordReset(email: "member@example.com")
        let (byEmail, byID, unknown) = try await withAPI(f) { client in
            (try await client.call(.get, "/admin/v1/accounts/MEMBER@example.com", token: token),
             try await client.call(.get, "/admin/v1/accounts/\(member.id.rawValue)", token: token),
             try await client.call(.get, "/admin/v1/accounts/nobody@example.com", token: token))
        }
        #expect(byEmail.status == .ok && byEmail.headers[.cacheControl] == "private, no-store")
        #expect(try ((try byEmail.object()["account"] as? [String: Any])?["id"] as? String) == member.id.rawValue)
        #expect(try ((try byID.object()["memberships"] as? [[String: Any]])?.first?["plan"] as? String) == "news")
        #expect(try ((try byEmail.object()["sessions"] as? [[String: Any]])?.map { $0["deviceName"] as? String }) == ["Kitchen tablet"])
        #expect(try ((try byEmail.object()["pendingLinks"] as? [[String: Any]])?.map { $0["purpose"] as? String }) == ["reset-password"])
        #expect(!byEmail.text.contains("#token="))
        #expect(unknown.status == .notFound && unknown.errorCode == "account_not_found")

        let before = try f.snapshot()
        let refused = try await withAPI(f) { client in
            [try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships", #"{"plan":"news"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships", #"{"plan":"nope"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships", #"{"plan":"news","source":"stripe"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships", #"{"plan":"news","until":"2020-01-01T00:00:00Z"}"#, token: token),
             // "Forever" typed as 9999: no token could carry it (a NumericDate stops at 10^11).
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships", #"{"plan":"news","until":"9999-12-31T23:59:59Z"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships", #"{"plan":"news","reason":"\u001b[2J"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships", "{\"plan\":\"news\",\"reason\":\"\(String(repeating: "r", count: 201))\"}", token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships/cancel", "{}", token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships/cancel", #"{"mode":"later"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships/past-due", "{}", token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships/past-due", #"{"graceEnd":"2025-01-01T00:00:00Z"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships/past-due", #"{"graceEnd":"soon"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships/past-due", #"{"graceEnd":"9999-12-31T00:00:00Z"}"#, token: token)]
        }
        #expect(refused.map(\.status) == [.conflict, .notFound, .badRequest, .badRequest, .badRequest, .badRequest, .badRequest, .notFound, .badRequest, .badRequest, .badRequest, .badRequest, .badRequest])
        #expect(refused.map(\.errorCode) == [
            "membership_exists", "plan_not_found", "invalid_field", "invalid_value", "invalid_value", "invalid_name", "invalid_name", "membership_not_found",
            "invalid_field", "missing_field", "invalid_value", "invalid_field", "invalid_value",
        ])
        #expect(refused[4].text.contains("at most 100 years ahead") && refused[12].text.contains("at most 100 years ahead"))
        #expect(try f.snapshot() == before, "refusals write nothing")

        let (comp, pastDue, noRenewal, noRenewalAgain, canceled, ended, history) = try await withAPI(f) { client in
            (try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships", #"{"plan":"news","source":"comp","until":"2026-03-01T00:00:00Z"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships/past-due", #"{"plan":"news","graceEnd":"2026-01-10T00:00:00Z"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships/cancel", #"{"mode":"no_renewal"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships/cancel", #"{"mode":"no_renewal"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/memberships/cancel", #"{"plan":"news"}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/memberships/cancel", #"{"mode":"now"}"#, token: token),
             try await client.call(.get, "/admin/v1/accounts/member@example.com/memberships", token: token))
        }
        #expect(try comp.status == .created && (try comp.object()["source"] as? String) == "comp")
        #expect(try pastDue.status == .ok && (try pastDue.object()["status"] as? String) == "past_due")
        #expect(try (try pastDue.object()["gracePeriodEnd"] as? String) == "2026-01-10T00:00:00Z")
        #expect(try (try noRenewal.object()["cancelAtPeriodEnd"] as? Bool) == true && (try noRenewal.object()["status"] as? String) == "active")
        #expect(noRenewalAgain.status == .conflict && noRenewalAgain.errorCode == "invalid_transition", "asked again: already so, nothing written")
        #expect(try (try canceled.object()["status"] as? String) == "canceled")
        #expect(try (try ended.object()["status"] as? String) == "expired")
        let memberships = try #require(try history.object()["memberships"] as? [[String: Any]])
        #expect((memberships.first?["history"] as? [[String: Any]])?.compactMap { $0["to"] as? String } == ["active", "past_due", "expired"])
        #expect((memberships.first?["history"] as? [[String: Any]])?.last?["actor"] as? String == "admin:alice")
    }

    @Test("trials: shown, started once per person, ended; comps issued")
    func trials() async throws {
        let f = try seededFixture()
        let token = try adminToken(f, [.members])
        let (none, started, again, shown, ended, endNone, badDays, comp, badComp) = try await withAPI(f) { client in
            (try await client.call(.get, "/admin/v1/accounts/reader@example.com/trial", token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/trial", "{}", token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/trial", #"{"days":3}"#, token: token),
             try await client.call(.get, "/admin/v1/accounts/reader@example.com/trial", token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/trial/end", token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/trial/end", token: token),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/trial", #"{"days":0}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/comps", #"{"titles":["the-daily"],"days":3}"#, token: token),
             try await client.call(.post, "/admin/v1/accounts/reader@example.com/comps", #"{"titles":["the-daily"],"days":90}"#, token: token))
        }
        #expect(try none.status == .ok && (try none.object()["eligible"] as? Bool) == true && (try none.object()["trial"]) == nil)
        #expect(try started.status == .created && (try started.object()["endsAt"] as? String) == "2026-01-15T00:00:00Z")
        #expect(again.status == .conflict && again.errorCode == "trial_already_used")
        #expect(try ((try shown.object()["trial"] as? [String: Any])?["status"] as? String) == "active")
        #expect(try ended.status == .ok && (try ended.object()["status"] as? String) == "canceled")
        #expect(endNone.status == .notFound && endNone.errorCode == "trial_not_found")
        #expect(badDays.status == .badRequest && badDays.errorCode == "invalid_field")
        #expect(try comp.status == .created && (try comp.object()["kind"] as? String) == "paywall-comp+jwt")
        #expect(badComp.status == .badRequest && badComp.errorCode == "invalid_value")

        // Ending it again, or ending one that ran its course: 409, nothing written (an
        // expired trial must not read "canceled by an admin" in reports).
        _ = try await f.service.startTrial(account: "member@example.com", length: 86_400, actor: f.admin)
        f.clock.advance(by: 2 * 86_400)
        let later = try adminToken(f, [.members])
        let before = try f.snapshot()
        let (twice, expired) = try await withAPI(f) { client in
            (try await client.call(.post, "/admin/v1/accounts/reader@example.com/trial/end", token: later),
             try await client.call(.post, "/admin/v1/accounts/member@example.com/trial/end", token: later))
        }
        #expect(twice.status == .conflict && twice.errorCode == "invalid_transition" && twice.text.contains("it is canceled"), "\(twice.text)")
        #expect(expired.status == .conflict && expired.errorCode == "invalid_transition" && expired.text.contains("it is expired"), "\(expired.text)")
        #expect(try f.snapshot() == before, "refusals write nothing")
        let after = try await withAPI(f) { client in try await client.call(.get, "/admin/v1/accounts/member@example.com/trial", token: later) }
        #expect(try ((try after.object()["trial"] as? [String: Any])?["status"] as? String) == "expired", "an expired trial stays as it ended")
    }

    @Test("the audit log: filters and keyset paging")
    func audit() async throws {
        let f = try seededFixture()
        let token = try adminToken(f, [.audit])
        let total = try f.snapshot()["audit_log"] ?? 0
        let (first, badLimit, badSince, badBefore, unknown, byAction, byPrefix, byActor, byAccount, bothFilters) = try await withAPI(f) { client in
            (try await client.call(.get, "/admin/v1/audit?limit=3", token: token),
             try await client.call(.get, "/admin/v1/audit?limit=0", token: token),
             try await client.call(.get, "/admin/v1/audit?since=yesterday", token: token),
             try await client.call(.get, "/admin/v1/audit?before=-1", token: token),
             try await client.call(.get, "/admin/v1/audit?who=me", token: token),
             try await client.call(.get, "/admin/v1/audit?action=title.add", token: token),
             try await client.call(.get, "/admin/v1/audit?action=membership.", token: token),
             try await client.call(.get, "/admin/v1/audit?actor=admin:alice", token: token),
             try await client.call(.get, "/admin/v1/audit?account=member@example.com", token: token),
             try await client.call(.get, "/admin/v1/audit?account=member@example.com&target=catalog", token: token))
        }
        let page = try first.object()
        let entries = try #require(page["entries"] as? [[String: Any]])
        #expect(entries.count == 3)
        let next = try #require(page["nextBefore"] as? Int)
        #expect(next == entries.last?["id"] as? Int)
        #expect([badLimit, badSince, badBefore].allSatisfy { $0.status == .badRequest && $0.errorCode == "invalid_parameter" })
        #expect(unknown.status == .badRequest && unknown.errorCode == "unknown_parameter")
        #expect(try (try byAction.object()["entries"] as? [[String: Any]])?.count == 3)
        #expect(try (try byPrefix.object()["entries"] as? [[String: Any]])?.compactMap { $0["action"] as? String } == ["membership.grant"])
        // The admin's own earlier reads of the log are in it, as admin:alice.
        #expect(try (try byActor.object()["entries"] as? [[String: Any]])?.allSatisfy { $0["action"] as? String == "admin.audit.list" } == true)
        #expect(try (try byActor.object()["entries"] as? [[String: Any]])?.isEmpty == false)
        #expect(try (try byAccount.object()["entries"] as? [[String: Any]])?.compactMap { $0["action"] as? String } == ["membership.grant", "account.create"])
        #expect(bothFilters.status == .badRequest && bothFilters.errorCode == "invalid_value")

        // Paging walks every entry once, newest first.
        var seen: [Int] = []
        var before: Int?
        repeat {
            let uri = "/admin/v1/audit?limit=4" + (before.map { "&before=\($0)" } ?? "")
            let response = try await withAPI(f) { client in try await client.call(.get, uri, token: token) }
            let object = try response.object()
            seen += (object["entries"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
            before = object["nextBefore"] as? Int
        } while before != nil && seen.count < 1_000
        #expect(seen.count >= total && seen == seen.sorted(by: >) && Set(seen).count == seen.count)
    }

    @Test("reads per title over a period, metered and gift; bad periods refused")
    func reads() async throws {
        let f = try seededFixture()
        let token = try adminToken(f, [.audit])
        let reader = try accessToken(f, "reader@example.com")
        let (report, oneTitle, backwards, missing, unknownTitle) = try await withAPI(f) { client in
            _ = try await client.access(article: "a1", token: reader)
            _ = try await client.access(article: "a1", token: reader)
            _ = try await client.access(title: "the-daily", article: "d1", token: reader)
            return (try await client.call(.get, "/admin/v1/reads?from=2025-12-31T00:00:00Z&to=2026-01-02T00:00:00Z", token: token),
                    try await client.call(.get, "/admin/v1/reads?from=2025-12-31T00:00:00Z&to=2026-01-02T00:00:00Z&title=le-monde", token: token),
                    try await client.call(.get, "/admin/v1/reads?from=2026-01-02T00:00:00Z&to=2025-12-31T00:00:00Z", token: token),
                    try await client.call(.get, "/admin/v1/reads?from=2026-01-02T00:00:00Z", token: token),
                    try await client.call(.get, "/admin/v1/reads?from=2025-12-31T00:00:00Z&to=2026-01-02T00:00:00Z&title=nope", token: token))
        }
        let titles = try #require(try report.object()["titles"] as? [[String: Any]])
        #expect(titles.compactMap { $0["title"] as? String } == ["euronews", "the-daily"])
        // The reader's re-read of a1 counts once.
        #expect(titles.first?["reads"] as? Int == 1 && titles.first?["articles"] as? Int == 1 && titles.first?["readers"] as? Int == 1)
        #expect(try ((try oneTitle.object()["titles"] as? [[String: Any]])?.first?["reads"] as? Int) == 0)
        #expect(backwards.status == .badRequest && backwards.errorCode == "invalid_value")
        #expect(missing.status == .badRequest && missing.errorCode == "missing_parameter")
        #expect(unknownTitle.status == .notFound && unknownTitle.errorCode == "title_not_found")
    }

    @Test("the policy in force and a reload, audited with both revisions; a broken folder is refused and the running policy stays")
    func policy() async throws {
        let policies = try TestFolder("paywall-policies")
        for name in try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Policies").path) {
            try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("Policies/\(name)"), to: policies.url.appendingPathComponent(name))
        }
        let f = try seededFixture { $0.policyDirectory = policies.url }
        let token = try adminToken(f, [.policy])
        let revision = try f.service.policy().revision
        let (shown, reloaded) = try await withAPI(f) { client in
            (try await client.call(.get, "/admin/v1/policy", token: token), try await client.call(.post, "/admin/v1/policy/reload", token: token))
        }
        #expect(try shown.status == .ok && (try shown.object()["revision"] as? String) == revision)
        #expect(try (try shown.object()["meters"] as? [[String: Any]])?.isEmpty == false)
        #expect(try reloaded.status == .ok && (try reloaded.object()["previousRevision"] as? String) == revision)
        #expect(try f.service.auditEntries(target: "policy", limit: 1).first?.action == "policy.reload")

        let files = try FileManager.default.contentsOfDirectory(atPath: policies.url.path).filter { $0.hasSuffix(".policy") }
        let file = try #require(files.first.map { policies.url.appendingPathComponent($0) })
        try "rule broken {".write(to: file, atomically: true, encoding: .utf8)
        let before = try f.snapshot()
        let (refused, badBody) = try await withAPI(f) { client in
            (try await client.call(.post, "/admin/v1/policy/reload", token: token), try await client.call(.post, "/admin/v1/policy/reload", #"{"force":true}"#, token: token))
        }
        #expect(refused.status == .badRequest && refused.errorCode == "invalid_policy")
        // The admin is told why, with the policy's file and line, and that the old one stays.
        #expect(refused.text.contains("the one in force stays") && refused.text.contains(file.lastPathComponent + ":1:"), "\(refused.text)")
        #expect(badBody.status == .badRequest && badBody.errorCode == "unknown_field")
        #expect(try f.service.policy().revision == revision)
        // Nothing changed but the audit log, which records the refused attempt (once: the
        // malformed body was refused before anything was tried).
        var after = try f.snapshot()
        #expect(after["audit_log"] == (before["audit_log"] ?? 0) + 1)
        after["audit_log"] = before["audit_log"]
        #expect(after == before)
        let entry = try #require(try f.service.auditEntries(target: "policy", limit: 1).first)
        #expect(entry.action == "policy.reload-refused" && entry.details.contains(file.lastPathComponent), "\(entry.details)")
    }

    @Test("other methods on admin paths: 405 with Allow")
    func methods() async throws {
        let f = try seededFixture()
        let (delete, put) = try await withAPI(f) { client in
            (try await client.call(.delete, "/admin/v1/titles"), try await client.call(.put, "/admin/v1/titles/euronews"))
        }
        #expect(delete.status == .methodNotAllowed && delete.headers[.allow] == "GET, HEAD, POST")
        #expect(put.status == .methodNotAllowed && put.headers[.allow] == "GET, HEAD, PATCH")
    }
}
