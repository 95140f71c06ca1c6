import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PaywallCore
import PaywallPolicy
import PaywallService
import PaywallViews

extension WebSite {
    // MARK: - The front page

    /// The catalog's titles and their articles, each with a badge from ONE preview call
    /// (nothing consumed). At most ``PaywallService/maximumPreview`` articles are listed: a
    /// front page is a selection, and one preview is the service's bound.
    func home(_ visit: Visit) async throws -> Response {
        let titles = try await service.blocking { service throws(ServiceError) in try service.titles() }
        let listed = Array(titles.flatMap { title in articles.articles(of: title.id.rawValue).map { (title, $0) } }.prefix(PaywallService.maximumPreview))
        var decisions: [Decision] = []
        if !listed.isEmpty {
            let requests = listed.map { AccessRequest(title: $0.0.id.rawValue, article: $0.1.input, request: visit.facts) }
            let reader = visit.accessReader
            decisions = try await service.blocking { service throws(ServiceError) in try service.previewAccess(requests, reader: reader) }
        }
        var items: [String: [[String: Any]]] = [:]
        var top: [String: Any]?
        for ((title, article), decision) in zip(listed, decisions) {
            var item = Self.badge(decision)
            item["headline"] = article.headline
            item["byline"] = article.byline
            item["href"] = Self.path(title: title.id.rawValue, article: article.id)
            items[title.id.rawValue, default: []].append(item)
            // The library's first article (the seed's Euronews story in the demo) leads the page.
            if top == nil, article.title == articles.articles.first?.title, article.id == articles.articles.first?.id {
                var lead = item
                lead["titleName"] = title.name
                top = lead
            }
        }
        let sections: [[String: Any]] = titles.map { title in
            let list = items[title.id.rawValue] ?? []
            return ["id": title.id.rawValue, "name": title.name, "publisher": title.publisher, "articles": list, "hasArticles": !list.isEmpty]
        }
        var values: [String: Any] = ["titles": sections, "hasTitles": !sections.isEmpty, "hasArticles": !listed.isEmpty]
        if let top { values["top"] = top }
        return page("home", visit, title: "Get all your news in one place", description: "100’s of premium titles. One app.", values: values)
    }

    /// The badge a list shows for a decision: free for everyone, included (member, trial, a
    /// re-read), uses a free article (metered), or locked.
    static func badge(_ decision: Decision) -> [String: Any] {
        if decision.accessibleForFree { return ["badge": "Free", "badgeClass": "free", "locked": false] }
        switch decision.access {
        case .full where decision.meter?.consumed == true: return ["badge": "Uses a free article", "badgeClass": "metered", "locked": false]
        case .full: return ["badge": "Included", "badgeClass": "open", "locked": false]
        case .teaser, .none: return ["badge": "Subscribers", "badgeClass": "locked", "locked": true]
        }
    }

    static func path(title: String, article: String) -> String { "/titles/\(title)/articles/\(article)" }

    // MARK: - An article

    /// Asks the service for a decision (a metered read is recorded once) and renders exactly
    /// what it allows: the teaser's paragraphs and the paywall box with the policy's offers
    /// in its order, or the full text with no box, or (access `none`) the headline alone.
    /// Paragraphs past what is allowed are never put in the page, hidden or otherwise.
    func articlePage(_ visit: Visit, title titleID: String, article articleID: String) async throws -> Response {
        guard let article = articles.article(title: titleID, id: articleID) else { return notFound(visit) }
        let titles = try await service.blocking { service throws(ServiceError) in try service.titles() }
        guard let title = titles.first(where: { $0.id.rawValue == titleID }) else { return notFound(visit) }
        let gift = Self.giftParameter(visit.request)
        let answer: AccessAnswer
        do throws(ServiceError) {
            if gift == "" { throw ServiceError.giftRefused("not a gift token") }
            let request = AccessRequest(title: titleID, article: article.input, request: visit.facts, gift: gift)
            // A link followed from another site must not spend a signed-in reader's free
            // article: the session cookie is SameSite=Lax, which such a navigation carries,
            // so any site could send a reader through articles until the meter is spent. The
            // decision is asked without consuming; when it would take a unit, the page asks
            // first, and following its link (same origin) spends it.
            if gift == nil, visit.reader != nil, !Self.fromThisSite(visit.request),
               let preview = try await service.blocking({ service throws(ServiceError) in try service.previewAccess([request], reader: visit.accessReader) }).first,
               let meter = preview.meter, meter.consumed {
                return confirmReadPage(visit, title: title, article: article, decision: preview, meter: meter)
            }
            answer = try await service.checkAccess(request, reader: visit.accessReader)
        } catch {
            // A gift link for another article, expired, withdrawn or forged: a page saying so
            // and nothing of any article (the reader can open the article without it).
            if case .giftRefused = error {
                return errorPage(
                    visit, status: .forbidden, heading: "This gift link does not work",
                    message: "This gift link is not valid for this article, or has expired.", link: (Self.path(title: titleID, article: articleID), "Open the article"))
            }
            if error.category == .notFound || error.category == .invalid { return notFound(visit) }
            throw error
        }
        let decision = answer.decision
        let count = article.paragraphs.count
        let here = Self.path(title: titleID, article: articleID)

        var values = Self.articleValues(title: title, article: article)

        switch decision.access {
        case .full:
            // Marked free: all of it in the open. Otherwise the part past the policy's
            // teaser sits in the block JSON-LD names as gated (`.paywalled`).
            let open = decision.accessibleForFree ? count : min(max(decision.teaserParagraphs, 0), count)
            values["open"] = Array(article.paragraphs[0..<open])
            if open < count {
                values["gated"] = ["paragraphs": Array(article.paragraphs[open..<count])]
            }
        case .teaser, .none:
            let shown = decision.access == .teaser ? min(max(decision.teaserParagraphs, 0), count) : 0
            values["open"] = Array(article.paragraphs[0..<shown])
            values["paywall"] = paywallBox(decision, visit: visit, next: here)
        }
        if let note = Self.meterNote(decision) { values["meterNote"] = note }
        if gift != nil { values["meterNote"] = "A gift from a member: this article is yours to read in full." }
        if gift == nil, decision.access == .full, !decision.accessibleForFree, let form = try await giftForm(visit, title: titleID, article: articleID) {
            values["giftForm"] = form
        }

        // Shared text: the publisher's summary, written for sharing, never a body paragraph;
        // with access `none` not even that (the headline alone is what the reader may see).
        let description = decision.access == .none ? nil : article.summary
        let jsonLd = Self.jsonLd(answer, article: article, title: title, description: description)
        return page("article", visit, title: article.headline, description: description, ogType: "article", jsonLd: jsonLd, values: values)
    }

    /// What every article page shows of the article: its title, headline, byline, section
    /// and publication date.
    static func articleValues(title: Title, article: Article) -> [String: Any] {
        var values: [String: Any] = [
            "titleID": title.id.rawValue, "titleName": title.name, "headline": article.headline, "byline": article.byline,
        ]
        if let section = article.section { values["section"] = section }
        if let published = article.published { values["published"] = ["iso": TimeText.format(published), "text": longDate(published)] }
        return values
    }

    /// Whether the browser says the request came from this site's own pages or from the
    /// reader (`Sec-Fetch-Site: same-origin`, or `none`: typed, a bookmark); browsers set
    /// it, pages cannot. Without the header (an older browser), a `Referer` of this host
    /// (the pages send `Referrer-Policy: same-origin`, so their own links carry one).
    /// Anything else asks before a free article is spent: another site (`cross-site`), a
    /// sibling subdomain (`same-site`, which the session cookie's `SameSite=Lax` also lets
    /// through), or a request that says nothing (found in review: only `cross-site` was
    /// caught, and those two could spend a reader's articles with plain links).
    static func fromThisSite(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!]?.lowercased() {
            return site == "same-origin" || site == "none"
        }
        guard let referer = request.headers[.referer], let from = URLComponents(string: referer), let authority = request.head.authority else { return false }
        let origin = from.host.map { host in from.port.map { "\(host):\($0)" } ?? host }
        return origin?.lowercased() == authority.lowercased()
    }

    /// An article reached from another site whose full text would use a free article: its
    /// teaser, and a link to read it that spends the unit once followed from here.
    func confirmReadPage(_ visit: Visit, title: Title, article: Article, decision: Decision, meter: MeterOutcome) -> Response {
        let here = Self.path(title: title.id.rawValue, article: article.id)
        let count = article.paragraphs.count
        let shown = min(max(decision.teaserParagraphs, 0), count)
        var values = Self.articleValues(title: title, article: article)
        values["open"] = Array(article.paragraphs[0..<shown])
        // `meter` is as this read would leave it: the reader has one more left now.
        values["confirmRead"] = [
            "href": here,
            "left": meter.remaining == 0 ? "your last free article this month" : "1 of your \(meter.remaining + 1) free articles left this month",
        ]
        return page("article", visit, title: article.headline, description: article.summary, ogType: "article", jsonLd: nil, values: values)
    }

    /// The box in place of the rest of the text: the offers the policy returned, in its order.
    func paywallBox(_ decision: Decision, visit: Visit, next: String) -> [String: Any] {
        let spent = decision.meter.map { $0.remaining == 0 } ?? false
        let heading: String =
            if visit.reader == nil { "Sign up to read this article" }
            else if spent { "You’ve read your free articles this month" }
            else { "This article is for members" }
        let offers: [[String: Any]] = decision.offers.map { offer in
            switch offer {
            case .signUp: ["signUp": true, "href": "/signup?next=\(next)"]
            case .signIn: ["signIn": true, "href": "/signin?next=\(next)"]
            case let .trial(days):
                ["trial": true, "days": days, "daysFree": Self.daysFree(days), "signedIn": visit.reader != nil, "href": "/signup?next=\(next)", "next": next]
            case .subscribe: ["subscribe": true, "href": "/account"]
            }
        }
        return ["heading": heading, "offers": offers, "none": decision.access == .none]
    }

    /// What the reader's meter says on this page, if it took part.
    static func meterNote(_ decision: Decision) -> String? {
        guard let meter = decision.meter else { return nil }
        if decision.access == .full, meter.reread { return "You have read this article before this month: it does not count again." }
        if decision.access == .full, meter.consumed {
            return meter.remaining == 1 ? "You have 1 free article left this month." : "You have \(meter.remaining) free articles left this month."
        }
        if decision.access < .full, meter.remaining == 0 { return "You have read your \(meter.limit) free articles this month." }
        return nil
    }

    /// schema.org `NewsArticle`: the API's `isAccessibleForFree` and `hasPart` (naming the
    /// gated block by ``AccessView/gatedSelector``) plus the headline, author, date and
    /// publisher; `<` `>` `&` escaped so the block cannot end its script element.
    static func jsonLd(_ answer: AccessAnswer, article: Article, title: Title, description: String?) -> String {
        let encoder = ViewEncoding.encoder(pretty: false)
        var object: [String: Any] = [:]
        if let data = try? encoder.encode(AccessView(answer).jsonLd), let base = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            object = base
        }
        object["headline"] = article.headline
        object["author"] = ["@type": "Person", "name": article.byline]
        object["publisher"] = ["@type": "Organization", "name": title.name]
        if let published = article.published { object["datePublished"] = TimeText.format(published) }
        if let description { object["description"] = description }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e").replacingOccurrences(of: "&", with: "\\u0026")
    }

    // MARK: - Sign in, sign up, sign out

    func nextPath(_ visit: Visit) -> String? {
        NextPath.validated(visit.form?["next"] ?? visit.request.uri.queryParameters["next"].map(String.init))
    }

    func signInPage(_ visit: Visit) -> Response {
        if visit.reader != nil { return redirect(nextPath(visit) ?? "/account") }
        return signInForm(visit, status: .ok, email: "", errors: [:])
    }

    func signInForm(_ visit: Visit, status: HTTPResponse.Status, email: String, errors: [String: String]) -> Response {
        var values: [String: Any] = ["email": email, "next": nextPath(visit) ?? ""]
        for (field, message) in errors { values[field + "Error"] = message }
        return page("signin", visit, status: status, title: "Sign in", values: values)
    }

    func signIn(_ visit: Visit) async throws -> Response {
        guard let form = visit.form else { return signInForm(visit, status: .badRequest, email: "", errors: [:]) }
        let email = form.text("email")
        let password = form["password"] ?? ""
        var errors: [String: String] = [:]
        if email.isEmpty { errors["email"] = "Enter your email address." }
        if password.isEmpty { errors["password"] = "Enter your password." }
        guard errors.isEmpty else { return signInForm(visit, status: .unprocessableContent, email: email, errors: errors) }
        let signedIn: ReaderSession
        let client = visit.clientKey
        do {
            // The readers' sign-in: the session cap and the sign-in throttle, as over the API.
            signedIn = try await service.blocking { service throws(ServiceError) in
                try service.signInReader(email: email, password: password, deviceName: Self.deviceName, client: client)
            }
        } catch {
            // (A `catch .invalidCredentials` pattern crashes the 6.3.1 compiler's SIL verifier.)
            switch error {
            case .invalidCredentials, .crypto(.passwordTooLong):
                // A password longer than any we store matches nothing (the API says why: 400
                // password_too_long); here it is a wrong password, not a fault of ours.
                return signInForm(visit, status: .unprocessableContent, email: email, errors: ["form": "That email and password do not match an account."])
            case .tooManyAttempts:
                return signInForm(visit, status: .tooManyRequests, email: email, errors: ["form": Self.sentence(error.publicMessage)])
            default: throw error
            }
        }
        return await startSession(signedIn, then: nextPath(visit) ?? "/account", replacing: visit)
    }

    /// Signed in over a session the cookie held until now: that session is signed out
    /// first. Its cookie is overwritten, and it would stay live for a month as an
    /// unexplained "Web browser" on its account's device list, counting against the session
    /// cap (found in review). Rare: the sign-in and sign-up pages send a signed-in reader
    /// on, and a form posts only with the session it was drawn with, so it takes a form
    /// drawn while signed in. Best effort: the new session is the reader's either way.
    func startSession(_ signedIn: ReaderSession, then location: String, replacing visit: Visit) async -> Response {
        if let old = visit.sessionToken, visit.reader != nil {
            do {
                _ = try await service.blocking { service throws(ServiceError) in try service.signOut(refreshToken: old) }
            } catch {
                visit.logger.warning("web: the session a new sign-in replaced was not signed out", metadata: ["reason": "\(error.code)"])
            }
        }
        return startSession(signedIn, then: location)
    }

    /// Signed in: the refresh token goes into the HttpOnly cookie (the page never sees a
    /// token), for as long as the session lives.
    func startSession(_ signedIn: ReaderSession, then location: String) -> Response {
        var response = redirect(location)
        let lifetime = max(0, Int(signedIn.refreshTokenExpiresAt.timeIntervalSince(service.now)))
        response.setCookie(cookie(Cookies.session, signedIn.refreshToken, maxAge: lifetime))
        return response
    }

    func signUpPage(_ visit: Visit) -> Response {
        if visit.reader != nil { return redirect(nextPath(visit) ?? "/account") }
        return signUpForm(visit, status: .ok, name: "", email: "", errors: [:])
    }

    func signUpForm(_ visit: Visit, status: HTTPResponse.Status, name: String, email: String, errors: [String: String]) -> Response {
        var values: [String: Any] = [
            "name": name, "email": email, "next": nextPath(visit) ?? "", "minimumLength": service.configuration.passwordPolicy.minimumLength,
        ]
        for (field, message) in errors { values[field + "Error"] = message }
        return page("signup", visit, status: status, title: "Sign up", values: values)
    }

    func signUp(_ visit: Visit) async throws -> Response {
        guard let form = visit.form else { return signUpForm(visit, status: .badRequest, name: "", email: "", errors: [:]) }
        let name = form.text("name")
        let email = form.text("email")
        let password = form["password"] ?? ""
        var errors: [String: String] = [:]
        if email.isEmpty { errors["email"] = "Enter your email address." }
        if password.isEmpty { errors["password"] = "Choose a password." }
        guard errors.isEmpty else { return signUpForm(visit, status: .unprocessableContent, name: name, email: email, errors: errors) }
        let signedUp: ReaderSession
        let client = visit.clientKey
        do {
            // The readers' sign-up: verification mail, the per-address limit, the session cap.
            signedUp = try await service.blocking { service throws(ServiceError) in
                try service.signUpReader(email: email, password: password, name: name, deviceToken: nil, deviceName: Self.deviceName, client: client)
            }
        } catch {
            // The reader's own mistakes, shown beside the field; anything else is ours.
            switch error {
            case let .invalidInput(.invalidEmail(_, reason)): errors["email"] = "That email address is not valid: \(reason)."
            case .invalidInput(.weakPassword): errors["password"] = Self.sentence(error.publicMessage)
            case .invalidInput(.invalidName): errors["name"] = Self.sentence(error.publicMessage)
            case .store(.duplicateEmail), .store(.addressKept): errors["email"] = "An account with this email already exists. Sign in instead."
            case .crypto: errors["password"] = Self.sentence(error.publicMessage)
            case .tooManySignUps:
                errors["form"] = Self.sentence(error.publicMessage)
                return signUpForm(visit, status: .tooManyRequests, name: name, email: email, errors: errors)
            default: throw error
            }
            return signUpForm(visit, status: .unprocessableContent, name: name, email: email, errors: errors)
        }
        return await startSession(signedUp, then: nextPath(visit) ?? "/", replacing: visit)
    }

    /// The device name web sessions carry (the account page's session list shows it).
    static let deviceName = "Web browser"

    static func sentence(_ text: String) -> String {
        guard let first = text.first else { return text }
        let body = first.uppercased() + text.dropFirst()
        return body.hasSuffix(".") ? body : body + "."
    }

    func signOut(_ visit: Visit) async throws -> Response {
        if let token = visit.sessionToken, visit.reader != nil {
            // The readers' sign-out (the whole session family, as over the API); a session
            // already gone is nothing to do.
            do {
                _ = try await service.blocking { service throws(ServiceError) in try service.signOut(refreshToken: token) }
            } catch {
                guard case .sessionRejected = error else { throw error }
            }
        }
        var response = redirect("/")
        response.setCookie(cookie(Cookies.session, "", maxAge: 0))
        return response
    }

    // MARK: - Trial and account

    func startTrial(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        do {
            // The length the policy's `offer trial N days` names (as POST /v1/trials).
            let id = reader.account.id
            _ = try await service.blocking { service throws(ServiceError) in try service.startOfferedTrial(accountID: id) }
        } catch {
            switch error {
            case .store(.trialAlreadyUsed): return try await account(visit, status: .conflict, error: "Your free trial has already been used: there is one per person.")
            case .trialNotOffered: return try await account(visit, status: .conflict, error: "No free trial is offered at the moment.")
            case .emailNotVerified:
                return try await account(visit, status: .forbidden, error: "Confirm your email address first: open the link we mailed you, or send a new one below.")
            default: throw error
            }
        }
        return redirect(nextPath(visit) ?? "/account")
    }

    func account(_ visit: Visit) async throws -> Response {
        try await account(visit, status: .ok, error: nil)
    }

    /// `fields`: the email and password forms' errors (`newEmailError`…) and what was typed
    /// in them that may be shown again (`newEmail`; never a password).
    func account(_ visit: Visit, status: HTTPResponse.Status, error: String?, fields: [String: String] = [:]) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        let id = reader.account.id
        let summary = try await service.blocking { service throws(ServiceError) in try service.readerSummary(account: id) }
        var values: [String: Any] = [
            "email": summary.account.email, "memberSince": Self.longDate(summary.account.createdAt),
        ]
        // Only a name given: the template's section takes "" as a value and drew an empty row.
        if let name = summary.account.displayName, !name.isEmpty { values["name"] = name }
        if let error { values["error"] = error }
        for (key, value) in fields { values[key] = value }
        values["minimumLength"] = service.configuration.passwordPolicy.minimumLength
        if error == nil, let key = visit.request.uri.queryParameters["done"].map(String.init), let notice = Self.accountNotices[key] {
            values["notice"] = notice
        }
        values["emailVerified"] = summary.account.emailVerifiedAt != nil
        let current = reader.session.familyID
        let sessions: [[String: Any]] = summary.sessions.map { session in
            [
                "id": session.id, "device": session.deviceName ?? "A device without a name", "lastUsed": Self.dateTime(session.lastUsedAt),
                "lastUsedISO": TimeText.format(session.lastUsedAt), "started": Self.longDate(session.startedAt), "current": session.id == current,
            ]
        }
        values["sessions"] = sessions
        values["severalSessions"] = sessions.count > 1
        let memberships: [[String: Any]] = summary.memberships.map { line in
            [
                "plan": line.planName, "status": Self.statusText(line.status), "active": line.status != .expired,
                "until": Self.longDate(line.membership.accessEnd), "renews": !line.membership.cancelAtPeriodEnd && line.status == .active,
            ]
        }
        values["memberships"] = memberships
        values["hasMemberships"] = !memberships.isEmpty
        if let trial = summary.trial, let status = summary.trialStatus {
            var trialValues: [String: Any] = ["ends": Self.longDate(trial.endsAt), "active": status == .active]
            if let days = summary.trialDaysLeft { trialValues["daysLeft"] = days == 1 ? "1 day left" : "\(days) days left" }
            values["trial"] = trialValues
        }
        // The length the trial button gives (the policy's `offer trial N days`, as
        // startOfferedTrial); no button when the policy offers none.
        if summary.trialEligible, let days = try service.policy().offeredTrialDays {
            values["trialEligible"] = ["days": days, "daysFree": Self.daysFree(days)]
        }
        if let meter = summary.meter {
            var meterValues: [String: Any] = [
                "remaining": meter.remaining, "limit": meter.limit, "used": meter.used,
                "days": Int(meter.window / 86_400),
            ]
            if let resets = meter.resetsAt, meter.remaining == 0 { meterValues["resets"] = Self.longDate(resets) }
            values["meter"] = meterValues
        }
        return page("account", visit, status: status, title: "Your account", values: values)
    }

    static func statusText(_ status: MembershipStatus) -> String {
        switch status {
        case .active: "Active"
        case .pastDue: "Payment failed: access continues during the grace period"
        case .canceled: "Canceled: access until the period ends"
        case .expired: "Ended"
        }
    }

    // MARK: - Feed and sitemap (titles, links and dates only: no text of any article)

    func feed(_ visit: Visit) async throws -> Response {
        let base = baseURL(visit.request)
        let entries = try await listedArticles().map { title, article -> [String: Any] in
            [
                "headline": article.headline, "byline": article.byline, "titleName": title.name,
                "url": base + Self.path(title: title.id.rawValue, article: article.id),
                "updated": TimeText.format(article.published ?? Date(timeIntervalSince1970: 0)),
            ]
        }
        let updated = articles.articles.compactMap(\.published).max() ?? Date(timeIntervalSince1970: 0)
        let body = templates.render(["base": base, "entries": entries, "updated": TimeText.format(updated)] as [String: Any], withTemplate: "feed") ?? ""
        return Response(
            status: .ok, headers: [.contentType: "application/atom+xml; charset=utf-8", .cacheControl: feedCaching],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func sitemap(_ visit: Visit) async throws -> Response {
        let base = baseURL(visit.request)
        let urls = [base + "/"] + (try await listedArticles().map { base + Self.path(title: $0.0.id.rawValue, article: $0.1.id) })
        let body = templates.render(["urls": urls.map { ["loc": $0] }] as [String: Any], withTemplate: "sitemap") ?? ""
        return Response(
            status: .ok, headers: [.contentType: "application/xml; charset=utf-8", .cacheControl: feedCaching],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Every article of a title in the catalog, in the library's order.
    func listedArticles() async throws -> [(Title, Article)] {
        let titles = try await service.blocking { service throws(ServiceError) in try service.titles() }
        let byID = Dictionary(titles.map { ($0.id.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
        return articles.articles.compactMap { article in byID[article.title].map { ($0, article) } }
    }

    /// How long and by whom the feed and the sitemap may be cached: by shared caches too
    /// when their links start with the configured public address; by the browser only when
    /// they come from the request's `Host` (a shared cache keyed on the public host must not
    /// keep links to whatever host one client named).
    var feedCaching: String {
        service.configuration.linkBase == nil ? "private, max-age=300" : "public, max-age=300"
    }

    /// Where the feed's, the sitemap's and gift links point: the configured public address
    /// (`PAYWALL_LINK_BASE`), else the address the request was sent to. A `Host` that is not
    /// a host name or address with an optional port (anything else a client may send) is
    /// not echoed into links: `localhost` instead.
    func baseURL(_ request: Request) -> String {
        if let configured = service.configuration.linkBase { return configured }
        let host = request.head.authority.flatMap { Self.isHostAndPort($0) ? $0 : nil } ?? "localhost"
        return (settings.secureCookies ? "https://" : "http://") + host
    }

    /// A host name, IPv4 or bracketed IPv6 address, with an optional port: letters,
    /// digits, `.`, `-`, `:`, `[`, `]`, at most 255 bytes.
    static func isHostAndPort(_ text: String) -> Bool {
        (1...255).contains(text.utf8.count) && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"): true
            default: false
            }
        }
    }

    // MARK: - Rendering

    func notFound(_ visit: Visit) -> Response {
        errorPage(visit, status: .notFound, message: "We could not find that page. It may have moved, or the link may be wrong.")
    }

    /// An error page: a heading and a sentence, never the text of what was asked for.
    func errorPage(
        _ visit: Visit, status: HTTPResponse.Status, heading given: String? = nil, message: String, link: (String, String)? = nil
    ) -> Response {
        let heading: String =
            if let given { given } else {
            switch status.code {
            case 404: "Page not found"
            case 403: "This form could not be accepted"
            case 413, 415: "This form could not be read"
            case 503: "Please try again shortly"
            default: "Something went wrong"
            }
            }
        var values: [String: Any] = ["heading": heading, "message": message, "code": status.code]
        values["link"] = ["href": link?.0 ?? "/", "text": link?.1 ?? "Back to the front page"]
        return page("error", visit, status: status, title: heading, values: values)
    }

    func page(
        _ template: String, _ visit: Visit, status: HTTPResponse.Status = .ok, title: String, description: String? = nil,
        ogType: String = "website", jsonLd: String? = nil, values: [String: Any]
    ) -> Response {
        var object = values
        object["pageTitle"] = title
        object["ogType"] = ogType
        object["csrf"] = visit.csrfToken
        if let description { object["description"] = description }
        if let jsonLd { object["jsonLd"] = jsonLd }
        if let reader = visit.reader {
            object["reader"] = ["name": reader.account.displayName ?? reader.account.email]
        }
        guard let html = templates.render(object, withTemplate: template) else {
            return Response(status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "internal error\n")))
        }
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    // MARK: - Words and dates

    /// "Fourteen days free", as the seed page says it.
    static func daysFree(_ days: Int) -> String {
        let words = [
            "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve", "Thirteen",
            "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen", "Twenty", "Twenty-one", "Twenty-two",
            "Twenty-three", "Twenty-four", "Twenty-five", "Twenty-six", "Twenty-seven", "Twenty-eight", "Twenty-nine", "Thirty",
            "Thirty-one",
        ]
        let number = words.indices.contains(days) ? words[days] : String(days)
        return days == 1 ? "\(number) day free" : "\(number) days free"
    }

    /// "23 July 2025" (UTC), without a shared formatter (DateFormatter is not Sendable).
    static func longDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let parts = calendar.dateComponents([.day, .month, .year], from: date)
        let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
        let month = parts.month.flatMap { months.indices.contains($0 - 1) ? months[$0 - 1] : nil } ?? ""
        return "\(parts.day ?? 1) \(month) \(parts.year ?? 1970)"
    }
}
