import Foundation
import HTTPTypes
import HummingbirdTesting
import PaywallCore
import PaywallService
import PaywallTestSupport
import PaywallWeb
import Testing

/// Signs a browser in through the page's form and reads a page, so its CSRF token is the
/// session's.
func signIn(_ browser: Browser, _ email: String, _ password: String) async throws {
    _ = try await browser.get("/signin")
    let response = try await browser.post("/signin", [("email", email), ("password", password)])
    #expect(response.status == .seeOther, "sign in as \(email): \(response.status)")
    _ = try await browser.get("/account")
}

/// The newest link of a kind (`verify-email`, `reset-password`) in the outbox, for `email`.
func mailedToken(_ f: ServiceFixture, _ page: String, to email: String) throws -> String? {
    let message = try f.service.outbox().first { $0.recipient == email && $0.body.contains("/\(page)#token=") }
    guard let body = message?.body, let range = body.range(of: "#token=[A-Za-z0-9_-]+", options: .regularExpression) else { return nil }
    return String(body[range].dropFirst(7))
}

func refusedAsForged(_ response: TestResponse) -> Bool {
    response.status == .forbidden && response.text.contains("did not come from this site")
}

@Suite("The links in mail, forgot password, the account page's devices")
struct AccountPagesTests {
    @Test("verify email: the page loads one same-origin script; the code confirms once; bad, used or forged codes write nothing")
    func verifyEmail() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signup")
            #expect(try await browser.post("/signup", [("name", "Vera"), ("email", "verify@example.com"), ("password", "a long web passphrase")]).status == .seeOther)
            var account = try await browser.get("/account").text
            #expect(account.contains("Not confirmed yet") && account.contains(#"action="/account/verification""#))
            #expect(account.contains("<dt>Name</dt><dd>Vera</dd>"))
            // A reader who gave no name has no empty "Name" row.
            let nameless = Browser(client)
            _ = try await nameless.get("/signup")
            #expect(try await nameless.post("/signup", [("email", "nameless@example.com"), ("password", "a long web passphrase")]).status == .seeOther)
            #expect(!(try await nameless.get("/account").text.contains("<dt>Name</dt>")))
            let token = try #require(try mailedToken(f, "verify-email", to: "verify@example.com"))

            // The page: a form with a labelled code field, and the one script that reads the fragment.
            let page = try await browser.get("/verify-email")
            #expect(page.status == .ok)
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(page.text.contains(#"<script src="/static/link-token.js" defer></script>"#))
            #expect(page.text.contains(#"<label for="token">"#))
            #expect(!page.text.contains("<script>"), "no inline script")
            let script = try await browser.get("/static/link-token.js")
            #expect(script.status == .ok && script.text.contains("replaceState") && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            // Other pages still allow no script at all.
            #expect(try await browser.get("/").headers[.contentSecurityPolicy]?.contains("script-src") == false)

            // Refused forms, bad codes: nothing written, the link still unused.
            _ = try await browser.get("/verify-email")
            let before = try f.snapshot()
            #expect(refusedAsForged(try await browser.post("/verify-email", [("token", token)], csrf: .some(nil))))
            #expect(refusedAsForged(try await browser.post("/verify-email", [("token", token)], csrf: "forged")))
            let malformed = try await browser.post("/verify-email", [("token", "not a code <b>")])
            #expect(malformed.status == .unprocessableContent && malformed.text.contains("Paste the code"))
            #expect(malformed.text.contains(#"value="not a code &lt;b&gt;""#), "what was typed comes back, escaped, to be corrected")
            _ = try await browser.get("/verify-email")
            let unknown = try await browser.post("/verify-email", [("token", String(repeating: "A", count: 43))])
            #expect(unknown.status == .badRequest && unknown.text.contains("This link does not work"))
            #expect(try f.snapshot() == before)
            #expect(try f.service.account("verify@example.com").emailVerifiedAt == nil)

            // The whole link pasted works too; then the account says so; a second use fails.
            _ = try await browser.get("/verify-email")
            // (copied from the mail with the bracket that closed it)
            let confirmed = try await browser.post("/verify-email", [("token", "<http://localhost:8080/verify-email#token=\(token)>.")])
            #expect(confirmed.status == .ok && confirmed.text.contains("Your email address is confirmed"))
            #expect(try f.service.account("verify@example.com").emailVerifiedAt != nil)
            account = try await browser.get("/account").text
            #expect(account.contains("Confirmed") && !account.contains("Not confirmed yet") && !account.contains(#"action="/account/verification""#))
            _ = try await browser.get("/verify-email")
            #expect(try await browser.post("/verify-email", [("token", token)]).status == .badRequest)
        }
    }

    @Test("resend verification: a new link, the old one void; a forged form sends nothing")
    func resendVerification() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signup")
            #expect(try await browser.post("/signup", [("name", "Remy"), ("email", "resend@example.com"), ("password", "a long web passphrase")]).status == .seeOther)
            _ = try await browser.get("/account")
            let first = try #require(try mailedToken(f, "verify-email", to: "resend@example.com"))
            let mails = try f.service.outbox().count
            #expect(refusedAsForged(try await browser.post("/account/verification", [], csrf: .some(nil))))
            #expect(try f.service.outbox().count == mails)
            let sent = try await browser.post("/account/verification", [])
            #expect(sent.status == .seeOther && sent.headers[.location] == "/account?done=verification-sent")
            #expect(try f.service.outbox().count == mails + 1)
            #expect(try await browser.get("/account?done=verification-sent").text.contains("We have sent you a new confirmation link"))
            // Only the fixed notices: anything else in the query shows nothing.
            #expect(!(try await browser.get("/account?done=%3Cscript%3E").text.contains("&lt;script")))
            let second = try #require(try mailedToken(f, "verify-email", to: "resend@example.com"))
            #expect(first != second)
            #expect(throws: ServiceError.self) { try f.service.verifyEmail(token: first) }
            // Signed out: the form sends to sign in, nothing queued.
            let anonymous = Browser(client)
            _ = try await anonymous.get("/signin")
            #expect(try await anonymous.post("/account/verification", []).headers[.location] == "/signin?next=/account")
            #expect(try f.service.outbox().count == mails + 1)
        }
    }

    @Test("forgot password answers alike for known and unknown emails; the reset link sets the password once and signs every device out")
    func resetPassword() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            #expect(try await browser.get("/signin").text.contains(#"<a href="/forgot-password">Forgot your password?</a>"#))
            #expect(try await browser.get("/forgot-password").status == .ok)
            let mails = try f.service.outbox().count
            let known = try await browser.post("/forgot-password", [("email", "reader@example.com")])
            _ = try await browser.get("/forgot-password")
            let unknown = try await browser.post("/forgot-password", [("email", "nobody@example.com")])
            #expect(known.status == .ok && unknown.status == .ok)
            func answer(_ html: String) -> String {
                html.replacingOccurrences(of: #"name="csrf" value="[^"]+""#, with: "", options: .regularExpression)
                    .replacingOccurrences(of: "reader@example.com", with: "X").replacingOccurrences(of: "nobody@example.com", with: "X")
            }
            #expect(answer(known.text) == answer(unknown.text))
            #expect(known.text.contains("Check your mail"))
            #expect(try f.service.outbox().count == mails + 1)
            _ = try await browser.get("/forgot-password")
            let invalid = try await browser.post("/forgot-password", [("email", "not an address")])
            #expect(invalid.status == .unprocessableContent && invalid.text.contains("not an email address"))
            _ = try await browser.get("/forgot-password")
            #expect(refusedAsForged(try await browser.post("/forgot-password", [("email", "reader@example.com")], csrf: .some(nil))))
            #expect(try f.service.outbox().count == mails + 1)
            let token = try #require(try mailedToken(f, "reset-password", to: "reader@example.com"))

            // Reader signed in elsewhere: the reset ends that session.
            let other = Browser(client)
            try await signIn(other, "reader@example.com", "demo reader passphrase")

            let page = try await browser.get("/reset-password")
            #expect(page.status == .ok && page.text.contains("link-token.js") && page.text.contains(#"<label for="password">New password</label>"#))
            #expect(page.text.contains("Choose a new password") && page.text.contains(#"action="/reset-password""#) && page.text.contains("Ask for a new link"))
            let before = try f.snapshot()
            #expect(refusedAsForged(try await browser.post("/reset-password", [("token", token), ("password", "a brand new passphrase")], csrf: "forged")))
            _ = try await browser.get("/reset-password")
            let forged = try await browser.post("/reset-password", [("token", String(repeating: "B", count: 43)), ("password", "a brand new passphrase")])
            #expect(forged.status == .badRequest && forged.text.contains("This link does not work"))
            _ = try await browser.get("/reset-password")
            let weak = try await browser.post("/reset-password", [("token", token), ("password", "short")])
            #expect(weak.status == .unprocessableContent && weak.text.contains(#"value="\#(token)""#) && weak.text.contains(#"id="password-error""#))
            #expect(try f.snapshot() == before)
            #expect(try await other.get("/account").status == .ok, "nothing changed yet")

            _ = try await browser.get("/reset-password")
            let done = try await browser.post("/reset-password", [("token", token), ("password", "a brand new passphrase")])
            #expect(done.status == .ok && done.text.contains("Your password is changed") && done.text.contains("signed out"))
            #expect(try await other.get("/account").status == .seeOther, "the other device is signed out")
            _ = try await browser.get("/reset-password")
            #expect(try await browser.post("/reset-password", [("token", token), ("password", "another new passphrase")]).status == .badRequest)
            let fresh = Browser(client)
            try await signIn(fresh, "reader@example.com", "a brand new passphrase")
        }
    }

    @Test("undo an email change: the notice's link opens a page with the link script; a weak password keeps the code, a bad code writes nothing; then the address is back with the new password and every device is signed out; used once")
    func undoEmailChange() async throws {
        let f = try demoFixture()
        _ = try await f.service.markEmailVerified(account: "reader@example.com", method: "test", actor: f.admin)
        let id = try f.service.account("reader@example.com").id
        _ = try f.service.changeOwnEmail(accountID: id, password: "demo reader passphrase", newEmail: "moved@example.net", client: "test")
        let token = try #require(try mailedToken(f, "undo-email-change", to: "reader@example.com"))
        try await withSite(f) { client in
            let browser = Browser(client), other = Browser(client)
            try await signIn(other, "moved@example.net", "demo reader passphrase")
            let page = try await browser.get("/undo-email-change")
            #expect(page.status == .ok && page.text.contains("link-token.js") && page.text.contains("Put your email address back"))
            #expect(page.text.contains(#"action="/undo-email-change""#) && !page.text.contains("Ask for a new link"))
            let before = try f.snapshot()
            let weak = try await browser.post("/undo-email-change", [("token", token), ("password", "short")])
            #expect(weak.status == .unprocessableContent && weak.text.contains(#"value="\#(token)""#) && weak.text.contains(#"id="password-error""#))
            _ = try await browser.get("/undo-email-change")
            let forged = try await browser.post("/undo-email-change", [("token", String(repeating: "B", count: 43)), ("password", "a brand new passphrase")])
            #expect(forged.status == .badRequest && forged.text.contains("This link does not work"))
            _ = try await browser.get("/undo-email-change")
            #expect(refusedAsForged(try await browser.post("/undo-email-change", [("token", token), ("password", "a brand new passphrase")], csrf: "forged")))
            #expect(try f.snapshot() == before)

            _ = try await browser.get("/undo-email-change")
            let done = try await browser.post("/undo-email-change", [("token", token), ("password", "a brand new passphrase")])
            #expect(done.status == .ok && done.text.contains("Your email address is back") && done.text.contains("reader@example.com"), "\(done.text)")
            #expect(try await other.get("/account").status == .seeOther, "the other device is signed out")
            _ = try await browser.get("/undo-email-change")
            #expect(try await browser.post("/undo-email-change", [("token", token), ("password", "another new passphrase")]).status == .badRequest)
            try await signIn(Browser(client), "reader@example.com", "a brand new passphrase")
        }
    }

    @Test("a reset from a browser signed in to that account shows it signed out (its session ended too); one signed in to another account stays so")
    func resetWhileSignedIn() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let own = Browser(client), member = Browser(client)
            try await signIn(own, "reader@example.com", "demo reader passphrase")
            try await signIn(member, "member@example.com", "demo member passphrase")
            for (browser, password) in [(own, "a brand new passphrase"), (member, "another new passphrase")] {
                _ = try f.service.requestPasswordReset(email: "reader@example.com", client: "test")
                let token = try #require(try mailedToken(f, "reset-password", to: "reader@example.com"))
                _ = try await browser.get("/reset-password")
                let done = try await browser.post("/reset-password", [("token", token), ("password", password)])
                #expect(done.status == .ok && done.text.contains("Your password is changed"))
                if browser === own {
                    #expect(!done.text.contains(#"action="/signout""#) && done.text.contains(#"href="/signin""#), "drawn signed out")
                    #expect(await own.cookies["paywall_session"] == nil)
                } else {
                    #expect(done.text.contains(#"action="/signout""#), "the member is still signed in")
                    #expect(await member.cookies["paywall_session"] != nil)
                    #expect(try await member.get("/account").status == .ok)
                }
            }
        }
    }

    @Test("a browser in use counts as used: past the session cap an idle app's session ends, not the browser's, and the cookie lasts as long as the session")
    func browserInUse() async throws {
        let f = try ServiceFixture { $0.maximumSessions = 2 }
        _ = try f.service.loadDemoData(actor: f.admin)
        try await withSite(f) { client in
            let browser = Browser(client)
            try await signIn(browser, "reader@example.com", "demo reader passphrase")
            f.clock.advance(by: 60)
            _ = try f.service.signInReader(email: "reader@example.com", password: "demo reader passphrase", deviceName: "Phone", client: "test")
            // Reading on the web for days; the phone idle.
            f.clock.advance(by: 2 * 86_400)
            let page = try await browser.get("/account")
            #expect(page.status == .ok)
            let renewed = page.headers[values: .setCookie].first { $0.hasPrefix("paywall_session=") }
            #expect(renewed?.contains("Max-Age=2592000") == true, "the cookie moved on with the session: \(renewed ?? "none")")
            // Within the hour: no write, no cookie.
            f.clock.advance(by: 60)
            #expect(try await browser.get("/account").headers[values: .setCookie].allSatisfy { !$0.hasPrefix("paywall_session=") })
            let html = try await browser.get("/account").text
            #expect(html.range(of: #"Web browser[\s\S]*Phone"#, options: .regularExpression) != nil, "the browser listed as the most recently used")
            // A third sign-in: the phone goes, the browser stays.
            _ = try f.service.signInReader(email: "reader@example.com", password: "demo reader passphrase", deviceName: "Tablet", client: "test")
            #expect(try await browser.get("/account").status == .ok)
            let left = try f.service.profile(accountID: f.service.account("reader@example.com").id).sessions.map(\.deviceName)
            #expect(!left.contains("Phone") && left.contains("Tablet") && left.count == 2, "\(left)")
        }
    }

    @Test("the account page lists devices; sign out this device, only one's own; sign out everywhere")
    func sessions() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let phone = Browser(client), laptop = Browser(client), stranger = Browser(client)
            try await signIn(phone, "reader@example.com", "demo reader passphrase")
            try await signIn(laptop, "reader@example.com", "demo reader passphrase")
            try await signIn(stranger, "member@example.com", "demo member passphrase")
            let id = try f.service.account("reader@example.com").id
            let sessions = try f.service.profile(accountID: id).sessions
            #expect(sessions.count == 2)
            let html = try await laptop.get("/account").text
            #expect(html.components(separatedBy: "Sign out this device").count == 3)
            #expect(html.components(separatedBy: "This browser").count == 2)
            #expect(html.contains("Web browser") && html.contains("Last used"))
            #expect(html.contains("Sign out everywhere") && html.contains("Signed-in devices"))
            // Which one is the phone's: the one that is not marked "This browser" on the laptop.
            let phoneHTML = try await phone.get("/account").text
            let phoneSession = try #require(sessions.first { phoneHTML.range(of: #"This browser</span>[\s\S]*?name="session" value="\#($0.id)""#, options: .regularExpression) != nil })

            // Forged forms, someone else's session, an unknown one: nothing ends.
            _ = try await laptop.get("/account")
            let before = try f.snapshot()
            #expect(refusedAsForged(try await laptop.post("/account/sessions/revoke", [("session", phoneSession.id)], csrf: .some(nil))))
            #expect(refusedAsForged(try await laptop.post("/signout-everywhere", [], csrf: "forged")))
            let foreign = try await stranger.post("/account/sessions/revoke", [("session", phoneSession.id)])
            #expect(foreign.status == .notFound)
            _ = try await laptop.get("/account")
            #expect(try await laptop.post("/account/sessions/revoke", [("session", "nope")]).status == .notFound)
            #expect(try f.snapshot() == before)
            #expect(try f.service.profile(accountID: id).sessions.count == 2)

            // The laptop signs the phone out.
            _ = try await laptop.get("/account")
            let ended = try await laptop.post("/account/sessions/revoke", [("session", phoneSession.id)])
            #expect(ended.status == .seeOther && ended.headers[.location] == "/account?done=session-ended")
            #expect(try await phone.get("/account").status == .seeOther)
            #expect(await phone.cookies["paywall_session"] == nil)
            #expect(try await laptop.get("/account?done=session-ended").text.contains("That device is signed out."))
            // Sign out everywhere: the laptop too, and only this account.
            try await signIn(phone, "reader@example.com", "demo reader passphrase")
            _ = try await laptop.get("/account")
            let everywhere = try await laptop.post("/signout-everywhere", [])
            #expect(everywhere.status == .seeOther && everywhere.headers[.location] == "/")
            #expect(try await laptop.get("/account").status == .seeOther)
            #expect(try await phone.get("/account").status == .seeOther)
            #expect(try await stranger.get("/account").status == .ok)
        }
    }

    @Test("change password on the account page: wrong or weak refused in the form, nothing changed; then a new cookie here, the other device signed out")
    func changePassword() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let laptop = Browser(client), phone = Browser(client)
            try await signIn(laptop, "reader@example.com", "demo reader passphrase")
            try await signIn(phone, "reader@example.com", "demo reader passphrase")
            let page = try await laptop.get("/account").text
            #expect(page.contains(#"action="/account/password""#) && page.contains(#"autocomplete="current-password""#))
            let before = try f.snapshot()
            #expect(refusedAsForged(try await laptop.post("/account/password", [("currentPassword", "demo reader passphrase"), ("newPassword", "a new web passphrase")], csrf: "forged")))
            _ = try await laptop.get("/account")
            let wrong = try await laptop.post("/account/password", [("currentPassword", "not it at all"), ("newPassword", "a new web passphrase")])
            #expect(wrong.status == .unprocessableContent && wrong.text.contains("That is not your current password."), "\(wrong.status)")
            #expect(wrong.text.contains(#"id="currentPassword" name="currentPassword" type="password" autocomplete="current-password" required aria-describedby="currentPassword-error" aria-invalid="true""#))
            _ = try await laptop.get("/account")
            let weak = try await laptop.post("/account/password", [("currentPassword", "demo reader passphrase"), ("newPassword", "short")])
            #expect(weak.status == .unprocessableContent && weak.text.contains(#"id="newPassword-error""#))
            _ = try await laptop.get("/account")
            let empty = try await laptop.post("/account/password", [("currentPassword", ""), ("newPassword", "")])
            #expect(empty.status == .unprocessableContent && empty.text.contains("Enter your current password.") && empty.text.contains("Choose a new password."))
            let after = try f.snapshot()
            #expect(after["sessions"] == before["sessions"] && after["credentials"] == before["credentials"] && after["audit_log"] == before["audit_log"])
            #expect(try await phone.get("/account").status == .ok)

            _ = try await laptop.get("/account")
            let oldCookie = await laptop.cookies["paywall_session"]
            let changed = try await laptop.post("/account/password", [("currentPassword", "demo reader passphrase"), ("newPassword", "a new web passphrase")])
            #expect(changed.status == .seeOther && changed.headers[.location] == "/account?done=password-changed")
            let newCookie = await laptop.cookies["paywall_session"]
            #expect(newCookie != nil && newCookie != oldCookie)
            #expect(try await laptop.get("/account?done=password-changed").text.contains("Your password is changed."))
            #expect(try await phone.get("/account").status == .seeOther, "the other device is signed out")
            let fresh = Browser(client)
            try await signIn(fresh, "reader@example.com", "a new web passphrase")
        }
    }

    @Test("change email on the account page: taken, malformed or a wrong password refused in the form; then the new address waits for its link")
    func changeEmail() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            try await signIn(browser, "reader@example.com", "demo reader passphrase")
            let before = try f.snapshot()
            let refusals: [([(String, String)], HTTPResponse.Status, String)] = [
                ([("newEmail", "member@example.com"), ("password", "demo reader passphrase")], .conflict, "Another account uses that address."),
                ([("newEmail", "no address"), ("password", "demo reader passphrase")], .unprocessableContent, #"id="newEmail-error""#),
                ([("newEmail", "rita@new.example"), ("password", "wrong password")], .unprocessableContent, "That is not your password."),
                ([("newEmail", ""), ("password", "")], .unprocessableContent, "Enter the new email address."),
            ]
            for (fields, status, text) in refusals {
                _ = try await browser.get("/account")
                let reply = try await browser.post("/account/email", fields)
                #expect(reply.status == status && reply.text.contains(text), "\(fields): \(reply.status)")
                if !(fields.first?.1.isEmpty ?? true) {
                    #expect(reply.text.contains(#"value="\#(fields[0].1)""#), "what was typed is kept")
                }
            }
            let after = try f.snapshot()
            #expect(after["accounts"] == before["accounts"] && after["outbox"] == before["outbox"] && after["audit_log"] == before["audit_log"])

            _ = try await browser.get("/account")
            let changed = try await browser.post("/account/email", [("newEmail", "rita@new.example"), ("password", "demo reader passphrase")])
            #expect(changed.status == .seeOther && changed.headers[.location] == "/account?done=email-changed")
            let page = try await browser.get("/account?done=email-changed").text
            #expect(page.contains("rita@new.example") && page.contains("Not confirmed yet") && page.contains("We have sent a link to the new address"))
            #expect(try mailedToken(f, "verify-email", to: "rita@new.example") != nil)
            // Only the spelling: no link is sent, and the page does not say one was.
            _ = try await browser.get("/account")
            let respelt = try await browser.post("/account/email", [("newEmail", "Rita@New.example"), ("password", "demo reader passphrase")])
            #expect(respelt.status == .seeOther && respelt.headers[.location] == "/account?done=email-respelt")
            #expect(try await browser.get("/account?done=email-respelt").text.contains("Your email address is changed.</p>"))
        }
    }

    @Test("delete my account on the account page: the password and DELETE typed; refusals keep everything; then gone and signed out")
    func deleteAccount() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            try await signIn(browser, "reader@example.com", "demo reader passphrase")
            #expect(try await browser.get("/account").text.contains(#"action="/account/delete""#))
            let id = try f.service.account("reader@example.com").id
            let wrong = try await browser.post("/account/delete", [("password", "not it"), ("confirm", "DELETE")])
            #expect(wrong.status == .unprocessableContent && wrong.text.contains(#"id="deletePassword-error""#) && wrong.text.contains("That is not your password."))
            _ = try await browser.get("/account")
            let unconfirmed = try await browser.post("/account/delete", [("password", "demo reader passphrase"), ("confirm", "delete")])
            #expect(unconfirmed.status == .unprocessableContent && unconfirmed.text.contains(#"id="deleteConfirm-error""#))
            #expect(refusedAsForged(try await browser.post("/account/delete", [("password", "demo reader passphrase"), ("confirm", "DELETE")], csrf: "forged")))
            #expect((try? f.service.account("reader@example.com"))?.id == id, "kept after every refusal")

            // A subscription Stripe renews: refused, with what to do.
            let plan = try #require(try f.service.plans().first).id.rawValue
            _ = try await f.service.grantMembership(account: "reader@example.com", plan: plan, until: f.clock.now().addingTimeInterval(3_600), source: MembershipSource(rawValue: "stripe"), actor: .system)
            _ = try await browser.get("/account")
            let renewing = try await browser.post("/account/delete", [("password", "demo reader passphrase"), ("confirm", "DELETE")])
            #expect(renewing.status == .conflict && renewing.text.contains("cancel it there first"), "\(renewing.text)")
            f.clock.advance(by: 2 * 3_600)  // its period over: nothing renews

            _ = try await browser.get("/account")
            let deleted = try await browser.post("/account/delete", [("password", "demo reader passphrase"), ("confirm", " DELETE ")])
            #expect(deleted.status == .ok && deleted.text.contains("Your account is deleted"), "\(deleted.text)")
            #expect(!deleted.text.contains(#"action="/signout""#), "drawn signed out")
            #expect(await browser.cookies["paywall_session"] == nil)
            #expect(throws: ServiceError.self) { try f.service.account("reader@example.com") }
            #expect(try await browser.get("/account").status == .seeOther, "signed out: to the sign-in page")
        }
    }

    @Test("download my data on the account page: the password again; a JSON file of the reader's own data")
    func exportData() async throws {
        let f = try demoFixture()
        try await withSite(f) { client in
            let browser = Browser(client)
            try await signIn(browser, "reader@example.com", "demo reader passphrase")
            #expect(try await browser.get("/account").text.contains(#"action="/account/export""#))
            let wrong = try await browser.post("/account/export", [("password", "not it")])
            #expect(wrong.status == .unprocessableContent && wrong.text.contains(#"id="exportPassword-error""#) && wrong.text.contains("That is not your password."))
            #expect(refusedAsForged(try await browser.post("/account/export", [("password", "demo reader passphrase")], csrf: "forged")))
            _ = try await browser.get("/account")
            let file = try await browser.post("/account/export", [("password", "demo reader passphrase")])
            #expect(file.status == .ok && file.headers[.contentType] == "application/json; charset=utf-8")
            #expect(file.headers[.contentDisposition]?.hasPrefix(#"attachment; filename="paywall-data-"#) == true)
            let data = try #require(try JSONSerialization.jsonObject(with: Data(file.text.utf8)) as? [String: Any])
            #expect((data["account"] as? [String: Any])?["email"] as? String == "reader@example.com")
            #expect(!file.text.contains("member@example.com"))
        }
    }
}
