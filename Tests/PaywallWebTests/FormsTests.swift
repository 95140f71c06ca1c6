import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallWeb
import Testing

@Suite("Sign up, sign in, the trial, the account page and their forms")
struct FormsTests {
    let library: ArticleLibrary
    init() throws { library = try ArticleLibrary.demo() }

    /// Gated articles (not free, not headline-only) in the library's order.
    var gated: [Article] { library.articles.filter { $0.free != true && $0.section != "opinion" } }

    @Test("the journey: sign up, metered full articles, the meter spent, the trial, sign out")
    func journey() async throws {
        let f = try demoFixture()
        let seed = try #require(library.article(title: "euronews", id: "zelenskyy-talks"))
        let others = Array(gated.filter { $0.id != seed.id }.prefix(3))
        try await withSite(f) { client in
            let browser = Browser(client)
            #expect(try await browser.get("/signup?next=\(seedPath)").status == .ok)
            let signedUp = try await browser.post(
                "/signup", [("name", "Web Reader"), ("email", "web@example.com"), ("password", "a long web passphrase"), ("next", seedPath)])
            #expect(signedUp.status == .seeOther)
            #expect(signedUp.headers[.location] == seedPath)
            let cookie = try #require(signedUp.headers[values: .setCookie].first { $0.hasPrefix("paywall_session=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"))
            #expect(!cookie.contains("Secure"))

            // Three free articles: full, each says how many are left.
            var html = try await browser.get(seedPath).text
            for paragraph in seed.paragraphs { #expect(contains(html, paragraph: paragraph)) }
            #expect(html.contains("You have 2 free articles left this month."))
            html = try await browser.get("/titles/\(others[0].title)/articles/\(others[0].id)").text
            #expect(html.contains("You have 1 free article left this month."))
            html = try await browser.get("/titles/\(others[1].title)/articles/\(others[1].id)").text
            #expect(html.contains("You have 0 free articles left this month."))
            // Re-reading one is free.
            html = try await browser.get(seedPath).text
            #expect(contains(html, paragraph: seed.paragraphs[11]))
            // Used up: the teaser, and the trial offered with a form.
            let fourth = others[2]
            let fourthPath = "/titles/\(fourth.title)/articles/\(fourth.id)"
            html = try await browser.get(fourthPath).text
            #expect(html.contains("You’ve read your free articles this month"))
            #expect(!contains(html, paragraph: fourth.paragraphs[4]))
            #expect(html.contains(#"<form method="post" action="/trial">"#))
            #expect(html.contains("Start your 14-day free trial"))
            var account = try await browser.get("/account").text
            #expect(account.contains("<strong>0 of 3</strong> free articles left"))
            #expect(account.contains("Web Reader"))

            // The trial: full text again, and the account page counts its days.
            let trial = try await browser.post("/trial", [("next", fourthPath)])
            #expect(trial.status == .seeOther)
            #expect(trial.headers[.location] == fourthPath)
            html = try await browser.get(fourthPath).text
            for paragraph in fourth.paragraphs { #expect(contains(html, paragraph: paragraph)) }
            #expect(!html.contains("class=\"paywall\""))
            account = try await browser.get("/account").text
            #expect(account.contains("14 days left"))
            // A second trial is refused on the account page.
            let again = try await browser.post("/trial", [])
            #expect(again.status == .conflict)
            #expect(again.text.contains("already been used"))

            // Sign out: the teaser again, and the old cookie opens nothing any more.
            let session = try #require(await browser.cookies["paywall_session"])
            let signedOut = try await browser.post("/signout", [])
            #expect(signedOut.status == .seeOther)
            #expect(await browser.cookies["paywall_session"] == nil)
            html = try await browser.get(fourthPath).text
            #expect(!contains(html, paragraph: fourth.paragraphs[4]))
            #expect(html.contains("Sign up to read this article"))
            await browser.setCookie("paywall_session", session)
            let replay = try await browser.get(fourthPath)
            #expect(!contains(replay.text, paragraph: fourth.paragraphs[4]))
            #expect(replay.headers[values: .setCookie].contains { $0.hasPrefix("paywall_session=;") })
            #expect(try await browser.get("/account").status == .seeOther)
        }
    }

    @Test("a link from another site spends no free article until the reader follows the page's own link; a name is optional")
    func crossSiteSpendsNothing() async throws {
        let f = try demoFixture()
        let seed = try #require(library.article(title: "euronews", id: "zelenskyy-talks"))
        let crossSite: HTTPFields = [HTTPField.Name("Sec-Fetch-Site")!: "cross-site"]
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signup")
            let signedUp = try await browser.post("/signup", [("name", ""), ("email", "nameless@example.com"), ("password", "a long web passphrase")])
            #expect(signedUp.status == .seeOther, "no name is fine: \(signedUp.text.prefix(300))")
            let before = try f.snapshot()["reads"]
            let fromElsewhere = try await browser.get(seedPath, headers: crossSite)
            #expect(fromElsewhere.status == .ok)
            #expect(fromElsewhere.text.contains("Read this article?") && fromElsewhere.text.contains("1 of your 3 free articles"))
            #expect(fromElsewhere.text.contains(#"href="\#(seedPath)""#))
            #expect(!contains(fromElsewhere.text, paragraph: seed.paragraphs[11]), "no full text before the reader says so")
            #expect(try f.snapshot()["reads"] == before, "no free article spent")
            // Followed from the page itself: read, and counted.
            let read = try await browser.get(seedPath, headers: [HTTPField.Name("Sec-Fetch-Site")!: "same-origin"]).text
            #expect(contains(read, paragraph: seed.paragraphs[11]))
            #expect(read.contains("You have 2 free articles left this month."))
            // Read already: from another site it opens at once (a re-read spends nothing).
            let again = try await browser.get(seedPath, headers: crossSite).text
            #expect(contains(again, paragraph: seed.paragraphs[11]) && !again.contains("Read this article?"))
            // A sibling subdomain, or a browser that says nothing and names no page of this
            // site, asks too; one typed or bookmarked (`none`) reads at once.
            let other = "/titles/euronews/articles/night-trains-return"
            for headers: HTTPFields in [[Browser.fetchSite: "same-site"], [Browser.fetchSite: "cross-site", .referer: "http://localhost/"]] {
                let asked = try await browser.get(other, headers: headers).text
                #expect(asked.contains("Read this article?"), "\(headers)")
            }
            // Without the header (an older browser): a Referer of this host reads, another
            // site's or none asks.
            let session: HTTPFields = [.cookie: "paywall_session=\(try #require(await browser.cookies["paywall_session"]))"]
            for referer in [nil, "http://evil.example/", "http://localhost.evil.example/"] {
                var headers = session
                if let referer { headers[.referer] = referer }
                let unsaid = try await client.execute(uri: other, method: .get, headers: headers)
                #expect(unsaid.text.contains("Read this article?"), "\(referer ?? "no Referer")")
            }
            #expect(try f.snapshot()["reads"] == before.map { $0 + 1 }, "nothing spent by those")
            var ownLink = session
            ownLink[.referer] = "http://localhost/titles/euronews/articles/zelenskyy-talks"
            let followed = try await client.execute(uri: other, method: .get, headers: ownLink).text
            #expect(!followed.contains("Read this article?") && followed.contains("You have 1 free article left this month."))
            let typed = try await browser.get("/titles/le-monde/articles/paris-bike-lanes", headers: [Browser.fetchSite: "none"]).text
            #expect(!typed.contains("Read this article?"))
            #expect(try f.snapshot()["reads"] == before.map { $0 + 3 })
        }
    }

    @Test("bad sign-up input: an inline error beside the field, the input kept but never the password, nothing written")
    func badSignUp() async throws {
        let f = try demoFixture()
        let cases: [(name: String, email: String, password: String, field: String)] = [
            ("Ann", "not an email", "a long web passphrase", "email-error"),
            ("Ann", "ann@example.com", "short", "password-error"),
            ("Ann", "reader@example.com", "a long web passphrase", "email-error"),
            ("Ann", "", "a long web passphrase", "email-error"),
            ("Ann", "ann@example.com", "", "password-error"),
        ]
        try await withSite(f) { client in
            let browser = Browser(client)
            for item in cases {
                _ = try await browser.get("/signup")
                let before = try f.snapshot()
                let response = try await browser.post("/signup", [("name", item.name), ("email", item.email), ("password", item.password)])
                #expect(response.status == .unprocessableContent, "\(item)")
                let html = response.text
                #expect(html.contains("id=\"\(item.field)\""), "\(item)")
                #expect(html.contains("aria-invalid=\"true\""))
                #expect(html.contains("value=\"Ann\""))
                if !item.email.isEmpty { #expect(html.contains("value=\"\(item.email)\"")) }
                if !item.password.isEmpty { #expect(!html.contains(item.password)) }
                #expect(response.headers[values: .setCookie].allSatisfy { !$0.hasPrefix("paywall_session=") })
                #expect(try f.snapshot() == before, "\(item)")
            }
        }
    }

    @Test("the account page offers the trial the button gives: the policy's length, not the configured default")
    func accountTrialLength() async throws {
        let f = try ServiceFixture { $0.trialLength = 30 * 86_400 }  // the shipped policy offers 14 days
        _ = try f.service.loadDemoData(actor: f.admin)
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signup")
            _ = try await browser.post("/signup", [("name", "Trial Reader"), ("email", "trial-length@example.com"), ("password", "a long web passphrase")])
            let account = try await browser.get("/account").text
            #expect(account.contains("Start your 14-day free trial"))
            #expect(!account.contains("30-day"))
        }
    }

    @Test("a wrong password: an inline error, the email kept, no session")
    func badSignIn() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            let before = try f.snapshot()
            let response = try await browser.post("/signin", [("email", "reader@example.com"), ("password", "not the passphrase")])
            #expect(response.status == .unprocessableContent)
            #expect(response.text.contains("That email and password do not match an account."))
            #expect(response.text.contains(#"value="reader@example.com""#))
            #expect(!response.text.contains("not the passphrase"))
            // Nothing but the sign-in throttle's counters (the email's and the address's).
            var after = try f.snapshot()
            #expect(after.removeValue(forKey: "sign_in_failures") == (before["sign_in_failures"] ?? 0) + 2)
            var unchanged = before
            unchanged.removeValue(forKey: "sign_in_failures")
            #expect(after == unchanged)
            #expect(await browser.cookies["paywall_session"] == nil)
            // A password longer than any stored (1,024 bytes): the same answer, not a 500.
            let long = try await browser.post("/signin", [("email", "reader@example.com"), ("password", String(repeating: "p", count: 1_025))])
            #expect(long.status == .unprocessableContent)
            #expect(long.text.contains("That email and password do not match an account."))
            #expect(await browser.cookies["paywall_session"] == nil)
        }
    }

    @Test("Origin: this site's is taken, by the Host the request came to or, behind a proxy that rewrites Host, by PAYWALL_LINK_BASE's origin")
    func originOfThisSite() async throws {
        let member = [("email", "member@example.com"), ("password", "demo member passphrase")]
        let direct = try demoFixture()
        try await withSite(direct) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            // The test router's requests come to `localhost`.
            #expect(try await browser.post("/signin", member, headers: [.origin: "https://news.example.com"]).status == .forbidden, "no link base: only the Host's origin")
            let signedIn = try await browser.post("/signin", member, headers: [.origin: "http://localhost"])
            #expect(signedIn.status == .seeOther, "a browser's own origin")
        }
        let proxied = try ServiceFixture { $0.linkBase = "https://News.Example.com:443/paywall" }
        _ = try proxied.service.loadDemoData(actor: proxied.admin)
        try await withSite(proxied, settings: WebSettings(secureCookies: true)) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            let before = try proxied.snapshot()
            // The requests come to `localhost` (a proxy's upstream); another site's origin is
            // still refused.
            let foreign = try await browser.post("/signin", member, headers: [.origin: "https://evil.example"])
            #expect(foreign.status == .forbidden)
            #expect(try proxied.snapshot() == before)
            let signedIn = try await browser.post("/signin", member, headers: [.origin: "https://news.example.com"])
            #expect(signedIn.status == .seeOther, "the public site's origin")
        }
    }

    @Test("CSRF: a missing, wrong or other session's token, no CSRF cookie, or a foreign Origin: 403 and nothing written")
    func csrf() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            let anonymousToken = try #require(await browser.lastCSRF)
            let member = [("email", "member@example.com"), ("password", "demo member passphrase")]
            let signUp = [("email", "csrf@example.com"), ("password", "a long web passphrase")]
            func refused(_ response: TestResponse) -> Bool {
                response.status == .forbidden && response.text.contains("did not come from this site")
                    && response.headers[values: .setCookie].allSatisfy { !$0.hasPrefix("paywall_session=") }
            }
            var before = try f.snapshot()
            #expect(refused(try await browser.post("/signup", signUp, csrf: .some(nil))))
            #expect(refused(try await browser.post("/signup", signUp, csrf: "forged")))
            #expect(refused(try await browser.post("/signup", signUp, headers: [.origin: "https://evil.example"])))
            #expect(refused(try await browser.post("/signin", member, headers: [.origin: "null"])))
            #expect(try f.snapshot() == before)

            // Signed in: a token made for the anonymous visit no longer works.
            #expect(try await browser.post("/signin", member).status == .seeOther)
            _ = try await browser.get("/account")
            before = try f.snapshot()
            #expect(refused(try await browser.post("/trial", [], csrf: anonymousToken)))
            #expect(refused(try await browser.post("/signout", [], csrf: .some(nil))))
            // Another browser's CSRF cookie with this page's token.
            let token = try #require(await browser.lastCSRF)
            await browser.setCookie("paywall_csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            #expect(refused(try await browser.post("/trial", [], csrf: token)))
            #expect(try f.snapshot() == before)
            // Without any CSRF cookie.
            await browser.setCookie("paywall_csrf", nil)
            #expect(refused(try await browser.post("/signout", [], csrf: token)))
            #expect(try f.snapshot() == before)
        }
    }

    @Test("two servers on one database (behind a load balancer): a form one rendered is accepted by the other, and after a restart")
    func formsAcrossServers() async throws {
        let f = try demoFixture()
        let other = try f.another()
        var first = PaywallAPI(service: f.service)
        first.web = try WebSite(service: f.service, articles: ArticleLibrary.demo(), settings: WebSettings())
        var second = PaywallAPI(service: other)
        second.web = try WebSite(service: other, articles: ArticleLibrary.demo(), settings: WebSettings())
        // A page from the first server: its CSRF cookie and field.
        let (cookies, token) = try await Application(router: first.router()).test(.router) { client in
            let browser = Browser(client)
            _ = try await browser.get("/forgot-password")
            return (await browser.cookies, try #require(await browser.lastCSRF))
        }
        // Posted to the second.
        let status = try await Application(router: second.router()).test(.router) { client in
            let browser = Browser(client)
            for (name, value) in cookies { await browser.setCookie(name, value) }
            return try await browser.post("/forgot-password", [("email", "reader@example.com")], csrf: token).status
        }
        #expect(status == .ok, "a form made by another server was refused")
    }

    @Test("forms only as forms: another content type is refused, and `next` never leaves the site", arguments: [
        "//evil.example/", "https://evil.example/", "/\\evil.example", "/account?x=1", "javascript:alert(1)",
    ])
    func nextStaysHere(next: String) async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            let response = try await browser.post("/signin", [("email", "reader@example.com"), ("password", "demo reader passphrase"), ("next", next)])
            #expect(response.status == .seeOther)
            #expect(response.headers[.location] == "/account")
            let json = try await client.execute(
                uri: "/signin", method: .post, headers: [.contentType: "application/json"], body: .init(string: #"{"email":"a"}"#))
            #expect(json.status == .unsupportedMediaType)
        }
    }

    @Test("Secure cookies when served over TLS (a setting), named __Host- so no plain-HTTP page or sibling subdomain can plant one; the unprefixed names are then ignored")
    func secureCookies() async throws {
        let f = try demoFixture()
        try await withSite(f, settings: WebSettings(secureCookies: true)) { client in
            let browser = Browser(client)
            let page = try await browser.get("/signin")
            #expect(page.headers[values: .setCookie].allSatisfy { $0.contains("Secure") && $0.hasPrefix("__Host-") && $0.contains("Path=/") && !$0.contains("Domain") })
            let response = try await browser.post("/signin", [("email", "reader@example.com"), ("password", "demo reader passphrase")])
            let cookie = try #require(response.headers[values: .setCookie].first { $0.hasPrefix("__Host-paywall_session=") })
            #expect(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"))
            #expect(try await browser.get("/account").status == .ok)
            // A planted, unprefixed session cookie (an attacker's own account) opens nothing,
            // and goes (as those set before the site moved to TLS).
            let session = try #require(await browser.cookies["__Host-paywall_session"])
            await browser.setCookie("__Host-paywall_session", nil)
            await browser.setCookie("paywall_session", session)
            let planted = try await browser.get("/account")
            #expect(planted.status == .seeOther)
            #expect(planted.headers[values: .setCookie].contains { $0.hasPrefix("paywall_session=;") && $0.contains("Max-Age=0") }, "\(planted.headers[values: .setCookie])")
            #expect(await browser.cookies["paywall_session"] == nil)
        }
        #expect(throws: ServiceError.self) { try WebSettings.resolve(environment: ["PAYWALL_SECURE_COOKIES": "maybe"]) }
        // Over TLS the browser is told to stay on it; served over plain HTTP, nothing is said.
        let hsts = HTTPField.Name("Strict-Transport-Security")!
        try await withSite(f, settings: WebSettings(secureCookies: true)) { client in
            for path in ["/", "/signin", "/no-such-page"] {
                let response = try await client.execute(uri: path, method: .get, headers: [.accept: "text/html"])
                #expect(response.headers[hsts] == "max-age=31536000", "\(path)")
            }
        }
        try await withSite(f) { client in
            let plain = try await client.execute(uri: "/", method: .get)
            #expect(plain.headers[hsts] == nil)
        }
        #expect(try WebSettings.resolve(environment: ["PAYWALL_SECURE_COOKIES": "1"]).secureCookies)
        #expect(try !WebSettings.resolve(environment: [:]).secureCookies)
    }

    @Test("signing in or up over a live session signs that session out: no orphan on its account's device list")
    func signInOverSession() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            _ = try await browser.post("/signin", [("email", "reader@example.com"), ("password", "demo reader passphrase")])
            let first = try #require(await browser.cookies["paywall_session"])
            let reader = try f.service.account("reader@example.com").id
            #expect(try f.service.profile(accountID: reader).sessions.count == 1)
            // The sign-in page sends a signed-in reader on, and forms are bound to the session
            // they were drawn with: a sign-in over a live session posts a token drawn with it
            // (here the account page's).
            #expect(try await browser.get("/signin").status == .seeOther)
            _ = try await browser.get("/account")
            let second = try await browser.post("/signin", [("email", "member@example.com"), ("password", "demo member passphrase")])
            #expect(second.status == .seeOther)
            #expect(try await browser.cookies["paywall_session"] != first)
            #expect(try f.service.profile(accountID: reader).sessions.isEmpty, "the first reader's web session outlived its cookie")
            #expect(throws: ServiceError.self) { try f.service.signOut(refreshToken: first) }
            let member = try f.service.account("member@example.com").id
            #expect(try f.service.profile(accountID: member).sessions.count == 1)
            // And a sign-up over it likewise.
            #expect(try await browser.get("/signup").status == .seeOther, "a signed-in reader is sent on from the sign-up page")
            _ = try await browser.get("/account")
            let third = try await browser.post("/signup", [("name", "Newcomer"), ("email", "newcomer@example.com"), ("password", "a long new passphrase here")])
            #expect(third.status == .seeOther)
            #expect(try f.service.profile(accountID: member).sessions.isEmpty)
            // A sign-in that fails leaves the session that was there.
            let newcomer = try f.service.account("newcomer@example.com").id
            _ = try await browser.get("/account")
            let failed = try await browser.post("/signin", [("email", "member@example.com"), ("password", "not the passphrase")])
            #expect(failed.status == .unprocessableContent)
            #expect(try f.service.profile(accountID: newcomer).sessions.count == 1)
        }
    }

    @Test("a session cookie copied and refreshed through the API as an app's token: the browser's next page revokes the family, the copy's successor with it")
    func stolenCookieRotated() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            _ = try await browser.post("/signin", [("email", "reader@example.com"), ("password", "demo reader passphrase")])
            let cookie = try #require(await browser.cookies["paywall_session"])
            // The thief renews the copy: it works once (the pages never rotate their token).
            func refresh(_ token: String) async throws -> TestResponse {
                try await client.execute(
                    uri: "/v1/sessions/refresh", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: #"{"refreshToken":"\#(token)"}"#))
            }
            let stolen = try await refresh(cookie)
            #expect(stolen.status == .ok)
            let successor = try #require(try JSONSerialization.jsonObject(with: Data(stolen.text.utf8)) as? [String: Any])["refreshToken"] as? String
            // The reader's browser comes back with its cookie: signed out, and so is the thief.
            let page = try await browser.get("/account")
            #expect(page.status == .seeOther && page.headers[.location] == "/signin?next=/account")
            #expect(await browser.cookies["paywall_session"] == nil)
            let after = try await refresh(try #require(successor))
            #expect(after.status == .unauthorized, "the thief's successor still renews: \(after.text)")
            let reader = try f.service.account("reader@example.com").id
            #expect(try f.service.profile(accountID: reader).sessions.isEmpty)
            #expect(try f.service.auditEntries(target: "account:\(reader)", limit: 20).contains { $0.action == "session.reuse" })
            // A cookie merely signed out is not theft: nothing more is revoked or audited.
            _ = try await browser.get("/signin")
            _ = try await browser.post("/signin", [("email", "reader@example.com"), ("password", "demo reader passphrase")])
            let second = try #require(await browser.cookies["paywall_session"])
            _ = try f.service.signOut(refreshToken: second)
            let audits = try f.service.auditEntries(target: "account:\(reader)", limit: 50).count
            #expect(try await browser.get("/account").status == .seeOther)
            #expect(try f.service.auditEntries(target: "account:\(reader)", limit: 50).count == audits)
        }
    }

    @Test("the account page needs a session; a member sees their plan")
    func accountPage() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let anonymous = try await client.execute(uri: "/account", method: .get)
            #expect(anonymous.status == .seeOther)
            #expect(anonymous.headers[.location] == "/signin?next=/account")
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            _ = try await browser.post("/signin", [("email", "member@example.com"), ("password", "demo member passphrase")])
            let html = try await browser.get("/account").text
            #expect(html.contains("All titles, monthly"))
            #expect(html.contains("Active"))
            #expect(html.contains("Max Member"))
        }
    }
}
