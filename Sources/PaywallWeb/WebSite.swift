import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Mustache
import NIOCore
import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallService
import PaywallTokens

/// How the pages are served.
public struct WebSettings: Sendable, Equatable {
    /// Mark cookies `Secure` and expect `https` origins: set when the site is reached over
    /// TLS (a proxy in front of `paywall serve` terminates it).
    public var secureCookies = false

    public init(secureCookies: Bool = false) {
        self.secureCookies = secureCookies
    }

    /// The variables ``resolve(environment:)`` reads.
    public static let environmentNames: Set<String> = ["PAYWALL_SECURE_COOKIES"]

    /// From `PAYWALL_SECURE_COOKIES` (`1`/`true` or `0`/`false`); anything else is refused
    /// with the variable's name.
    public static func resolve(environment: [String: String]) throws(ServiceError) -> WebSettings {
        var settings = WebSettings()
        if let text = environment["PAYWALL_SECURE_COOKIES"] {
            switch text.lowercased() {
            case "1", "true", "yes": settings.secureCookies = true
            case "0", "false", "no", "": settings.secureCookies = false
            default: throw .configuration(name: "PAYWALL_SECURE_COOKIES", value: text, expected: "1 or 0 (1 when the site is served over TLS)")
            }
        }
        return settings
    }
}

/// The reader's web pages: server-rendered HTML over ``PaywallService``. A thin adapter:
/// the service decides, reads and writes; this renders what it allows, and nothing else of
/// an article's text ever leaves the server.
public struct WebSite: Sendable {
    public let service: PaywallService
    public let articles: ArticleLibrary
    public let settings: WebSettings
    let templates: MustacheLibrary
    let csrf: CSRF
    let stylesheet: ByteBuffer
    let favicon: ByteBuffer
    let linkScript: ByteBuffer
    /// The pages' own log lines (forms refused, admin tokens refused, pages failed), held
    /// as the API's are (found in review: every page during an outage wrote its line).
    let logLimits = LogLimits()
    /// `PAYWALL_LINK_BASE`'s origin, as `Origin` names this site (``originAllowed(_:)``).
    let linkBaseOrigin: String?

    public init(service: PaywallService, articles: ArticleLibrary, settings: WebSettings = WebSettings()) throws {
        self.service = service
        self.articles = articles
        self.settings = settings
        linkBaseOrigin = Self.origin(ofLinkBase: service.configuration.linkBase)
        templates = try Self.loadTemplates()
        csrf = CSRF(key: try service.webFormKey())
        stylesheet = try Self.staticFile("site.css")
        favicon = try Self.staticFile("favicon.svg")
        linkScript = try Self.staticFile("link-token.js")
    }

    static func loadTemplates() throws -> MustacheLibrary {
        guard let folder = Bundle.module.url(forResource: "Templates", withExtension: nil) else {
            throw WebSetupError.missingResource("Templates")
        }
        var library = MustacheLibrary()
        let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        for file in files where file.pathExtension == "mustache" {
            let name = file.deletingPathExtension().lastPathComponent
            do { try library.register(String(contentsOf: file, encoding: .utf8), named: name) } catch {
                throw WebSetupError.template(name, String(describing: error))
            }
        }
        return library
    }

    static func staticFile(_ name: String) throws -> ByteBuffer {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Static") else {
            throw WebSetupError.missingResource("Static/\(name)")
        }
        return ByteBuffer(bytes: try Data(contentsOf: url))
    }

    // MARK: - Routes

    /// The site's 404 page, for a browser asking for a page at a path no route has (a
    /// mistyped or old link); nil for anything else, which gets the API's JSON 404: another
    /// method, a client that does not accept HTML, or a path of the API's.
    public func notFoundPage<Context: RemoteAddressRequestContext>(_ request: Request, _ context: Context) async -> Response? {
        let path = request.uri.path
        guard request.method == .get || request.method == .head,
              request.headers[.accept]?.contains("text/html") == true,
              !path.hasPrefix("/v1/"), !path.hasPrefix("/admin/v1/"), !path.hasPrefix("/.well-known/")
        else { return nil }
        return await run(request, context) { visit in self.notFound(visit) }
    }

    /// The pages' routes, added to the API's router (`paywall serve` mounts both on one server).
    public func addRoutes<Context: RemoteAddressRequestContext>(to router: Router<Context>) {
        router.get("/") { request, context in await self.run(request, context) { visit in try await self.home(visit) } }
        router.get("/titles/:title/articles/:article") { request, context in
            await self.run(request, context) { visit in
                try await self.articlePage(visit, title: context.parameters.get("title") ?? "", article: context.parameters.get("article") ?? "")
            }
        }
        router.post("/titles/:title/articles/:article/gift") { request, context in
            await self.run(request, context, form: true) { visit in
                try await self.createGift(visit, title: context.parameters.get("title") ?? "", article: context.parameters.get("article") ?? "")
            }
        }
        router.get("/signin") { request, context in await self.run(request, context) { visit in self.signInPage(visit) } }
        router.post("/signin") { request, context in await self.run(request, context, form: true) { visit in try await self.signIn(visit) } }
        router.get("/signup") { request, context in await self.run(request, context) { visit in self.signUpPage(visit) } }
        router.post("/signup") { request, context in await self.run(request, context, form: true) { visit in try await self.signUp(visit) } }
        router.post("/signout") { request, context in await self.run(request, context, form: true) { visit in try await self.signOut(visit) } }
        router.post("/trial") { request, context in await self.run(request, context, form: true) { visit in try await self.startTrial(visit) } }
        router.get("/account") { request, context in await self.run(request, context) { visit in try await self.account(visit) } }
        router.post("/account/verification") { request, context in await self.run(request, context, form: true) { visit in try await self.resendVerification(visit) } }
        router.post("/account/sessions/revoke") { request, context in await self.run(request, context, form: true) { visit in try await self.revokeSession(visit) } }
        router.post("/account/password") { request, context in await self.run(request, context, form: true) { visit in try await self.changePassword(visit) } }
        router.post("/account/email") { request, context in await self.run(request, context, form: true) { visit in try await self.changeEmail(visit) } }
        router.post("/account/export") { request, context in await self.run(request, context, form: true) { visit in try await self.exportData(visit) } }
        router.post("/account/delete") { request, context in await self.run(request, context, form: true) { visit in try await self.deleteAccount(visit) } }
        router.post("/signout-everywhere") { request, context in await self.run(request, context, form: true) { visit in try await self.signOutEverywhere(visit) } }
        // The pages the links in mail open (the token in the fragment: see AccountPages.swift).
        router.get("/verify-email") { request, context in await self.run(request, context) { visit in self.verifyEmailPage(visit) } }
        router.post("/verify-email") { request, context in await self.run(request, context, form: true) { visit in try await self.verifyEmail(visit) } }
        router.get("/reset-password") { request, context in await self.run(request, context) { visit in self.resetPasswordPage(visit) } }
        router.post("/reset-password") { request, context in await self.run(request, context, form: true) { visit in try await self.resetPassword(visit) } }
        router.get("/undo-email-change") { request, context in await self.run(request, context) { visit in self.undoEmailChangePage(visit) } }
        router.post("/undo-email-change") { request, context in await self.run(request, context, form: true) { visit in try await self.undoEmailChange(visit) } }
        router.get("/forgot-password") { request, context in await self.run(request, context) { visit in self.forgotPasswordPage(visit) } }
        router.post("/forgot-password") { request, context in await self.run(request, context, form: true) { visit in try await self.forgotPassword(visit) } }
        // The admin area (AdminPages.swift).
        router.get("/admin") { request, context in await self.run(request, context) { visit in try await self.adminHome(visit) } }
        router.post("/admin/signin") { request, context in await self.run(request, context, form: true) { visit in try await self.adminSignIn(visit) } }
        router.post("/admin/signout") { request, context in await self.run(request, context, form: true) { visit in self.adminSignOut(visit) } }
        router.get("/admin/decisions") { request, context in await self.run(request, context) { visit in try await self.adminDecisions(visit) } }
        router.get("/admin/reads") { request, context in await self.run(request, context) { visit in try await self.adminReads(visit) } }
        router.get("/admin/policy") { request, context in await self.run(request, context) { visit in try await self.adminPolicy(visit) } }
        router.get("/feed.xml") { request, context in await self.run(request, context) { visit in try await self.feed(visit) } }
        router.get("/sitemap.xml") { request, context in await self.run(request, context) { visit in try await self.sitemap(visit) } }
        router.get("/static/site.css") { _, _ in self.asset(self.stylesheet, type: "text/css; charset=utf-8") }
        router.get("/static/link-token.js") { _, _ in self.asset(self.linkScript, type: "text/javascript; charset=utf-8") }
        router.get("/static/favicon.svg") { _, _ in self.asset(self.favicon, type: "image/svg+xml") }
        router.get("/favicon.ico") { _, _ in self.asset(self.favicon, type: "image/svg+xml") }
    }

    // MARK: - Every request

    /// What one request knows about its reader.
    struct Visit: Sendable {
        var request: Request
        var logger: Logger
        var facts: RequestFacts
        /// The signed-in reader, if the session cookie opens a session.
        var reader: WebReader?
        /// The session cookie's token (only when it opens a session).
        var sessionToken: String?
        /// Whether a session cookie was sent that opens nothing (it is cleared).
        var staleSession: Bool
        /// The session's new expiry when this visit moved it: the cookie is set again to last
        /// as long.
        var sessionRenewedUntil: Date? = nil
        /// The CSRF seed cookie, and whether it is new (to be set).
        var csrfSeed: String
        var newSeed: Bool
        /// The token every form of this page carries.
        var csrfToken: String
        /// The client's address as rate limits key it (``clientRateLimitKey(_:)``).
        var clientKey: String
        /// The submitted form (POST).
        var form: Form?

        var accessReader: AccessReader { reader.map { .account($0.account.id) } ?? .anonymous }
    }

    /// Resolves the reader, checks a form's CSRF token and origin, runs `body`, and turns
    /// every failure into an HTML error page (never the API's JSON, never a stack of text
    /// the reader is not entitled to), with the pages' security headers.
    func run<Context: RemoteAddressRequestContext>(
        _ request: Request, _ context: Context, form expectsForm: Bool = false, _ body: @Sendable (Visit) async throws -> Response
    ) async -> Response {
        var request = request
        // The same client address and crawler verdict as the API's (one place: TrustedProxies).
        let peer = context.remoteAddress?.ipAddress
        let proxies = service.configuration.trustedProxies
        let client = proxies.client(peer: peer, forwardedFor: request.headers[values: Self.forwardedForField])
        var facts = proxies.requestFacts(client: client, peer: peer, verifiedCrawlerHeader: request.headers[Self.verifiedCrawlerField], channel: "web")
        // The page the reader came from (a search engine, a social site), by its host.
        if let referer = request.headers[.referer], let host = URLComponents(string: referer)?.host, let valid = RequestFacts.hostName(host) {
            facts.referrerHost = valid
        }
        let cookies = request.cookies
        var visit = Visit(
            request: request, logger: context.logger, facts: facts, reader: nil, sessionToken: nil, staleSession: false,
            csrfSeed: "", newSeed: false, csrfToken: "", clientKey: clientRateLimitKey(client), form: nil)
        do {
            if let token = cookies[cookieName(Cookies.session)]?.value {
                if Cookies.isToken(token), let reader = try await service.blocking({ service throws(ServiceError) in try service.webReader(refreshToken: token) }) {
                    visit.reader = reader
                    visit.sessionToken = token
                } else {
                    visit.staleSession = true
                }
            }
            if let seed = cookies[cookieName(Cookies.csrf)]?.value, Cookies.isToken(seed) {
                visit.csrfSeed = seed
            } else {
                visit.csrfSeed = try Self.newToken()
                visit.newSeed = true
            }
            visit.csrfToken = csrf.token(seed: visit.csrfSeed, session: visit.sessionToken) ?? ""
            if expectsForm {
                guard (request.headers[.contentType] ?? "").lowercased().hasPrefix("application/x-www-form-urlencoded") else {
                    return finish(errorPage(visit, status: .unsupportedMediaType, message: "This form must be sent by the page's own form."), visit)
                }
                let buffer: ByteBuffer
                do {
                    buffer = try await BodyReading.collect(&request, upTo: Form.limit)
                } catch is BodyReading.Late {
                    return finish(errorPage(visit, status: .requestTimeout, message: "That form took too long to arrive. Go back and send it again."), visit)
                } catch {
                    return finish(errorPage(visit, status: .contentTooLarge, message: "That form was too large."), visit)
                }
                let form = Form(urlEncoded: String(buffer: buffer))
                // A forged cross-site form: refused before anything is read or written.
                guard originAllowed(request), !visit.newSeed,
                      csrf.isValid(form["csrf"], seed: visit.csrfSeed, session: visit.sessionToken)
                else {
                    logLimits.log(context.logger, .info, "web form refused", code: "csrf", metadata: ["reason": "csrf", "path": .string(request.uri.path)])
                    return finish(
                        errorPage(visit, status: .forbidden, message: "This form has expired or did not come from this site. Go back, reload the page and try again."),
                        visit)
                }
                visit.form = form
            }
            let response = try await body(visit)
            // The session's use, noted after the page is made and only where its cookie can
            // be set again (not on a feed a cache may keep): best effort, the page is shown
            // when the note cannot be written (the database read-only a moment).
            if let reader = visit.reader, response.headers[.cacheControl] == nil || response.headers[.cacheControl]?.contains("no-store") == true {
                do {
                    visit.sessionRenewedUntil = try await service.blocking { service throws(ServiceError) in try service.noteWebSessionUse(reader) }
                } catch {
                    context.logger.warning("a web session's use was not noted", metadata: ["error": .string(LogText.maskingEmails(String(describing: error)))])
                }
            }
            return finish(response, visit)
        } catch {
            let unavailable = (error as? ServiceError)?.category == .unavailable
            logLimits.log(context.logger, .error, "web page failed", code: (error as? ServiceError)?.code ?? "internal", outage: unavailable, metadata: [
                "path": .string(request.uri.path), "error": .string(LogText.maskingEmails(String(describing: error))),
            ])
            // As the API's requests do: `/readyz` checks again rather than reuse a success
            // (found in review: only the API's errors told it).
            if unavailable { service.databaseUnavailableSeen() }
            let status: HTTPResponse.Status = unavailable ? .serviceUnavailable : .internalServerError
            return finish(errorPage(visit, status: status, message: "Something went wrong on our side. Please try again in a moment."), visit)
        }
    }

    /// `Origin`, when the browser sends it (every modern browser does on a POST), must be
    /// this site: a second check beside the CSRF token. This site is the address the
    /// request was sent to (its `Host`) or, when set, `PAYWALL_LINK_BASE`'s origin: behind a
    /// proxy that rewrites `Host` (nginx's default sends its upstream's, `127.0.0.1:8080`)
    /// every form of the public site was refused 403 (found in review).
    func originAllowed(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        if let linkBaseOrigin, origin == linkBaseOrigin { return true }
        guard let host = request.head.authority else { return false }
        return origin == (settings.secureCookies ? "https://" : "http://") + host
    }

    /// A link base's origin as browsers send it in `Origin`: the scheme and host in lower
    /// case, the port only when not the scheme's default (`https://news.example.com`).
    static func origin(ofLinkBase linkBase: String?) -> String? {
        guard let linkBase, let url = URLComponents(string: linkBase), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased(), !host.isEmpty
        else { return nil }
        let port = url.port.flatMap { (scheme, $0) == ("https", 443) || (scheme, $0) == ("http", 80) ? nil : $0 }
        // An IPv6 literal is bracketed in an origin; URLComponents gives it bare.
        let name = host.contains(":") && !host.hasPrefix("[") ? "[" + host + "]" : host
        return scheme + "://" + name + (port.map { ":\($0)" } ?? "")
    }

    static func newToken() throws -> String {
        Base64URL.encode(try SecureRandom.bytes(32))
    }

    /// The pages' headers: a strict CSP (no scripts at all, styles and images from this site
    /// only, forms post here only, never framed), no sniffing, no referrer beyond this site,
    /// and never cached by anyone: every page shows who is signed in and what they may read.
    /// The two pages mail links open set their own CSP, which adds this site's scripts
    /// (``linkPageCSP``).
    func finish(_ response: Response, _ visit: Visit) -> Response {
        var response = response
        if response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] =
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[Self.referrerPolicy] = "same-origin"
        response.headers[Self.frameOptions] = "DENY"
        // Served over TLS (the `__Host-` cookies say so): browsers are told to come back
        // over TLS only, or a reader's first plain-HTTP visit could be stripped of it on
        // the way (found in review). A year, as browsers' preload lists ask; no subdomains,
        // which may be other sites of the publisher's.
        if settings.secureCookies { response.headers[Self.strictTransportSecurity] = "max-age=31536000" }
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "private, no-store" }
        // A response that may be cached (the feed, the sitemap) sets no cookie: a shared
        // cache would hand one reader's CSRF seed, or a session cookie's removal, to
        // everyone, and a browser's would replay them later.
        if response.headers[.cacheControl]?.contains("no-store") == false { return response }
        if visit.newSeed, !visit.csrfSeed.isEmpty {
            response.setCookie(cookie(Cookies.csrf, visit.csrfSeed, maxAge: nil))
        }
        // Served over TLS the cookies are __Host- named; those set before that (unprefixed,
        // one holding a live session) are never read, and go: without this they stayed a
        // month, their session an extra "Web browser" on the device list.
        if settings.secureCookies {
            for name in [Cookies.session, Cookies.csrf] where visit.request.cookies[name] != nil {
                response.setCookie(Cookie(name: name, value: "", maxAge: 0, path: "/", secure: true, httpOnly: true, sameSite: .lax))
            }
            if visit.request.cookies[Self.adminCookie] != nil {
                response.setCookie(Cookie(name: Self.adminCookie, value: "", maxAge: 0, path: "/admin", secure: true, httpOnly: true, sameSite: .strict))
            }
        }
        let setsSession = response.headers[values: .setCookie].contains { $0.hasPrefix(cookieName(Cookies.session) + "=") }
        if visit.staleSession, !setsSession {
            response.setCookie(cookie(Cookies.session, "", maxAge: 0))
        }
        // The session lasts longer now: so does its cookie (unless the page ended or replaced it).
        if let until = visit.sessionRenewedUntil, let token = visit.sessionToken, !setsSession {
            response.setCookie(cookie(Cookies.session, token, maxAge: max(0, Int(until.timeIntervalSince(service.now)))))
        }
        return response
    }

    static let forwardedForField = HTTPField.Name("X-Forwarded-For")!
    static let verifiedCrawlerField = HTTPField.Name(TrustedProxies.verifiedCrawlerHeader)!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let frameOptions = HTTPField.Name("X-Frame-Options")!
    static let strictTransportSecurity = HTTPField.Name("Strict-Transport-Security")!

    /// Every cookie: HttpOnly, SameSite=Lax, the whole site, Secure over TLS.
    func cookie(_ name: String, _ value: String, maxAge: Int?) -> Cookie {
        Cookie(name: cookieName(name), value: value, maxAge: maxAge, path: "/", secure: settings.secureCookies, httpOnly: true, sameSite: .lax)
    }

    /// A cookie's name as sent: over TLS with the `__Host-` prefix, which browsers accept
    /// only when set Secure, for the whole path, by this host and no other (no `Domain`):
    /// a page served over plain HTTP, or by a sibling subdomain, cannot plant a session
    /// cookie of the attacker's own account (the reader would then read, start a trial or
    /// give gifts inside it) or a CSRF seed it knows.
    func cookieName(_ name: String) -> String {
        settings.secureCookies ? "__Host-" + name : name
    }

    func asset(_ buffer: ByteBuffer, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "public, max-age=3600", .xContentTypeOptions: "nosniff"],
            body: .init(byteBuffer: buffer))
    }

    func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }
}
