import Foundation
import HTTPTypes
import Hummingbird
import PaywallCore
import PaywallPolicy
import PaywallService
import PaywallTokens

/// The admin area: an administrator pastes an admin token (`paywall token admin --scope …`)
/// into a form; it is kept, for its own lifetime, in an `HttpOnly`, `SameSite=Strict` cookie
/// scoped to `/admin` (no script reads it, no other page sends it, no cross-site request
/// carries it). Each page asks for the scope the admin API asks for the same data: no
/// token is the sign-in page, a refused one clears the cookie, a missing scope is a 403
/// page naming it. Every page is an audited read, as over the API.
extension WebSite {
    static let adminCookie = "paywall_admin"

    func adminCookie(_ value: String, maxAge: Int) -> Cookie {
        Cookie(name: adminCookieName, value: value, maxAge: maxAge, path: "/admin", secure: settings.secureCookies, httpOnly: true, sameSite: .strict)
    }

    /// Over TLS `__Secure-` (set only with Secure, so never planted over plain HTTP); not
    /// `__Host-`, which needs the whole path, and this cookie keeps to /admin.
    var adminCookieName: String { settings.secureCookies ? "__Secure-" + Self.adminCookie : Self.adminCookie }

    /// The cookie's token, if it could be one (a JWT of reasonable size).
    func adminToken(_ visit: Visit) -> String? {
        guard let value = visit.request.cookies[adminCookieName]?.value, (16...Self.giftTokenLimit).contains(value.utf8.count),
              Cookies.isBase64URL(value, dots: true)
        else { return nil }
        return value
    }

    /// The administrator of this request with `scope` (nil: any admin token), or the page
    /// to show instead.
    func admin(_ visit: Visit, scope: AdminScope?) async -> Result<AdminPrincipal, AdminRefusal> {
        guard let token = adminToken(visit) else { return .failure(.signIn(nil)) }
        do {
            let admin = try await service.authorizeAdmin(bearer: token, requiring: scope)
            return .success(admin)
        } catch {
            switch error {
            case let .missingScope(name): return .failure(.scope(name))
            default:
                logLimits.log(visit.logger, .info, "admin page refused a token", code: "admin-token", metadata: ["reason": .string(error.description)])
                return .failure(.signIn("Your admin token has expired or was refused. Paste a new one."))
            }
        }
    }

    enum AdminRefusal: Error { case signIn(String?), scope(String) }

    func refusal(_ visit: Visit, _ refusal: AdminRefusal) -> Response {
        switch refusal {
        case let .signIn(message):
            var response = adminSignInForm(visit, status: .unauthorized, error: message)
            if adminToken(visit) != nil || visit.request.cookies[adminCookieName] != nil { response.setCookie(adminCookie("", maxAge: 0)) }
            return response
        case let .scope(name):
            return errorPage(
                visit, status: .forbidden, heading: "This page needs the ‘\(name)’ scope",
                message: "Your admin token does not have the ‘\(name)’ scope. Ask for one with: paywall token admin --scope \(name)",
                link: ("/admin", "Back to the admin area"))
        }
    }

    func adminSignInForm(_ visit: Visit, status: HTTPResponse.Status, error: String?) -> Response {
        var values: [String: Any] = [:]
        if let error { values["tokenError"] = error }
        return page("admin-signin", visit, status: status, title: "Admin sign-in", values: values)
    }

    // MARK: - Signing in and out

    func adminSignIn(_ visit: Visit) async throws -> Response {
        let token = (visit.form?.text("token") ?? "").replacingOccurrences(of: "Bearer ", with: "")
        guard (16...Self.giftTokenLimit).contains(token.utf8.count), Cookies.isBase64URL(token, dots: true) else {
            return adminSignInForm(visit, status: .unprocessableContent, error: "Paste an admin token: the output of paywall token admin.")
        }
        let admin: AdminPrincipal
        do {
            admin = try await service.authorizeAdmin(bearer: token, requiring: nil)
        } catch {
            let message: String =
                switch error {
                case .adminTokenRequired: "That is not an admin token (a reader’s token is not one). Make one with paywall token admin."
                default: "That token was refused: it may have expired. Make a new one with paywall token admin."
                }
            // The reason goes to the log, never the token.
            logLimits.log(visit.logger, .info, "admin sign-in refused", code: "admin-sign-in", metadata: ["reason": .string(error.description)])
            return adminSignInForm(visit, status: .unprocessableContent, error: message)
        }
        // A token kept in a browser opens no more than these pages show (the audit log, the
        // reads, the policy): one that also changes memberships, the catalog or readers' data
        // would sit in a cookie for its whole life (found in review). Refused, with the command
        // that makes the right one.
        let extra = admin.scopes.subtracting(Self.adminPageScopes)
        guard extra.isEmpty else {
            let names = extra.sorted().map(\.rawValue).joined(separator: ", ")
            return adminSignInForm(visit, status: .unprocessableContent, error:
                "These pages take a token with the audit or policy scope only, and this one also opens \(names). Make one for the browser with: paywall token admin --scope audit --scope policy --subject \(admin.name)")
        }
        let lifetime = max(1, Int((admin.expiresAt ?? service.now).timeIntervalSince(service.now)))
        var response = redirect("/admin")
        response.setCookie(adminCookie(token, maxAge: lifetime))
        return response
    }

    /// The scopes the admin pages ask for: a token for them may carry these only.
    static let adminPageScopes: Set<AdminScope> = [.audit, .policy]

    func adminSignOut(_ visit: Visit) -> Response {
        var response = redirect("/admin")
        response.setCookie(adminCookie("", maxAge: 0))
        return response
    }

    // MARK: - Pages

    func adminPage(_ template: String, _ visit: Visit, admin: AdminPrincipal, title: String, values: [String: Any]) -> Response {
        var values = values
        values["admin"] = ["name": admin.name, "scopes": admin.scopes.sorted().map(\.rawValue).joined(separator: ", ")]
        return page(template, visit, title: title, values: values)
    }

    func adminHome(_ visit: Visit) async throws -> Response {
        switch await admin(visit, scope: nil) {
        case let .failure(why): return refusal(visit, why)
        case let .success(admin):
            let scopes = admin.scopes
            return adminPage("admin", visit, admin: admin, title: "Admin", values: [
                "expires": admin.expiresAt.map(Self.dateTime) ?? "", "audit": scopes.contains(.audit), "policy": scopes.contains(.policy),
            ])
        }
    }

    /// Recent decisions with their deciding rules, and the meters' use among them.
    func adminDecisions(_ visit: Visit) async throws -> Response {
        let admin: AdminPrincipal
        switch await self.admin(visit, scope: .audit) {
        case let .failure(why): return refusal(visit, why)
        case let .success(found): admin = found
        }
        let decisions = try await service.blocking { service throws(ServiceError) in try service.recentDecisions(by: admin) }
        let rows: [[String: Any]] = decisions.map { decision in
            var meter = ""
            if let outcome = decision.meter {
                meter = "\(outcome.name): \(outcome.used) of \(outcome.limit)" + (outcome.consumed ? ", one used" : outcome.reread ? ", a re-read" : "")
            }
            return [
                "time": Self.dateTime(decision.at), "iso": TimeText.format(decision.at), "title": decision.title, "article": decision.article,
                "access": decision.access.description, "rules": decision.decidingRules.joined(separator: ", "), "reader": decision.readerKind.rawValue,
                "meter": meter, "revision": String(decision.revision.prefix(12)),
            ]
        }
        // Meter use among these decisions: units spent, free re-reads, readers turned away
        // by a spent meter.
        var meters: [String: (decisions: Int, consumed: Int, rereads: Int, spent: Int)] = [:]
        for decision in decisions {
            guard let outcome = decision.meter else { continue }
            var line = meters[outcome.name] ?? (0, 0, 0, 0)
            line.decisions += 1
            if outcome.consumed { line.consumed += 1 }
            if outcome.reread { line.rereads += 1 }
            if decision.access < .full, outcome.remaining == 0 { line.spent += 1 }
            meters[outcome.name] = line
        }
        let meterRows: [[String: Any]] = meters.sorted { $0.key < $1.key }.map { name, line in
            ["name": name, "decisions": line.decisions, "consumed": line.consumed, "rereads": line.rereads, "spent": line.spent]
        }
        return adminPage("admin-decisions", visit, admin: admin, title: "Recent decisions", values: [
            "decisions": rows, "hasDecisions": !rows.isEmpty, "count": rows.count, "capacity": service.decisionLog.capacity,
            "meters": meterRows, "hasMeters": !meterRows.isEmpty,
        ])
    }

    /// Reads per title this month (UTC): what publishers are paid on.
    func adminReads(_ visit: Visit) async throws -> Response {
        let admin: AdminPrincipal
        switch await self.admin(visit, scope: .audit) {
        case let .failure(why): return refusal(visit, why)
        case let .success(found): admin = found
        }
        let month = Gift.month(of: service.now)
        let report = try await service.blocking { service throws(ServiceError) in
            try service.readsReport(from: month.start, to: month.end, title: nil, by: admin)
        }
        let rows: [[String: Any]] = report.titles.map { line in
            ["title": line.titleID.rawValue, "reads": line.reads, "readers": line.readers, "articles": line.articles, "giftReads": line.giftReads]
        }
        return adminPage("admin-reads", visit, admin: admin, title: "Reads this month", values: [
            "from": Self.longDate(month.start), "to": Self.longDate(month.end.addingTimeInterval(-1)), "titles": rows, "hasTitles": !rows.isEmpty,
        ])
    }

    /// The policy in force: its revision, rules and meters.
    func adminPolicy(_ visit: Visit) async throws -> Response {
        let admin: AdminPrincipal
        switch await self.admin(visit, scope: .policy) {
        case let .failure(why): return refusal(visit, why)
        case let .success(found): admin = found
        }
        let summary = try await service.blocking { service throws(ServiceError) in try service.adminPolicy(by: admin) }
        let meters: [[String: Any]] = summary.meters.map { meter in
            ["name": meter.name, "limit": meter.limit, "days": Int(meter.window / 86_400)]
        }
        return adminPage("admin-policy", visit, admin: admin, title: "Policy in force", values: [
            "revision": summary.revision, "rules": summary.rules, "meters": meters, "hasMeters": !meters.isEmpty,
        ])
    }
}
