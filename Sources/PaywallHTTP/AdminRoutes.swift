import Foundation
import HTTPTypes
import Hummingbird
import PaywallCore
import PaywallService
import PaywallStore
import PaywallTokens
import PaywallViews

/// The admin API under `/admin/v1`: a publisher's back office. Each route authenticates an
/// admin token with the scope it needs (``PaywallService/adminPrincipal(bearer:requiring:)``),
/// before reading anything of the request, so a caller without one learns nothing but 401
/// or 403; then it parses, calls one service method on the blocking pool (every call writes
/// the audit log) and renders a view.
extension PaywallAPI {
    /// The admin routes, with the one method each takes (see ``PaywallAPI/routes``).
    static let adminRoutes: [(path: String, allowed: HTTPRequest.Method)] = [
        ("/admin/v1/titles", .get), ("/admin/v1/titles", .post),
        ("/admin/v1/titles/{title}", .get), ("/admin/v1/titles/{title}", .patch),
        ("/admin/v1/titles/{title}/retire", .post), ("/admin/v1/titles/{title}/restore", .post),
        ("/admin/v1/plans", .get), ("/admin/v1/plans", .post), ("/admin/v1/plans/{plan}", .get), ("/admin/v1/plans/{plan}", .patch),
        ("/admin/v1/plans/{plan}", .delete),
        ("/admin/v1/accounts", .get), ("/admin/v1/accounts/{account}", .get), ("/admin/v1/accounts/{account}", .delete),
        ("/admin/v1/accounts/{account}/export", .get),
        ("/admin/v1/accounts/{account}/memberships", .get), ("/admin/v1/accounts/{account}/memberships", .post),
        ("/admin/v1/accounts/{account}/memberships/cancel", .post),
        ("/admin/v1/accounts/{account}/memberships/past-due", .post),
        ("/admin/v1/accounts/{account}/comps", .post),
        ("/admin/v1/accounts/{account}/trial", .get), ("/admin/v1/accounts/{account}/trial", .post),
        ("/admin/v1/accounts/{account}/trial/end", .post), ("/admin/v1/accounts/{account}/sign-out", .post),
        ("/admin/v1/audit", .get), ("/admin/v1/reads", .get),
        ("/admin/v1/policy", .get), ("/admin/v1/policy/reload", .post),
    ]

    func addAdminRoutes(to router: Router<PaywallRequestContext>) {
        let group = router.group("/admin/v1")
        group.get("/titles") { request, _ in
            let admin = try await self.admin(request, .catalog)
            try Self.noQuery(request)
            let titles = try await service.blocking { service throws(ServiceError) in try service.adminTitles(by: admin) }
            return try Self.json(["titles": titles.map(TitleView.init)])
        }
        group.post("/titles") { request, _ in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let body = try await RequestBody.object(&request).only(["id", "name", "publisher", "tags"])
            let (id, name, publisher) = (try body.requiredString("id"), try body.requiredString("name"), try body.requiredString("publisher"))
            let tags = try body.strings("tags", max: Title.maximumTags) ?? []
            let title = try await service.blocking { service throws(ServiceError) in
                try service.addTitle(id: id, name: name, publisher: publisher, tags: tags, actor: admin.actor)
            }
            return try Self.created(TitleView(title))
        }
        group.get("/titles/{title}") { request, context in
            let admin = try await self.admin(request, .catalog)
            try Self.noQuery(request)
            let id = try Self.parameter(context, "title")
            return try Self.json(TitleView(try await service.blocking { service throws(ServiceError) in try service.adminTitle(id, by: admin) }))
        }
        group.patch("/titles/{title}") { request, context in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let id = try Self.parameter(context, "title")
            let body = try await RequestBody.object(&request).only(["tags", "name", "publisher"])
            let tags = try body.strings("tags", max: Title.maximumTags)
            let name = try body.string("name"), publisher = try body.string("publisher")
            guard tags != nil || name != nil || publisher != nil else {
                throw APIError(status: .badRequest, code: "missing_field", message: "give 'name', 'publisher' or 'tags' (the id cannot change)")
            }
            let title = try await service.blocking { service throws(ServiceError) in
                // Tags alone keep their own audit action (as `paywall title tag`).
                if name == nil, publisher == nil, let tags { return try service.setTitleTags(id: id, tags: tags, actor: admin.actor) }
                return try service.updateTitle(id: id, name: name, publisher: publisher, tags: tags, actor: admin.actor)
            }
            return try Self.json(TitleView(title))
        }
        // A title leaves the catalog (its publisher left), or comes back.
        group.post("/titles/{title}/retire") { request, context in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let id = try Self.parameter(context, "title")
            _ = try await RequestBody.optionalObject(&request)?.only([])
            let (title, left, emptied) = try await service.blocking { service throws(ServiceError) in try service.retireTitle(id: id, actor: admin.actor) }
            return try Self.json(RetiredTitleView(title: TitleView(title), leftPlans: left.map(\.rawValue), emptiedPlans: emptied.map(\.rawValue)))
        }
        group.post("/titles/{title}/restore") { request, context in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let id = try Self.parameter(context, "title")
            _ = try await RequestBody.optionalObject(&request)?.only([])
            return try Self.json(TitleView(try await service.blocking { service throws(ServiceError) in try service.restoreTitle(id: id, actor: admin.actor) }))
        }
        group.get("/plans") { request, _ in
            let admin = try await self.admin(request, .catalog)
            try Self.noQuery(request)
            let plans = try await service.blocking { service throws(ServiceError) in try service.adminPlans(by: admin) }
            return try Self.json(["plans": plans.map(PlanView.init)])
        }
        group.post("/plans") { request, _ in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let body = try await RequestBody.object(&request).only(["id", "name", "period", "titles", "allTitles"])
            let (id, name, period) = (try body.requiredString("id"), try body.requiredString("name"), try body.requiredString("period"))
            // Every title, present and future, only when asked for by name (`allTitles: true`,
            // as `paywall plan add --all` and PATCH do): a body that forgot `titles` sold the
            // whole catalog (found in review).
            let titles = try body.strings("titles", max: 1_000), all = try body.bool("allTitles") ?? false
            if titles == nil, !all {
                throw APIError(status: .badRequest, code: "missing_field", message: "give 'titles' (the plan's titles) or 'allTitles': true (every title, now and later)")
            }
            if titles != nil, all { throw body.invalid("allTitles", "left out when 'titles' is given (one or the other)") }
            let plan = try await service.blocking { service throws(ServiceError) in
                try service.addPlan(id: id, name: name, period: period, titles: titles, actor: admin.actor)
            }
            return try Self.created(PlanView(plan))
        }
        group.get("/plans/{plan}") { request, context in
            let admin = try await self.admin(request, .catalog)
            try Self.noQuery(request)
            let id = try Self.parameter(context, "plan")
            return try Self.json(PlanView(try await service.blocking { service throws(ServiceError) in try service.adminPlan(id, by: admin) }))
        }
        group.patch("/plans/{plan}") { request, context in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let id = try Self.parameter(context, "plan")
            let body = try await RequestBody.object(&request).only(["name", "titles", "allTitles"])
            let name = try body.string("name"), titles = try body.strings("titles", max: 1_000), all = try body.bool("allTitles") ?? false
            guard name != nil || titles != nil || all else {
                throw APIError(status: .badRequest, code: "missing_field", message: "give 'name', 'titles' or 'allTitles' (the id and period cannot change)")
            }
            let plan = try await service.blocking { service throws(ServiceError) in
                try service.updatePlan(id: id, name: name, titles: titles, allTitles: all, actor: admin.actor)
            }
            return try Self.json(PlanView(plan))
        }
        group.delete("/plans/{plan}") { request, context in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let id = try Self.parameter(context, "plan")
            _ = try await RequestBody.optionalObject(&request)?.only([])
            _ = try await service.blocking { service throws(ServiceError) in try service.deletePlan(id: id, actor: admin.actor) }
            return Response(status: .noContent, headers: [.cacheControl: "no-store"])
        }
        addAdminMemberRoutes(to: group)
        addAdminRecordRoutes(to: group)
    }

    private func addAdminMemberRoutes(to group: RouterGroup<PaywallRequestContext>) {
        group.get("/accounts") { request, _ in
            let admin = try await self.admin(request, .members)
            let query = try Query(request, allowed: ["email", "limit"])
            guard let prefix = try query.string("email") else { throw Query.missing("email") }
            let limit = Int(try query.integer("limit", in: 1...1_000) ?? 50)
            let found = try await service.blocking { service throws(ServiceError) in try service.accounts(emailPrefix: prefix, limit: limit, by: admin) }
            return try Self.json(["accounts": found.map(AccountView.init)], private: true)
        }
        group.get("/accounts/{account}") { request, context in
            let admin = try await self.admin(request, .members)
            try Self.noQuery(request)
            let reference = try Self.parameter(context, "account")
            let detail = try await service.blocking { service throws(ServiceError) in try service.adminAccount(reference, by: admin) }
            return try Self.json(AccountDetailView(detail, now: service.now), private: true)
        }
        // A reader's data request or erasure answered by support (as `paywall account export`
        // and `paywall account delete`), audited with the admin; the `privacy` scope.
        group.get("/accounts/{account}/export") { request, context in
            let admin = try await self.admin(request, .privacy)
            try Self.noQuery(request)
            let reference = try Self.parameter(context, "account")
            let (name, bytes) = try await service.blocking { service throws(ServiceError) in
                try AccountExportView.file(try service.exportAccount(reference, actor: admin.actor), pretty: false)
            }
            var response = Self.json(bytes: bytes, private: true)
            response.headers[.contentDisposition] = #"attachment; filename="\#(name)""#
            return response
        }
        group.delete("/accounts/{account}") { request, context in
            let admin = try await self.admin(request, .privacy)
            var request = request
            let query = try Query(request, allowed: ["evenIfRenewing"])
            let evenIfRenewing: Bool
            switch query.values["evenIfRenewing"] {
            case nil, "false": evenIfRenewing = false
            case "true": evenIfRenewing = true
            default: throw Query.invalid("evenIfRenewing", "true or false")
            }
            let reference = try Self.parameter(context, "account")
            _ = try await RequestBody.optionalObject(&request)?.only([])
            _ = try await service.blocking { service throws(ServiceError) in
                try service.deleteAccount(reference, evenIfRenewing: evenIfRenewing, actor: admin.actor)
            }
            return Response(status: .noContent, headers: [.cacheControl: "no-store"])
        }
        group.get("/accounts/{account}/memberships") { request, context in
            let admin = try await self.admin(request, .members)
            try Self.noQuery(request)
            let reference = try Self.parameter(context, "account")
            let (_, records) = try await service.blocking { service throws(ServiceError) in try service.adminMemberships(account: reference, by: admin) }
            let now = service.now
            return try Self.json(["memberships": records.map { MembershipView($0.membership, now: now, history: $0.history) }], private: true)
        }
        group.post("/accounts/{account}/memberships") { request, context in
            let admin = try await self.admin(request, .members)
            var request = request
            let reference = try Self.parameter(context, "account")
            let body = try await RequestBody.object(&request).only(["plan", "until", "source", "reason"])
            let plan = try body.requiredString("plan")
            let until = try body.time("until")
            let source = try body.string("source") ?? "admin"
            // A comp is a membership granted free of charge: the same grant, marked so.
            guard ["admin", "comp"].contains(source) else { throw body.invalid("source", "admin or comp") }
            let reason = try body.string("reason")
            let membership = try await service.blocking { service throws(ServiceError) in
                try service.grantMembership(
                    account: reference, plan: plan, until: until, source: MembershipSource(rawValue: source), actor: admin.actor, reason: reason)
            }
            return try Self.created(MembershipView(membership, now: service.now))
        }
        group.post("/accounts/{account}/memberships/cancel") { request, context in
            let admin = try await self.admin(request, .members)
            var request = request
            let reference = try Self.parameter(context, "account")
            let body = try await RequestBody.object(&request).only(["plan", "mode"])
            let plan = try body.string("plan")
            let how: PaywallService.Cancellation
            switch try body.string("mode") ?? "period_end" {
            case "now": how = .immediately
            case "period_end": how = .canceled
            case "no_renewal": how = .atPeriodEnd
            default: throw body.invalid("mode", "one of now, period_end, no_renewal")
            }
            let membership = try await service.blocking { service throws(ServiceError) in
                try service.cancelMembership(account: reference, plan: plan, how: how, actor: admin.actor)
            }
            return try Self.json(MembershipView(membership, now: service.now))
        }
        group.post("/accounts/{account}/memberships/past-due") { request, context in
            let admin = try await self.admin(request, .members)
            var request = request
            let reference = try Self.parameter(context, "account")
            let body = try await RequestBody.object(&request).only(["plan", "graceEnd"])
            let plan = try body.string("plan")
            guard let graceEnd = try body.time("graceEnd") else { throw body.missing("graceEnd") }
            let membership = try await service.blocking { service throws(ServiceError) in
                try service.markPastDue(account: reference, plan: plan, graceEnd: graceEnd, actor: admin.actor)
            }
            return try Self.json(MembershipView(membership, now: service.now))
        }
        group.post("/accounts/{account}/comps") { request, context in
            let admin = try await self.admin(request, .members)
            var request = request
            let reference = try Self.parameter(context, "account")
            let body = try await RequestBody.object(&request).only(["titles", "days"])
            guard let titles = try body.strings("titles", max: PaywallService.maximumCompTitles) else { throw body.missing("titles") }
            guard let days = try body.integer("days") else { throw body.missing("days") }
            let issued = try await service.blocking { service throws(ServiceError) in
                try service.issueCompGrant(account: reference, titles: titles, days: days, audience: nil, actor: admin.actor)
            }
            return try Self.created(IssuedTokenView(issued), private: true)
        }
        group.get("/accounts/{account}/trial") { request, context in
            let admin = try await self.admin(request, .members)
            try Self.noQuery(request)
            let reference = try Self.parameter(context, "account")
            let detail = try await service.blocking { service throws(ServiceError) in try service.adminAccount(reference, by: admin) }
            return try Self.json(TrialStatusView(detail, now: service.now), private: true)
        }
        group.post("/accounts/{account}/trial") { request, context in
            let admin = try await self.admin(request, .members)
            var request = request
            let reference = try Self.parameter(context, "account")
            let body = try await RequestBody.object(&request).only(["days"])
            let days = try body.integer("days")
            if let days, !(1...366).contains(days) { throw body.invalid("days", "a whole number from 1 to 366") }
            let trial = try await service.blocking { service throws(ServiceError) in
                try service.startTrial(account: reference, length: days.map { TimeInterval($0) * 86_400 }, actor: admin.actor)
            }
            return try Self.created(TrialView(trial, now: service.now))
        }
        group.post("/accounts/{account}/trial/end") { request, context in
            let admin = try await self.admin(request, .members)
            var request = request
            let reference = try Self.parameter(context, "account")
            _ = try await RequestBody.optionalObject(&request)?.only([])
            let trial = try await service.blocking { service throws(ServiceError) in try service.endTrial(account: reference, actor: admin.actor) }
            return try Self.json(TrialView(trial, now: service.now))
        }
        group.post("/accounts/{account}/sign-out") { request, context in
            let admin = try await self.admin(request, .members)
            var request = request
            let reference = try Self.parameter(context, "account")
            _ = try await RequestBody.optionalObject(&request)?.only([])
            let (account, ended) = try await service.blocking { service throws(ServiceError) in
                try service.signOutEverywhere(account: reference, actor: admin.actor)
            }
            return try Self.json(SignedOutView(account: account.id.rawValue, endedSessions: ended), private: true)
        }
    }

    private func addAdminRecordRoutes(to group: RouterGroup<PaywallRequestContext>) {
        group.get("/audit") { request, _ in
            let admin = try await self.admin(request, .audit)
            let query = try Query(request, allowed: ["actor", "action", "target", "account", "since", "until", "before", "limit"])
            let filter = AuditFilter(
                actor: try query.string("actor"), action: try query.string("action"), target: try query.string("target"),
                since: try query.time("since"), until: try query.time("until"), beforeID: try query.integer("before", in: 1...Int64.max))
            let limit = Int(try query.integer("limit", in: 1...Int64(PaywallService.maximumAuditPage)) ?? 100)
            let account = try query.string("account")
            let page = try await service.blocking { service throws(ServiceError) in
                try service.adminAuditPage(filter: filter, account: account, limit: limit, by: admin)
            }
            return try Self.json(AuditPageView(page), private: true)
        }
        group.get("/reads") { request, _ in
            let admin = try await self.admin(request, .audit)
            let query = try Query(request, allowed: ["from", "to", "title"])
            guard let from = try query.time("from") else { throw Query.missing("from") }
            guard let to = try query.time("to") else { throw Query.missing("to") }
            let title = try query.string("title")
            let report = try await service.blocking { service throws(ServiceError) in try service.readsReport(from: from, to: to, title: title, by: admin) }
            return try Self.json(ReadsReportView(report))
        }
        group.get("/policy") { request, _ in
            let admin = try await self.admin(request, .policy)
            try Self.noQuery(request)
            let summary = try await service.blocking { service throws(ServiceError) in try service.adminPolicy(by: admin) }
            return try Self.json(PolicySummaryView(summary))
        }
        group.post("/policy/reload") { request, _ in
            let admin = try await self.admin(request, .policy)
            var request = request
            _ = try await RequestBody.optionalObject(&request)?.only([])
            do {
                let summary = try await service.blocking { service throws(ServiceError) in try service.adminReloadPolicy(by: admin) }
                return try Self.json(PolicySummaryView(summary))
            } catch let ServiceError.policy(errors) {
                // The admin who asked is told why (the policy's own file:line), as the CLI
                // is; a reader's request never reaches a policy error with details.
                let first = errors.diagnostics.first.map { "\($0.location): \($0.message)" } ?? "it does not check"
                let more = errors.diagnostics.count > 1 ? " (and \(errors.diagnostics.count - 1) more)" : ""
                throw APIError(status: .badRequest, code: ServiceError.policy(errors).code, message: "the policy could not be loaded, the one in force stays: \(first)\(more)")
            }
        }
    }

    // MARK: - Helpers

    /// The admin the request's bearer token names, with `scope` (the store is asked whether
    /// the token was revoked: ``PaywallService/authorizeAdmin(bearer:requiring:)``).
    func admin(_ request: Request, _ scope: AdminScope) async throws -> AdminPrincipal {
        try await service.authorizeAdmin(bearer: try bearer(request), requiring: scope)
    }

    /// A path parameter, percent-decoded (an email may come as `ada%40example.com`).
    static func parameter(_ context: PaywallRequestContext, _ name: String) throws -> String {
        guard let raw = context.parameters.get(name), let value = raw.removingPercentEncoding, !value.isEmpty else {
            throw APIError(status: .badRequest, code: "invalid_parameter", message: "the path's '\(name)' is not valid")
        }
        return value
    }

    /// Refuses a query on a route that takes none (a typo'd filter must not be ignored).
    static func noQuery(_ request: Request) throws {
        _ = try Query(request, allowed: [])
    }

    static func created<T: Encodable>(_ value: T, private isPrivate: Bool = false) throws -> Response {
        var response = try json(value, private: isPrivate)
        response.status = .created
        return response
    }
}

/// A request's query parameters read strictly: only the known names, each at most once
/// (400 `unknown_parameter`, `invalid_parameter`).
struct Query {
    let values: [String: String]

    init(_ request: Request, allowed: Set<String>) throws {
        var values: [String: String] = [:]
        for (key, value) in request.uri.queryParameters {
            let name = String(key)
            guard allowed.contains(name) else {
                throw APIError(status: .badRequest, code: "unknown_parameter", message: "unknown query parameter '\(String(name.prefix(64)))'")
            }
            guard values[name] == nil else { throw Self.invalid(name, "given once") }
            values[name] = String(value)
        }
        self.values = values
    }

    static func invalid(_ name: String, _ expected: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_parameter", message: "query parameter '\(name)' must be \(expected)")
    }

    static func missing(_ name: String) -> APIError {
        APIError(status: .badRequest, code: "missing_parameter", message: "query parameter '\(name)' is required")
    }

    func string(_ name: String) throws -> String? {
        guard let value = values[name] else { return nil }
        guard !value.isEmpty, value.utf8.count <= 256 else { throw Self.invalid(name, "1 to 256 bytes") }
        return value
    }

    func time(_ name: String) throws -> Date? {
        guard let value = values[name] else { return nil }
        do { return try TimeText.instant(value) } catch { throw Self.invalid(name, "an ISO 8601 instant such as 2026-06-01T00:00:00Z") }
    }

    func integer(_ name: String, in range: ClosedRange<Int64>) throws -> Int64? {
        guard let value = values[name] else { return nil }
        guard let number = Int64(value), range.contains(number) else { throw Self.invalid(name, "a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return number
    }
}
