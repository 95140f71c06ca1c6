import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PaywallCore
import PaywallService
import PaywallViews

/// The pages behind the links in mail (verify an email, reset a password), "forgot your
/// password?", and the account page's session and mail forms.
///
/// The links carry their token in the URL fragment (`/verify-email#token=…`): a browser
/// never sends a fragment to the server (so it is in no access log) nor in a `Referer`. The
/// server therefore cannot read it: these two pages alone load one same-origin script
/// (`/static/link-token.js`, CSP `script-src 'self'`, nothing inline) that copies it into
/// the page's form and removes it from the address bar. Without scripts the form asks the
/// reader to paste the code from the mail (or the whole link): the token is only ever sent
/// in the body of a CSRF-protected POST.
extension WebSite {
    /// The CSP of the two link pages: the site's, plus this site's scripts.
    static let linkPageCSP =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// A link token as the reader pasted it: the code alone, or the whole link (anything up
    /// to `token=`). Nil when it cannot be one of ours (the service checks the rest).
    static func linkToken(_ raw: String?) -> String? {
        var text = (raw ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if let range = text.range(of: "token=", options: .backwards) { text = String(text[range.upperBound...]) }
        // A link copied with what followed it in the mail ("…token=abc>", "…abc.", "…abc)"):
        // no token character is punctuation, so what trails it is not the token's.
        while let last = text.unicodeScalars.last, !Cookies.isBase64URL(String(last)) { text.unicodeScalars.removeLast() }
        guard (16...ReaderLimits.token).contains(text.utf8.count), Cookies.isBase64URL(text) else { return nil }
        return text
    }

    /// What the reader typed in a code field, to show it again beside the error (escaped by
    /// the template) so it can be corrected rather than pasted again; nothing when it is
    /// longer than any link.
    static func typedToken(_ raw: String?) -> String {
        let text = (raw ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return text.utf8.count <= 2_048 ? text : ""
    }

    func linkPage(_ template: String, _ visit: Visit, status: HTTPResponse.Status = .ok, title: String, values: [String: Any]) -> Response {
        var values = values
        values["script"] = "/static/link-token.js"
        var response = page(template, visit, status: status, title: title, values: values)
        response.headers[.contentSecurityPolicy] = Self.linkPageCSP
        return response
    }

    // MARK: - Verify an email

    func verifyEmailPage(_ visit: Visit) -> Response {
        linkPage("verify-email", visit, title: "Confirm your email address", values: [:])
    }

    func verifyEmail(_ visit: Visit) async throws -> Response {
        guard let token = Self.linkToken(visit.form?["token"]) else {
            return linkPage("verify-email", visit, status: .unprocessableContent, title: "Confirm your email address", values: [
                "tokenError": "Paste the code from the mail (the part of the link after “token=”).", "token": Self.typedToken(visit.form?["token"]),
            ])
        }
        do {
            let account = try await service.blocking { service throws(ServiceError) in try service.verifyEmail(token: token) }
            return page("done", visit, title: "Email address confirmed", values: [
                "heading": "Your email address is confirmed", "message": "Thank you: \(account.email) is confirmed.",
                "link": visit.reader == nil ? "/signin" : "/account", "linkText": visit.reader == nil ? "Sign in" : "Your account",
            ])
        } catch {
            guard case .linkInvalid = error else { throw error }
            return linkExpired(visit, what: "confirmation", retry: "/account", retryText: "Ask for a new one from your account page")
        }
    }

    /// A link that did not work: an error page, and nothing was written.
    func linkExpired(_ visit: Visit, what: String, retry: String, retryText: String) -> Response {
        errorPage(
            visit, status: .badRequest, heading: "This link does not work",
            message: "This \(what) link is invalid, has expired, or was already used.", link: (retry, retryText))
    }

    // MARK: - Reset a password

    /// The two pages a mail link opens to choose a new password: a password reset, and
    /// putting back an address someone else changed (the link in the change's notice).
    enum PasswordLink {
        case reset, undoEmailChange

        var path: String { self == .reset ? "/reset-password" : "/undo-email-change" }
        var title: String { self == .reset ? "Choose a new password" : "Put your email address back" }
    }

    func resetPasswordPage(_ visit: Visit) -> Response {
        passwordLinkForm(.reset, visit, status: .ok, token: "", errors: [:])
    }

    func undoEmailChangePage(_ visit: Visit) -> Response {
        passwordLinkForm(.undoEmailChange, visit, status: .ok, token: "", errors: [:])
    }

    func passwordLinkForm(_ link: PasswordLink, _ visit: Visit, status: HTTPResponse.Status, token: String, errors: [String: String]) -> Response {
        var values: [String: Any] = [
            "token": token, "minimumLength": service.configuration.passwordPolicy.minimumLength, "action": link.path, "heading": link.title,
        ]
        switch link {
        case .reset:
            values["intro"] = "Every device signed in to your account will be signed out."
            values["button"] = "Set my new password"
            values["retry"] = true
        case .undoEmailChange:
            values["intro"] = "Your account gets back the address this link was mailed to. Whoever changed it had your password: choose a new one. Every device signed in to your account will be signed out."
            values["button"] = "Put my address back"
        }
        for (field, message) in errors { values[field + "Error"] = message }
        return linkPage("reset-password", visit, status: status, title: link.title, values: values)
    }

    func resetPassword(_ visit: Visit) async throws -> Response {
        try await usePasswordLink(.reset, visit)
    }

    func undoEmailChange(_ visit: Visit) async throws -> Response {
        try await usePasswordLink(.undoEmailChange, visit)
    }

    func usePasswordLink(_ link: PasswordLink, _ visit: Visit) async throws -> Response {
        let password = visit.form?["password"] ?? ""
        guard let token = Self.linkToken(visit.form?["token"]) else {
            return passwordLinkForm(link, visit, status: .unprocessableContent, token: Self.typedToken(visit.form?["token"]), errors: [
                "token": "Paste the code from the mail (the part of the link after “token=”).",
            ])
        }
        guard !password.isEmpty else {
            return passwordLinkForm(link, visit, status: .unprocessableContent, token: token, errors: ["password": "Choose a new password."])
        }
        let account: Account
        let ended: Int
        do {
            (account, ended) = try await service.blocking { service throws(ServiceError) in
                switch link {
                case .reset: try service.resetPassword(token: token, password: password)
                case .undoEmailChange: try service.revertEmail(token: token, password: password)
                }
            }
        } catch {
            switch error {
            case .linkInvalid where link == .reset: return linkExpired(visit, what: "password reset", retry: "/forgot-password", retryText: "Ask for a new link")
            case .linkInvalid:
                // Whoever changed the address also changed what the owner would sign in with.
                return errorPage(
                    visit, status: .badRequest, heading: "This link does not work",
                    message: "This undo link is invalid, has expired, or was already used. If someone else changed your account's address, write to the publisher's support from your address.")
            case .store(.duplicateEmail):
                return errorPage(
                    visit, status: .conflict, heading: "This address has another account now",
                    message: "Another account uses that address since, so it cannot be put back. Write to the publisher's support from it.")
            case .invalidInput(.weakPassword), .crypto:
                // The reader's own mistake: the form again, the code kept (it is theirs, on
                // a page no one caches).
                return passwordLinkForm(link, visit, status: .unprocessableContent, token: token, errors: ["password": Self.sentence(error.publicMessage)])
            default: throw error
            }
        }
        let signedOut = ended == 0 ? "" : "Every device that was signed in has been signed out. "
        // This browser signed in to that account: its session ended with the others, so the
        // page is drawn signed out (a header saying who is signed in, with a sign-out form
        // bound to the dead session, would 403). Signed in to another account: it stays.
        let thisAccount = visit.reader?.account.id == account.id
        var response = page("done", thisAccount ? drawnSignedOut(visit) : visit, title: link == .reset ? "Password changed" : "Email address put back", values: [
            "heading": link == .reset ? "Your password is changed" : "Your email address is back",
            "message": link == .reset
                ? signedOut + "Sign in with your new password."
                : "Your account's address is \(account.email) again, with your new password. " + signedOut + "Sign in with them.",
            "link": "/signin", "linkText": "Sign in",
        ])
        if thisAccount { response.setCookie(cookie(Cookies.session, "", maxAge: 0)) }
        return response
    }

    // MARK: - Forgot your password?

    func forgotPasswordPage(_ visit: Visit) -> Response {
        page("forgot-password", visit, title: "Forgot your password?", values: ["email": ""])
    }

    /// The same answer for a known and an unknown email (and for an address that already
    /// had its share of mail this hour): the page must not tell who has an account.
    func forgotPassword(_ visit: Visit) async throws -> Response {
        let email = visit.form?.text("email") ?? ""
        guard !email.isEmpty else {
            return page("forgot-password", visit, status: .unprocessableContent, title: "Forgot your password?", values: [
                "email": email, "emailError": "Enter your email address.",
            ])
        }
        let client = visit.clientKey
        do {
            _ = try await service.blocking { service throws(ServiceError) in try service.requestPasswordReset(email: email, client: client) }
        } catch {
            if case .tooManyResetRequests = error {
                return page("forgot-password", visit, status: .tooManyRequests, title: "Forgot your password?", values: [
                    "email": email, "emailError": Self.sentence(error.publicMessage),
                ])
            }
            // Only the address's form is judged, never whether it has an account.
            guard case .invalidInput = error else { throw error }
            return page("forgot-password", visit, status: .unprocessableContent, title: "Forgot your password?", values: [
                "email": email, "emailError": "That is not an email address.",
            ])
        }
        return page("done", visit, title: "Check your mail", values: [
            "heading": "Check your mail",
            "message": "If an account uses \(email), we have sent it a link to choose a new password. The link works once, within the hour.",
            "link": "/signin", "linkText": "Back to sign in",
        ])
    }

    // MARK: - The account page's forms

    /// Notices the account page shows after its own forms (a fixed set: the query names
    /// one, it cannot inject text).
    static let accountNotices = [
        "verification-sent": "We have sent you a new confirmation link. The previous one no longer works.",
        "session-ended": "That device is signed out.",
        "password-changed": "Your password is changed. Every other device has been signed out.",
        "email-changed": "Your email address is changed. We have sent a link to the new address to confirm it.",
        "email-respelt": "Your email address is changed.",
        "email-changed-unsent": "Your email address is changed. The link to confirm it could not be sent just now: use “Send me a new link”.",
    ]

    /// "Change your password": the current one and a new one. Every session ends; this
    /// browser gets a new one (a new cookie), the others sign in again.
    func changePassword(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        let current = visit.form?["currentPassword"] ?? ""
        let new = visit.form?["newPassword"] ?? ""
        var errors: [String: String] = [:]
        if current.isEmpty { errors["currentPasswordError"] = "Enter your current password." }
        if new.isEmpty { errors["newPasswordError"] = "Choose a new password." }
        guard errors.isEmpty else { return try await account(visit, status: .unprocessableContent, error: nil, fields: errors) }
        let id = reader.account.id
        let client = visit.clientKey
        let session: ReaderSession
        do {
            session = try await service.blocking { service throws(ServiceError) in
                try service.changeOwnPassword(accountID: id, currentPassword: current, newPassword: new, deviceName: Self.deviceName, client: client)
            }
        } catch {
            switch error {
            case .invalidCredentials, .crypto(.passwordTooLong):
                return try await account(visit, status: .unprocessableContent, error: nil, fields: ["currentPasswordError": "That is not your current password."])
            case .invalidInput(.weakPassword), .crypto:
                return try await account(visit, status: .unprocessableContent, error: nil, fields: ["newPasswordError": Self.sentence(error.publicMessage)])
            case .tooManyAttempts:
                return try await account(visit, status: .tooManyRequests, error: nil, fields: ["currentPasswordError": Self.sentence(error.publicMessage)])
            default: throw error
            }
        }
        return startSession(session, then: "/account?done=password-changed")
    }

    /// `visit` as a page drawn after its session ended (a reset, an undo, a deletion): no
    /// reader in the header, forms bound to no session. The caller clears the cookie.
    func drawnSignedOut(_ visit: Visit) -> Visit {
        var shown = visit
        shown.reader = nil
        shown.sessionToken = nil
        shown.sessionRenewedUntil = nil
        shown.csrfToken = csrf.token(seed: visit.csrfSeed, session: nil) ?? ""
        return shown
    }

    /// "Delete your account", with the password again and DELETE typed (as `DELETE /v1/me`:
    /// refused while a provider still renews a subscription). The page after is drawn
    /// signed out, and the session cookie cleared.
    func deleteAccount(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        let password = visit.form?["password"] ?? ""
        var fields: [String: String] = [:]
        if password.isEmpty { fields["deletePasswordError"] = "Enter your password." }
        if visit.form?["confirm"]?.trimmingCharacters(in: .whitespaces) != "DELETE" { fields["deleteConfirmError"] = "Type DELETE (in capitals) to confirm." }
        guard fields.isEmpty else { return try await account(visit, status: .unprocessableContent, error: nil, fields: fields) }
        let id = reader.account.id
        let client = visit.clientKey
        do {
            try await service.blocking { service throws(ServiceError) in try service.deleteOwnAccount(accountID: id, password: password, client: client) }
        } catch {
            switch error {
            case .invalidCredentials, .crypto(.passwordTooLong):
                return try await account(visit, status: .unprocessableContent, error: nil, fields: ["deletePasswordError": "That is not your password."])
            case .tooManyAttempts:
                return try await account(visit, status: .tooManyRequests, error: nil, fields: ["deletePasswordError": Self.sentence(error.publicMessage)])
            case .subscriptionActive:
                return try await account(visit, status: .conflict, error: Self.sentence(error.publicMessage))
            default: throw error
            }
        }
        var response = page("done", drawnSignedOut(visit), title: "Account deleted", values: [
            "heading": "Your account is deleted",
            "message": "Your account, devices, memberships and reading history are gone, and this browser is signed out. You may sign up again at any time; the free trial stays used.",
            "link": "/", "linkText": "Back to the articles",
        ])
        response.setCookie(cookie(Cookies.session, "", maxAge: 0))
        return response
    }

    /// "Download your data": everything stored about the reader, as the API's export (a
    /// JSON file), with the password again.
    func exportData(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        let password = visit.form?["password"] ?? ""
        guard !password.isEmpty else {
            return try await account(visit, status: .unprocessableContent, error: nil, fields: ["exportPasswordError": "Enter your password."])
        }
        let id = reader.account.id
        let client = visit.clientKey
        let file: (name: String, bytes: Data)
        do {
            file = try await service.blocking { service throws(ServiceError) in
                try AccountExportView.file(try service.exportOwnData(accountID: id, password: password, client: client), pretty: true)
            }
        } catch {
            switch error {
            case .invalidCredentials, .crypto(.passwordTooLong):
                return try await account(visit, status: .unprocessableContent, error: nil, fields: ["exportPasswordError": "That is not your password."])
            case .tooManyAttempts, .tooManyExports:
                return try await account(visit, status: .tooManyRequests, error: nil, fields: ["exportPasswordError": Self.sentence(error.publicMessage)])
            default: throw error
            }
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/json; charset=utf-8", .cacheControl: "private, no-store",
                .contentDisposition: #"attachment; filename="\#(file.name)""#,
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }

    /// "Change your email address": the new address and the password. The new address
    /// waits for its confirmation link; the old one is told.
    func changeEmail(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        let email = visit.form?.text("newEmail") ?? ""
        let password = visit.form?["password"] ?? ""
        var errors: [String: String] = [:]
        if email.isEmpty { errors["newEmailError"] = "Enter the new email address." }
        if password.isEmpty { errors["emailPasswordError"] = "Enter your password." }
        guard errors.isEmpty else { return try await account(visit, status: .unprocessableContent, error: nil, fields: errors.merging(["newEmail": email]) { $1 }) }
        let id = reader.account.id
        let client = visit.clientKey
        let changed: Account
        let delivery: MailDelivery?
        do {
            (changed, delivery) = try await service.blocking { service throws(ServiceError) in
                try service.changeOwnEmail(accountID: id, password: password, newEmail: email, client: client)
            }
        } catch {
            let field: String
            let status: HTTPResponse.Status
            switch error {
            case .invalidCredentials, .crypto(.passwordTooLong): (field, status) = ("emailPasswordError", .unprocessableContent)
            case .tooManyAttempts: (field, status) = ("emailPasswordError", .tooManyRequests)
            case .invalidInput: (field, status) = ("newEmailError", .unprocessableContent)
            case .store(.duplicateEmail), .store(.addressKept): (field, status) = ("newEmailError", .conflict)
            case .tooMuchMail, .tooManyEmailChanges: (field, status) = ("newEmailError", .tooManyRequests)
            default: throw error
            }
            let message = switch error {
            case .invalidCredentials, .crypto(.passwordTooLong): "That is not your password."
            case .store(.duplicateEmail), .store(.addressKept): "Another account uses that address."
            default: Self.sentence(error.publicMessage)
            }
            return try await account(visit, status: status, error: nil, fields: [field: message, "newEmail": email])
        }
        // Said as it is: a respelling sends nothing, and a link that could not be queued
        // was not sent.
        let respelt = EmailAddress(stored: reader.account.email).lookupKey == EmailAddress(stored: changed.email).lookupKey
        let notice = respelt ? "email-respelt" : delivery != nil ? "email-changed" : "email-changed-unsent"
        return redirect("/account?done=\(notice)")
    }

    func resendVerification(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        if reader.account.emailVerifiedAt != nil { return redirect("/account") }
        let id = reader.account.id
        do {
            _ = try await service.blocking { service throws(ServiceError) in try service.sendVerificationLink(accountID: id, actor: .account(id)) }
        } catch {
            guard case .tooMuchMail = error else { throw error }
            return try await account(visit, status: .tooManyRequests, error: "We have sent several mails to this address in the last hour. Please try again later.")
        }
        return redirect("/account?done=verification-sent")
    }

    /// "Sign out this device": ends one of the reader's own sessions (only theirs: the
    /// service looks the id up within their account). Ending this browser's own session
    /// signs it out.
    func revokeSession(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        let sessionID = visit.form?.text("session") ?? ""
        let id = reader.account.id
        let current = reader.session.familyID
        do {
            _ = try await service.blocking { service throws(ServiceError) in try service.revokeSession(id: sessionID, accountID: id, current: current) }
        } catch {
            guard case .store(.sessionNotFound) = error else { throw error }
            return try await account(visit, status: .notFound, error: "That device is not signed in (any more).")
        }
        if sessionID == reader.session.familyID {
            var response = redirect("/")
            response.setCookie(cookie(Cookies.session, "", maxAge: 0))
            return response
        }
        return redirect("/account?done=session-ended")
    }

    func signOutEverywhere(_ visit: Visit) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=/account") }
        let id = reader.account.id
        _ = try await service.blocking { service throws(ServiceError) in try service.signOutEverywhere(accountID: id) }
        var response = redirect("/")
        response.setCookie(cookie(Cookies.session, "", maxAge: 0))
        return response
    }

    /// "23 July 2025, 14:05 UTC".
    static func dateTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        return longDate(date) + String(format: ", %02d:%02d UTC", parts.hour ?? 0, parts.minute ?? 0)
    }
}
