import Foundation
import HTTPTypes
import HummingbirdTesting
import PaywallCore
import PaywallService
import PaywallTestSupport
import PaywallTokens
import PaywallWeb
import Testing

@Suite("Gift an article; the admin area")
struct GiftAndAdminTests {
    let library: ArticleLibrary
    init() throws { library = try ArticleLibrary.demo() }

    var gated: [Article] { library.articles.filter { $0.free != true && $0.section != "opinion" } }

    func path(_ article: Article) -> String { "/titles/\(article.title)/articles/\(article.id)" }

    @Test("a member makes a gift link; it opens that one article in full for anyone and no other")
    func gift() async throws {
        let f = try demoFixture()
        let seed = try #require(library.article(title: "euronews", id: "zelenskyy-talks"))
        let other = try #require(gated.first { $0.id != seed.id })
        try await withSite(f) { client in
            let member = Browser(client)
            try await signIn(member, "member@example.com", "demo member passphrase")
            var html = try await member.get(seedPath).text
            #expect(html.contains("Gift this article") && html.contains("You have 10 of 10 gift links left this month."))
            #expect(html.contains(#"action="\#(seedPath)/gift""#))

            // A forged form makes no gift.
            let before = try f.snapshot()
            #expect(refusedAsForged(try await member.post(seedPath + "/gift", [], csrf: .some(nil))))
            #expect(try f.snapshot() == before)

            _ = try await member.get(seedPath)
            let made = try await member.post(seedPath + "/gift", [])
            #expect(made.status == .ok && made.text.contains("Your gift link"))
            #expect(made.text.contains("<strong>9 gift links</strong> left this month (of 10)"))
            let range = try #require(made.text.range(of: #"value="http://[^"]+\?gift=[A-Za-z0-9._-]+""#, options: .regularExpression))
            let link = String(made.text[range].dropFirst(7).dropLast())
            let query = try #require(link.range(of: "?gift="))
            let token = String(link[query.upperBound...])
            #expect(link.contains(seedPath + "?gift="))
            #expect(try await member.get(seedPath).text.contains("You have 9 of 10 gift links left this month."))

            // Anyone: the whole article, said to be a gift, without a gift form or paywall.
            let anonymous = Browser(client)
            let gifted = try await anonymous.get(seedPath + "?gift=" + token)
            #expect(gifted.status == .ok)
            for paragraph in seed.paragraphs { #expect(contains(gifted.text, paragraph: paragraph)) }
            #expect(gifted.text.contains("A gift from a member") && !gifted.text.contains(#"class="paywall""#) && !gifted.text.contains("Gift this article"))
            #expect(gifted.headers[.cacheControl] == "private, no-store" && gifted.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin")
            // The same token on another article, a damaged one, garbage: an error page, nothing of the article.
            for (url, name) in [
                (path(other) + "?gift=" + token, "another article"), (seedPath + "?gift=" + token.dropLast(3) + "AAA", "damaged"),
                (seedPath + "?gift=%3Cscript%3E", "garbage"),
            ] {
                let response = try await anonymous.get(url)
                #expect(response.status == .forbidden, "\(name)")
                #expect(response.text.contains("This gift link does not work"), "\(name)")
                for paragraph in other.paragraphs + seed.paragraphs.dropFirst(2) { #expect(!contains(response.text, paragraph: paragraph), "\(name)") }
            }
            // Without the link: the teaser again.
            #expect(!contains(try await anonymous.get(seedPath).text, paragraph: seed.paragraphs[5]))

            // A reader without a membership: no form, and the route refuses (nothing written).
            let reader = Browser(client)
            try await signIn(reader, "reader@example.com", "demo reader passphrase")
            html = try await reader.get(seedPath).text
            #expect(contains(html, paragraph: seed.paragraphs[5]), "a metered full read")
            #expect(!html.contains("Gift this article"))
            let gifts = try f.snapshot()["gifts"]
            let refused = try await reader.post(seedPath + "/gift", [])
            #expect(refused.status == .forbidden && refused.text.contains("Only members can give this article"))
            #expect(try f.snapshot()["gifts"] == gifts)
            // Signed out: to sign in.
            _ = try await anonymous.get("/signin")
            #expect(try await anonymous.post(seedPath + "/gift", []).headers[.location] == "/signin?next=\(seedPath)")
        }
    }

    @Test("past the monthly limit the form says so and the route refuses")
    func giftLimit() async throws {
        let f = try ServiceFixture { $0.giftsPerMonth = 1 }
        _ = try f.service.loadDemoData(actor: f.admin)
        try await withSite(f) { client in
            let member = Browser(client)
            try await signIn(member, "member@example.com", "demo member passphrase")
            _ = try await member.get(seedPath)
            #expect(try await member.post(seedPath + "/gift", []).status == .ok)
            let html = try await member.get(seedPath).text
            #expect(html.contains("You have made your 1 gift links this month.") && !html.contains("Create a gift link"))
            let refused = try await member.post(seedPath + "/gift", [])
            #expect(refused.status == .forbidden && refused.text.contains("No gift links left this month"))
        }
    }

    func adminToken(_ f: ServiceFixture, _ scopes: Set<AdminScope>, lifetime: TimeInterval = 900) throws -> String {
        try f.service.issueAdminToken(subject: "alice", scopes: scopes, lifetime: lifetime, audience: nil, actor: f.admin).token
    }

    @Test("admin sign-in: a pasted admin token in a Strict cookie for /admin; anything else refused and nothing kept")
    func adminSignIn() async throws {
        let f = try demoFixture()
        let token = try adminToken(f, [.audit])
        try await withSite(f) { client in
            let browser = Browser(client)
            let first = try await browser.get("/admin")
            #expect(first.status == .unauthorized && first.text.contains("Admin sign-in") && first.text.contains(#"<label for="token">Admin token</label>"#))
            for path in ["/admin/decisions", "/admin/reads", "/admin/policy"] {
                #expect(try await browser.get(path).text.contains("Admin sign-in"), "\(path)")
            }
            // Forged form, garbage, a reader's token, an expired token: no cookie.
            #expect(refusedAsForged(try await browser.post("/admin/signin", [("token", token)], csrf: .some(nil))))
            #expect(await browser.cookies["paywall_admin"] == nil)
            _ = try await browser.get("/admin")
            let garbage = try await browser.post("/admin/signin", [("token", "<not a token>")])
            #expect(garbage.status == .unprocessableContent && garbage.text.contains("Paste an admin token"))
            let readerToken = try f.service.signInReader(email: "reader@example.com", password: "demo reader passphrase", deviceName: nil, client: "t").accessToken.token
            _ = try await browser.get("/admin")
            let reader = try await browser.post("/admin/signin", [("token", readerToken)])
            #expect(reader.status == .unprocessableContent && reader.text.contains("not an admin token"))
            #expect(!reader.text.contains(readerToken), "a token is never echoed")
            let expiring = try adminToken(f, [.audit], lifetime: 60)
            f.clock.advance(by: 600)
            _ = try await browser.get("/admin")
            let expired = try await browser.post("/admin/signin", [("token", expiring)])
            #expect(expired.status == .unprocessableContent && expired.text.contains("refused"))
            #expect(await browser.cookies["paywall_admin"] == nil)

            // A token that also opens more than the pages show is not kept in a browser.
            let broad = try adminToken(f, [.audit, .members, .privacy])
            _ = try await browser.get("/admin")
            let tooMuch = try await browser.post("/admin/signin", [("token", broad)])
            #expect(tooMuch.status == .unprocessableContent && tooMuch.text.contains("members, privacy") && tooMuch.text.contains("--scope audit --scope policy"), "\(tooMuch.text)")
            #expect(await browser.cookies["paywall_admin"] == nil)

            let fresh = try adminToken(f, [.audit])
            _ = try await browser.get("/admin")
            let signedIn = try await browser.post("/admin/signin", [("token", fresh)])
            #expect(signedIn.status == .seeOther && signedIn.headers[.location] == "/admin")
            let cookie = try #require(signedIn.headers[values: .setCookie].first { $0.hasPrefix("paywall_admin=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/admin"))
            let maxAge = try #require(cookie.range(of: #"Max-Age=\d+"#, options: .regularExpression).map { Int(cookie[$0].dropFirst(8)) ?? 0 })
            #expect((890...900).contains(maxAge))
            let home = try await browser.get("/admin")
            #expect(home.status == .ok && home.text.contains("alice") && home.text.contains("(needs the ‘policy’ scope)"))
            // Revoked while signed in: the next page is the sign-in page, the cookie cleared.
            let decisionsBefore = try await browser.get("/admin/decisions")
            #expect(decisionsBefore.status == .ok)
            let freshID = try #require(try f.service.verifyToken(fresh, kinds: [.admin]).registered.tokenID as String?)
            try f.service.revokeAdminTokens(tokenID: freshID, subject: nil, actor: f.admin)
            let revoked = try await browser.get("/admin/decisions")
            #expect(revoked.status == .unauthorized && revoked.text.contains("expired or was refused"))
            #expect(await browser.cookies["paywall_admin"] == nil)
            _ = try await browser.get("/admin")
            #expect(try await browser.post("/admin/signin", [("token", fresh)]).status == .unprocessableContent, "nor can it sign in again")
            let another = try adminToken(f, [.audit])
            _ = try await browser.get("/admin")
            #expect(try await browser.post("/admin/signin", [("token", another)]).status == .seeOther)
            // Signing out clears it.
            _ = try await browser.post("/admin/signout", [])
            #expect(await browser.cookies["paywall_admin"] == nil)
            // A cookie that stopped working: the sign-in page, and the cookie is cleared.
            await browser.setCookie("paywall_admin", expiring)
            let stale = try await browser.get("/admin/decisions")
            #expect(stale.status == .unauthorized && stale.text.contains("expired or was refused"))
            #expect(await browser.cookies["paywall_admin"] == nil)
        }
    }

    @Test("admin pages: recent decisions with their rules and no reader's identity, meter use, reads this month, the policy; scopes checked")
    func adminPages() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            // Some decisions: an anonymous teaser, a reader's metered reads.
            let reader = Browser(client)
            _ = try await reader.get(seedPath)
            try await signIn(reader, "reader@example.com", "demo reader passphrase")
            for article in gated.prefix(4) { _ = try await reader.get(path(article)) }
            let session = try #require(await reader.cookies["paywall_session"])

            let admin = Browser(client)
            await admin.setCookie("paywall_admin", try adminToken(f, [.audit]))
            let decisions = try await admin.get("/admin/decisions")
            #expect(decisions.status == .ok)
            let html = decisions.text
            #expect(html.contains("<td>zelenskyy-talks</td>") && html.contains("<td>anonymous</td>") && html.contains("<td>account</td>"))
            #expect(html.contains("<td>teaser</td>") && html.contains("<td>full</td>"))
            let recorded = f.service.decisionLog.recent()
            #expect(recorded.count == 5)
            for rule in Set(recorded.flatMap(\.decidingRules)) { #expect(forms(of: rule).contains { html.contains($0) }, "\(rule)") }
            #expect(html.contains("Meter use") && html.contains("one used"))
            // Never who: no email, id, session token.
            let id = try f.service.account("reader@example.com").id.rawValue
            for secret in ["reader@example.com", id, session] { #expect(!html.contains(secret), "\(secret)") }

            let reads = try await admin.get("/admin/reads")
            #expect(reads.status == .ok && reads.text.contains("Reads this month") && reads.text.contains(#"<th scope="row">euronews</th>"#))

            // The policy page needs the policy scope: a 403 page naming it.
            let refused = try await admin.get("/admin/policy")
            #expect(refused.status == .forbidden && refused.text.contains("‘policy’ scope"))
            await admin.setCookie("paywall_admin", try adminToken(f, [.policy]))
            let policy = try await admin.get("/admin/policy")
            let revision = try f.service.policy().revision
            #expect(policy.status == .ok && policy.text.contains(revision))
            let noAudit = try await admin.get("/admin/decisions")
            #expect(noAudit.status == .forbidden && noAudit.text.contains("‘audit’ scope"))
            #expect(try await admin.get("/admin/reads").status == .forbidden)
            // Every admin page read is audited as the admin.
            #expect(try f.service.auditEntries(target: "decisions", limit: 10).contains { $0.action == "admin.decisions.list" && $0.actor == .admin("alice") })
        }
    }
}
