import Foundation
import HTTPTypes
import HummingbirdTesting
import PaywallCore
@testable import PaywallHTTP
@testable import PaywallService
import PaywallTestSupport
import Testing

/// `POST /v1/me/password` and `POST /v1/me/email`: a signed-in reader changes what they
/// sign in with, with their password again.
@Suite("A reader changes their password and email address over HTTP")
struct AccountChangeTests {
    /// What a refused change must leave as it was (the sign-in throttle's own rows aside:
    /// a wrong password is counted, as at sign-in).
    static func unchanged(_ before: [String: Int], _ after: [String: Int]) -> Bool {
        ["accounts", "credentials", "sessions", "audit_log", "outbox", "email_links"].allSatisfy { before[$0] == after[$0] }
    }

    @Test("password: the current one again; refusals change nothing; then every session ends, this device gets a new one, the old password opens nothing", arguments: TestBackend.all)
    func changePassword(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let laptop = try await client.signIn("reader@example.com", deviceName: "Laptop")
            let phone = try await client.signIn("reader@example.com", deviceName: "Phone")
            let access = try phone.string("accessToken")
            let before = try f.snapshot()
            let hashBefore = try f.service.store.passwordHash(accountID: f.service.account("reader@example.com").id)
            let refusals: [([String: Any], String?, HTTPResponse.Status, String)] = [
                (["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase"], nil, .unauthorized, "token_required"),
                (["currentPassword": "not my password", "newPassword": "a brand new passphrase"], access, .unauthorized, "invalid_credentials"),
                (["currentPassword": "correct horse battery", "newPassword": "short"], access, .badRequest, "weak_password"),
                (["currentPassword": "correct horse battery", "newPassword": "correct horse battery"], access, .badRequest, "weak_password"),
                (["currentPassword": "correct horse battery", "newPassword": "my reader@example.com pw"], access, .badRequest, "weak_password"),
                (["currentPassword": "correct horse battery"], access, .badRequest, "missing_field"),
                (["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase", "extra": 1], access, .badRequest, "unknown_field"),
                (["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase", "deviceName": String(repeating: "x", count: 65)], access, .badRequest, "invalid_name"),
            ]
            for (body, token, status, code) in refusals {
                let reply = try await client.json("/v1/me/password", body, token: token)
                #expect(reply.status == status && reply.errorCode == code, "\(body): \(reply.status) \(reply.text)")
            }
            #expect(Self.unchanged(before, try f.snapshot()))
            #expect(try f.service.store.passwordHash(accountID: f.service.account("reader@example.com").id) == hashBefore)
            // The same password as before still refreshes both sessions' tokens (nothing ended).
            let stillLaptop = try await client.json("/v1/sessions/refresh", ["refreshToken": try laptop.string("refreshToken")])
            #expect(stillLaptop.status == .ok, "\(stillLaptop.text)")

            let changed = try await client.json(
                "/v1/me/password", ["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase", "deviceName": "Phone"], token: access)
            #expect(changed.status == .ok, "\(changed.text)")
            #expect(changed.headers[.cacheControl]?.contains("no-store") == true)
            let object = try changed.object()
            #expect(object["signedOutSessions"] as? Int == 2, "\(changed.text)")
            #expect((object["session"] as? [String: Any])?["deviceName"] as? String == "Phone")
            for old in [try stillLaptop.string("refreshToken"), try phone.string("refreshToken")] {
                #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": old]).errorCode == "session_rejected")
            }
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try changed.string("refreshToken")]).status == .ok)
            #expect(try await client.signIn("reader@example.com").status == .unauthorized)
            #expect(try await client.signIn("reader@example.com", password: "a brand new passphrase").status == .created)
            let audit = try f.service.store.auditEntries(target: "account:\(f.service.account("reader@example.com").id)", limit: 20).map(\.action)
            #expect(audit.contains("account.change-password") && audit.contains("session.revoke-all"), "\(audit)")
            let notices = try f.service.outbox().filter { $0.subject == "Your password was changed" }
            #expect(notices.map(\.recipient) == ["reader@example.com"], "the address is told, once")
            #expect(notices.first?.body.contains("forgot-password") == true)
        }
    }

    @Test("password: wrong current passwords are throttled on the account's own budget; past it 429, even with the right one; signing in is not held back by them", arguments: TestBackend.all)
    func changePasswordThrottled(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.signInThrottle.accountFree = 2 }
        try await withAPI(f) { client in
            let access = try await client.signIn("reader@example.com").string("accessToken")
            // Two free failures, a third that makes the next attempt wait a second.
            for _ in 0..<3 {
                let wrong = try await client.json("/v1/me/password", ["currentPassword": "a wrong guess", "newPassword": "a brand new passphrase"], token: access)
                #expect(wrong.errorCode == "invalid_credentials")
            }
            let right = try await client.json("/v1/me/password", ["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase"], token: access)
            #expect(right.status == .tooManyRequests && right.errorCode == "too_many_attempts", "\(right.text)")
            #expect(right.headers[.retryAfter] == "1")
            // A budget of its own (`reauth:` and the account's id), not the email's: whoever
            // holds a session cannot lock its owner out of signing in, nor a stranger at the
            // sign-in form the owner out of its settings.
            #expect(try await client.signIn("reader@example.com").status == .created, "the password is unchanged")
            f.clock.advance(by: 2)
            let later = try await client.json("/v1/me/password", ["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase"], token: access)
            #expect(later.status == .ok || later.status == .noContent, "\(later.text)")
        }
    }

    @Test("email: the password again; taken, malformed and unchanged addresses refused with nothing written; then the new address unconfirmed with its link, the old one told and its links dead", arguments: TestBackend.all)
    func changeEmail(backend: TestBackend) async throws {
        let mail = try FakeSendmail()
        let f = try readerFixture(mail: mail, backend: backend)
        try await withAPI(f) { client in
            let signedUp = try await client.signUp("rita@example.com")
            #expect(try await client.json("/v1/email/verify", ["token": try mail.token("verify-email")]).status == .ok)
            let access = try signedUp.string("accessToken")
            #expect(try await client.post("/v1/trials", nil, token: access, contentType: nil).status == .created)
            // A reset link in the old mailbox: it must die with the change.
            _ = try await client.json("/v1/password/forgot", ["email": "rita@example.com"])
            let resetToken = try mail.token("reset-password")

            let before = try f.snapshot()
            let refusals: [([String: Any], String?, HTTPResponse.Status, String)] = [
                (["password": "a long enough passphrase", "email": "rita@new.example"], nil, .unauthorized, "token_required"),
                (["password": "not my password", "email": "rita@new.example"], access, .unauthorized, "invalid_credentials"),
                (["password": "a long enough passphrase", "email": "reader@example.com"], access, .conflict, "email_taken"),
                (["password": "a long enough passphrase", "email": "READER@example.com"], access, .conflict, "email_taken"),
                (["password": "a long enough passphrase", "email": "not an address"], access, .badRequest, "invalid_email"),
                (["password": "a long enough passphrase", "email": "rita@example.com"], access, .badRequest, "invalid_email"),
                (["password": "a long enough passphrase"], access, .badRequest, "missing_field"),
                (["password": "a long enough passphrase", "email": "rita@new.example", "name": "R"], access, .badRequest, "unknown_field"),
            ]
            for (body, token, status, code) in refusals {
                let reply = try await client.json("/v1/me/email", body, token: token)
                #expect(reply.status == status && reply.errorCode == code, "\(body): \(reply.status) \(reply.text)")
            }
            #expect(Self.unchanged(before, try f.snapshot()))
            #expect(try f.service.account("rita@example.com").emailVerifiedAt != nil)
            let mailsBefore = mail.messages().count

            let changed = try await client.json("/v1/me/email", ["password": "a long enough passphrase", "email": "Rita@New.example"], token: access)
            #expect(changed.status == .ok, "\(changed.text)")
            #expect(try changed.string("account", "email") == "Rita@New.example")
            #expect(try (changed.object()["account"] as? [String: Any])?["emailVerified"] as? Bool == false, "\(changed.text)")
            #expect(try changed.string("verificationMail") == "queued")

            let messages = mail.messages()
            #expect(messages.count == mailsBefore + 2, "the notice and the link")
            let notice = try #require(messages.first { $0.contains("Subject: Your email address was changed") })
            #expect(notice.contains("To: rita@example.com") && notice.contains("R•••@New.example") && !notice.contains("Rita@New.example"), "\(notice)")
            let link = try #require(messages.last { $0.contains("/verify-email#token=") })
            #expect(link.contains("To: Rita@New.example"), "\(link)")

            #expect(try await client.json("/v1/password/reset", ["token": resetToken, "password": "a brand new passphrase"]).errorCode == "link_invalid")
            #expect(try await client.signIn("rita@example.com", password: "a long enough passphrase").status == .unauthorized)
            #expect(try await client.signIn("rita@new.example", password: "a long enough passphrase").status == .created)
            // The old address is free for another account; the trial stays this account's.
            let me = try await client.call("/v1/me", method: .get, token: access)
            #expect(try (me.object()["trialEligible"] as? Bool) == false, "\(me.text)")

            // The new address confirmed by its link; then respelt: still confirmed, no mail.
            #expect(try await client.json("/v1/email/verify", ["token": try mail.token("verify-email")]).status == .ok)
            let mailsNow = mail.messages().count
            // (An hour on: the refusals above and the change took this hour's three changes,
            // and a respelling is one too.)
            f.clock.advance(by: 3_601)
            let fresh = try await client.signIn("rita@new.example", password: "a long enough passphrase").string("accessToken")
            let respelt = try await client.json("/v1/me/email", ["password": "a long enough passphrase", "email": "rita@new.example"], token: fresh)
            #expect(try respelt.status == .ok && respelt.object()["verificationMail"] == nil, "\(respelt.text)")
            #expect(try (respelt.object()["account"] as? [String: Any])?["emailVerified"] as? Bool == true)
            #expect(mail.messages().count == mailsNow)
            let audit = try f.service.store.auditEntries(target: "account:\(f.service.account("rita@new.example").id)", limit: 50)
                .filter { $0.action == "account.change-email" }
            #expect(audit.count == 2 && audit.last?.details.contains("rita@example.com") == true, "\(audit)")
        }
    }

    /// The token of the newest undo link mailed to `email` (the notice of an email change).
    static func undoToken(_ f: ServiceFixture, to email: String) throws -> String? {
        let notice = try f.service.outbox().last { $0.recipient == email && $0.subject == "Your email address was changed" }
        guard let body = notice?.body, let range = body.range(of: "/undo-email-change#token=[A-Za-z0-9_-]+", options: .regularExpression) else { return nil }
        return String(body[range].split(separator: "=").last ?? "")
    }

    @Test("email: a confirmed old address gets a link that puts it back (confirmed), with a new password, ending every session and access token; it outlives later changes; refusals write nothing; single use", arguments: TestBackend.all)
    func undoEmailChange(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        _ = try await f.service.markEmailVerified(account: "reader@example.com", method: "test", actor: f.admin)
        try await withAPI(f) { client in
            // Someone with a session and the password moves the account away, twice.
            let taker = try await client.signIn("reader@example.com").string("accessToken")
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "taker@evil.example"], token: taker).status == .ok)
            let token = try #require(try Self.undoToken(f, to: "reader@example.com"))
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "taker2@evil.example"], token: taker).status == .ok)
            #expect(try Self.undoToken(f, to: "taker@evil.example") == nil, "a never confirmed address gets no link back")
            let ownerSession = try await client.signIn("taker2@evil.example")
            let hashBefore = try f.service.store.passwordHash(accountID: try f.service.account("taker2@evil.example").id)
            // While the link lives, the address is the account's to take back: no one else may
            // take it, and no one is told which account keeps it.
            let keptReply = try await client.signUp("reader@example.com")
            let keeper = try f.service.account("taker2@evil.example").id.rawValue
            #expect(keptReply.errorCode == "email_taken" && !keptReply.text.contains(keeper), "\(keptReply.text)")
            #expect(try f.service.store.auditEntries(target: "account:\(keeper)", limit: 50).contains {
                $0.action == "account.change-email" && $0.details.contains("undoUntil")
            }, "the undo link's issue is audited")
            let other = try await client.signIn("member@example.com").string("accessToken")
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "Reader@example.com"], token: other).errorCode == "email_taken")

            let before = try f.snapshot()
            let refusals: [([String: Any], HTTPResponse.Status, String)] = [
                (["token": String(repeating: "A", count: 43), "password": "my own passphrase again"], .badRequest, "link_invalid"),
                (["token": token, "password": "short"], .badRequest, "weak_password"),
                (["token": token, "password": "my reader@example.com pw"], .badRequest, "weak_password"),
                (["token": token], .badRequest, "missing_field"),
                (["token": token, "password": "my own passphrase again", "email": "x@example.com"], .badRequest, "unknown_field"),
                (["token": String(repeating: "A", count: 300), "password": "my own passphrase again"], .badRequest, "link_invalid"),
            ]
            for (body, status, code) in refusals {
                let reply = try await client.json("/v1/email/revert", body, token: nil)
                #expect(reply.status == status && reply.errorCode == code, "\(body): \(reply.status) \(reply.text)")
            }
            #expect(try f.snapshot() == before, "refusals write nothing")
            let id = try f.service.account("taker2@evil.example").id
            #expect(try f.service.store.passwordHash(accountID: id) == hashBefore && (try f.service.store.signOutsEverywhere(accountID: id)) == 0)

            let reverted = try await client.json("/v1/email/revert", ["token": token, "password": "my own passphrase again"], token: nil)
            #expect(reverted.status == .ok, "\(reverted.text)")
            #expect(try reverted.string("account", "email") == "reader@example.com")
            #expect(try (reverted.object()["account"] as? [String: Any])?["emailVerified"] as? Bool == true)
            #expect(try reverted.object()["endedSessions"] as? Int == 2)
            #expect(try await client.call("/v1/me", method: .get, token: taker).errorCode == "invalid_token", "the taker's access token ends")
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try ownerSession.string("refreshToken")]).errorCode == "session_rejected")
            #expect(try await client.signIn("taker2@evil.example", password: "correct horse battery").status == .unauthorized)
            #expect(try await client.signIn("reader@example.com", password: "correct horse battery").status == .unauthorized, "the old password is gone")
            #expect(try await client.signIn("reader@example.com", password: "my own passphrase again").status == .created)
            #expect(try await client.json("/v1/email/revert", ["token": token, "password": "yet another passphrase"]).errorCode == "link_invalid", "single use")
            #expect(try f.service.store.auditEntries(target: "account:\(id)", limit: 50).contains { $0.action == "account.revert-email" })
            let told = try f.service.outbox().filter { $0.subject == "Your email address was changed back" }
            #expect(told.map(\.recipient) == ["taker2@evil.example"] && told.first?.body.contains("r•••@example.com") == true, "the replaced address is told")
        }
    }

    @Test("email: the oldest address wins: after A→B (confirmed)→C, B's link does not void A's, and A's voids B's", arguments: TestBackend.all)
    func undoOldestWins(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        _ = try await f.service.markEmailVerified(account: "reader@example.com", method: "test", actor: f.admin)
        try await withAPI(f) { client in
            let access = try await client.signIn("reader@example.com").string("accessToken")
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "b@evil.example"], token: access).status == .ok)
            let first = try #require(try Self.undoToken(f, to: "reader@example.com"))
            _ = try await f.service.markEmailVerified(account: "b@evil.example", method: "test", actor: f.admin)
            f.clock.advance(by: 60)
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "c@evil.example"], token: access).status == .ok)
            let second = try #require(try Self.undoToken(f, to: "b@evil.example"))
            #expect(try await client.json("/v1/email/revert", ["token": second, "password": "the taker's passphrase"]).status == .ok)
            #expect(try f.service.account("b@evil.example").email == "b@evil.example")
            let back = try await client.json("/v1/email/revert", ["token": first, "password": "the owner's passphrase"])
            #expect(back.status == .ok, "the owner's link outlives the later one's use: \(back.text)")
            #expect(try await client.signIn("reader@example.com", password: "the owner's passphrase").status == .created)
            #expect(try await client.signIn("b@evil.example", password: "the taker's passphrase").status == .unauthorized)
        }
    }

    @Test("email: the undo link lives a week, keeping the address from others until then; support's changes offer none", arguments: TestBackend.all)
    func undoLifetime(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        _ = try await f.service.markEmailVerified(account: "reader@example.com", method: "test", actor: f.admin)
        _ = try await f.service.markEmailVerified(account: "trial@example.com", method: "test", actor: f.admin)
        try await withAPI(f) { client in
            let access = try await client.signIn("reader@example.com").string("accessToken")
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "moved@example.net"], token: access).status == .ok)
            let token = try #require(try Self.undoToken(f, to: "reader@example.com"))
            f.clock.advance(by: 7 * 86_400 - 1)
            #expect(try await client.signUp("reader@example.com").errorCode == "email_taken", "kept to the last second")
            f.clock.advance(by: 2)
            #expect(try await client.json("/v1/email/revert", ["token": token, "password": "my own passphrase again"]).errorCode == "link_invalid")
            #expect(try await client.signUp("reader@example.com").status == .created, "free once the link has died")
            #expect(try f.service.account("moved@example.net").email == "moved@example.net")

            _ = try f.service.changeEmail(account: "trial@example.com", to: "trial@new.example", confirmed: true, actor: f.admin)
            let notice = try #require(try f.service.outbox().last { $0.recipient == "trial@example.com" && $0.subject == "Your email address was changed" })
            #expect(!notice.body.contains("undo-email-change") && notice.body.contains("support"), "\(notice.body)")

            // Support moving a reader voids the undo links of the reader's own earlier changes:
            // whoever holds a mailbox the reader left must not take the account back.
            let trialAccess = try await client.signIn("trial@new.example").string("accessToken")
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "trial@third.example"], token: trialAccess).status == .ok)
            let earlier = try #require(try Self.undoToken(f, to: "trial@new.example"))
            _ = try f.service.changeEmail(account: "trial@third.example", to: "trial@safe.example", confirmed: true, actor: f.admin)
            #expect(try await client.json("/v1/email/revert", ["token": earlier, "password": "someone else's passphrase"]).errorCode == "link_invalid")
            #expect(try await client.signUp("trial@new.example").status == .created, "the address is free again")
        }
    }

    @Test("email: a link used at the same moment twice puts the address back once", arguments: TestBackend.all)
    func undoOnce(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        _ = try await f.service.markEmailVerified(account: "reader@example.com", method: "test", actor: f.admin)
        let id = try f.service.account("reader@example.com").id
        _ = try f.service.changeOwnEmail(accountID: id, password: "correct horse battery", newEmail: "moved@example.net", client: "test")
        let token = try #require(try Self.undoToken(f, to: "reader@example.com"))
        let service = f.service
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<4 {
                group.addTask {
                    (try? await service.blocking { service throws(ServiceError) in try service.revertEmail(token: token, password: "passphrase number \(index)") }) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1, "\(outcomes)")
        #expect(try f.service.store.auditEntries(target: "account:\(id)", limit: 50).filter { $0.action == "account.revert-email" }.count == 1)
    }

    @Test("export: the mail listed is the account's own, to whichever address it had; not an earlier holder's of its address; links pending with what they do", arguments: TestBackend.all)
    func exportMailOwnership(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        _ = try await f.service.markEmailVerified(account: "reader@example.com", method: "test", actor: f.admin)
        // The first holder of an address gets mail there, then leaves the address.
        _ = try await f.service.requestPasswordReset(email: "member@example.com")
        // Sent (mail not sent yet goes with a deleted account; sent mail stays, detached).
        for message in try f.service.store.claimMail(limit: 10, lease: 60) where message.recipient == "member@example.com" {
            try f.service.store.markMailSent(id: message.id)
        }
        _ = try f.service.changeEmail(account: "member@example.com", to: "member@elsewhere.example", confirmed: true, actor: f.admin)
        _ = try await f.service.deleteAccount("member@elsewhere.example", actor: f.admin)
        #expect(try f.service.outbox().contains { $0.recipient == "member@example.com" })
        // The reader moves to it and exports.
        let id = try f.service.account("reader@example.com").id
        _ = try f.service.changeOwnEmail(accountID: id, password: "correct horse battery", newEmail: "member@example.com", client: "test")
        let export = try f.service.exportOwnData(accountID: id, password: "correct horse battery", client: "test")
        #expect(export.mail.map(\.subject).sorted() == ["Confirm your email address", "Your email address was changed"], "\(export.mail.map(\.subject))")
        #expect(export.mail.contains { $0.recipient == "reader@example.com" }, "the notice to the old address is the reader's too")
        #expect(export.mail.allSatisfy { $0.body.isEmpty })
        #expect(!export.mail.contains { $0.subject == "Reset your password" }, "the earlier holder's mail is not the reader's")
        let purposes = export.pendingLinks.map(\.purpose).sorted()
        #expect(purposes == ["undo-email-change", "verify-email"], "\(purposes)")
        #expect(export.pendingLinks.first { $0.purpose == "undo-email-change" }?.restores == "reader@example.com")
    }

    @Test("the limits of email changes and exports are the store's: two servers (or a restart) share one budget per account", arguments: TestBackend.all)
    func limitsShared(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let other = try f.another()
        let id = try f.service.account("reader@example.com").id
        for server in [f.service, other, f.service] {
            _ = try server.exportOwnData(accountID: id, password: "correct horse battery", client: "test")
        }
        #expect(throws: ServiceError.tooManyExports(retryAfter: 3_600)) { try other.exportOwnData(accountID: id, password: "correct horse battery", client: "test") }
        do {
            _ = try other.exportOwnData(accountID: id, password: "correct horse battery", client: "test")
            Issue.record("a fourth export within the hour, on another server")
        } catch {
            guard case let .tooManyExports(wait) = error else { Issue.record("\(error)"); return }
            #expect(wait > 0 && wait <= 3_600)
        }
        for (server, address) in [(other, "one@example.net"), (f.service, "two@example.net"), (other, "three@example.net")] {
            let current = try server.account(id.rawValue).email
            _ = try server.changeOwnEmail(accountID: id, password: "correct horse battery", newEmail: address, client: "test-\(current)")
        }
        let restarted = try f.another()
        #expect(throws: ServiceError.tooManyEmailChanges(retryAfter: 3_600)) {
            try restarted.changeOwnEmail(accountID: id, password: "correct horse battery", newEmail: "four@example.net", client: "test")
        }
        f.clock.advance(by: 3_600)
        #expect(try restarted.changeOwnEmail(accountID: id, password: "correct horse battery", newEmail: "four@example.net", client: "test").0.email == "four@example.net")
        #expect(try f.service.exportOwnData(accountID: id, password: "correct horse battery", client: "test").account.id == id, "an export refilled meanwhile")
    }

    @Test("email: a new address that had its share of mail this hour is refused (429 too_much_mail) before anything is written", arguments: TestBackend.all)
    func changeEmailMailBudget(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.mailsPerAddressPerHour = 2 }
        try await withAPI(f) { client in
            let access = try await client.signIn("reader@example.com").string("accessToken")
            let body: [String: Any] = ["password": "correct horse battery", "email": "elsewhere@example.com"]
            #expect(try await client.json("/v1/me/email", body, token: access).status == .ok)
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "reader@example.com"], token: access).status == .ok)
            let before = try f.snapshot()
            let again = try await client.json("/v1/me/email", body, token: access)
            #expect(again.status == .tooManyRequests && again.errorCode == "too_much_mail", "\(again.text)")
            #expect(Self.unchanged(before, try f.snapshot()))
            #expect(try f.service.account("reader@example.com").email == "reader@example.com")
            // The old address is told even though it was never confirmed.
            let told = try f.service.outbox().filter { $0.subject == "Your email address was changed" }.map(\.recipient)
            #expect(told.sorted() == ["elsewhere@example.com", "reader@example.com"], "\(told)")
        }
    }

    @Test("email: three changes, then 429 too_many_email_changes with Retry-After until an hour has passed", arguments: TestBackend.all)
    func changeEmailLimit(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let access = try await client.signIn("reader@example.com").string("accessToken")
            for address in ["a@example.net", "b@example.net", "c@example.net"] {
                #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": address], token: access).status == .ok)
            }
            let before = try f.snapshot()
            let fourth = try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "d@example.net"], token: access)
            #expect(fourth.status == .tooManyRequests && fourth.errorCode == "too_many_email_changes", "\(fourth.text)")
            #expect(Int(fourth.headers[.retryAfter] ?? "") ?? 0 > 0)
            #expect(Self.unchanged(before, try f.snapshot()))
            // Only the spelling counts too: mail is budgeted per spelling, and free
            // respellings gave a fresh budget into one inbox each time.
            let respelt = try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "C@example.net"], token: access)
            #expect(respelt.status == .tooManyRequests && respelt.errorCode == "too_many_email_changes", "\(respelt.text)")
            f.clock.advance(by: 3_601)
            let again = try await client.signIn("c@example.net").string("accessToken")
            #expect(try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "C@example.net"], token: again).status == .ok)
            // (That was the hour's refill: one change an hour once the three are spent.)
            f.clock.advance(by: 3_601)
            let later = try await client.signIn("c@example.net").string("accessToken")
            let last = try await client.json("/v1/me/email", ["password": "correct horse battery", "email": "d@example.net"], token: later)
            #expect(last.status == .ok, "\(last.text)")
        }
    }

    @Test("export after a deletion: the trial an earlier account at the address took is in it once the address is confirmed, as why no new one starts", arguments: TestBackend.all)
    func exportEarlierTrial(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let first = try await client.signUp("again@example.com").string("accessToken")
            #expect(try await client.post("/v1/trials", nil, token: first, contentType: nil).status == .created)
            _ = try f.service.deleteAccount("again@example.com", actor: .admin("support"))
            let second = try await client.signUp("again@example.com").string("accessToken")
            // Not before the address is confirmed: anyone may sign up at it.
            let unconfirmed = try await client.json("/v1/me/export", ["password": "a long enough passphrase"], token: second)
            let unconfirmedData = try unconfirmed.object()
            #expect(unconfirmed.status == .ok && unconfirmedData["earlierTrial"] == nil, "\(unconfirmed.text)")
            _ = try await f.service.markEmailVerified(account: "again@example.com", method: "test", actor: f.admin)
            let exported = try await client.json("/v1/me/export", ["password": "a long enough passphrase"], token: second)
            #expect(exported.status == .ok, "\(exported.text)")
            let data = try exported.object()
            #expect(data["trial"] == nil)
            #expect((data["earlierTrial"] as? [String: Any])?["status"] as? String == "active", "\(exported.text)")
        }
    }

    @Test("export: the password again; everything stored about the reader and nothing of anyone else's, as a file; audited; refusals write nothing", arguments: TestBackend.all)
    func exportData(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let signedIn = try await client.signIn("reader@example.com", deviceName: "Phone")
            let access = try signedIn.string("accessToken")
            for article in ["a1", "a2"] { #expect(try await client.access(article: article, token: access).status == .ok) }
            let other = try await client.signIn("member@example.com").string("accessToken")
            #expect(try await client.access(title: "the-daily", article: "someone-elses", token: other).status == .ok)
            #expect(try await client.post("/v1/trials", nil, token: access, contentType: nil).status == .created)
            // A member of staff looked at the account: the reader learns that staff did, not who, nor with what token.
            let id = try f.service.account("reader@example.com").id.rawValue
            try f.service.store.recordAudit(actor: .admin("alice.smith"), action: "admin.account.view", target: "account:\(id)", details: ["jti": "tok-4711"])
            // Mail to the reader: a reset link waiting (its token must not appear), and mail to someone else.
            #expect(try await client.json("/v1/password/forgot", ["email": "reader@example.com"]).status == .ok)
            #expect(try await client.json("/v1/password/forgot", ["email": "member@example.com"]).status == .ok)
            // A device signed in and out again: an ended session.
            let tablet = try await client.signIn("reader@example.com", deviceName: "Tablet")
            #expect(try await client.json("/v1/sessions/sign-out", ["refreshToken": try tablet.string("refreshToken")]).status == .ok)
            let resetBody = try #require(try f.service.outbox().last { $0.recipient == "reader@example.com" }?.body)
            let resetToken = String(resetBody[try #require(resetBody.range(of: "#token=[A-Za-z0-9_-]+", options: .regularExpression))].dropFirst(7))

            // Staff granted a membership with a note naming another reader; the reader read an
            // article through someone's gift link.
            _ = try f.service.store.grantMembership(
                accountID: AccountID(rawValue: id), planID: PlanID(rawValue: "news"), periodEnd: f.clock.now().addingTimeInterval(86_400),
                source: .admin, actor: .admin("alice.smith"), reason: "asked by bob@other.example")
            let giver = try f.service.account("member@example.com").id
            let gift = Gift(id: "gift-77", accountID: giver, titleID: TitleID(rawValue: "euronews"), articleID: "gifted-1", createdAt: f.clock.now(), expiresAt: f.clock.now().addingTimeInterval(86_400))
            _ = try f.service.store.createGift(gift, limit: 5)
            #expect(try f.service.store.recordGiftRead(gift, subject: .account(AccountID(rawValue: id)), at: f.clock.now()))

            let before = try f.snapshot()
            let refusals: [([String: Any], String?, HTTPResponse.Status, String)] = [
                (["password": "correct horse battery"], nil, .unauthorized, "token_required"),
                (["password": "not my password"], access, .unauthorized, "invalid_credentials"),
                ([:], access, .badRequest, "missing_field"),
                (["password": "correct horse battery", "format": "csv"], access, .badRequest, "unknown_field"),
            ]
            for (body, token, status, code) in refusals {
                let reply = try await client.json("/v1/me/export", body, token: token)
                #expect(reply.status == status && reply.errorCode == code, "\(body): \(reply.status) \(reply.text)")
            }
            #expect(Self.unchanged(before, try f.snapshot()))

            let exported = try await client.json("/v1/me/export", ["password": "correct horse battery"], token: access)
            #expect(exported.status == .ok, "\(exported.text)")
            #expect(exported.headers[.contentDisposition] == #"attachment; filename="paywall-data-\#(id).json""#)
            #expect(exported.headers[.cacheControl] == "private, no-store")
            let data = try exported.object()
            #expect((data["account"] as? [String: Any])?["email"] as? String == "reader@example.com")
            let reads = try #require(data["reads"] as? [[String: Any]])
            #expect(reads.map { $0["article"] as? String } == ["a2", "a1"], "newest first: \(reads)")
            #expect(!exported.text.contains("someone-elses") && !exported.text.contains("member@example.com"), "nobody else's data")
            #expect((data["trial"] as? [String: Any])?["status"] as? String == "active")
            #expect((data["sessions"] as? [[String: Any]])?.map { $0["deviceName"] as? String } == ["Phone"])
            let ended = try #require(data["endedSessions"] as? [[String: Any]])
            #expect(ended.map { $0["deviceName"] as? String } == ["Tablet"] && ended.first?["endedAt"] as? String != nil, "\(ended)")
            let changes = try #require(data["audit"] as? [[String: Any]])
            let actions = changes.compactMap { $0["action"] as? String }
            #expect(actions.contains("account.create") && actions.contains("trial.start"), "\(actions)")
            #expect(changes.first { $0["action"] as? String == "admin.account.view" }?["by"] as? String == "staff")
            #expect(changes.first { $0["action"] as? String == "trial.start" }?["by"] as? String == "you")
            #expect(!exported.text.contains("alice") && !exported.text.contains("tok-4711"), "no staff name, no admin token id")
            let history = try #require((data["memberships"] as? [[String: Any]])?.first?["history"] as? [[String: Any]])
            #expect(history.map { $0["actor"] as? String } == ["staff"] && history.allSatisfy { $0["reason"] == nil }, "\(history)")
            #expect(!exported.text.contains("bob@other.example"), "no staff notes")
            let giftReads = try #require(data["giftReads"] as? [[String: Any]])
            #expect(giftReads.map { $0["article"] as? String } == ["gifted-1"] && giftReads.first?["gift"] as? String == "gift-77", "\(giftReads)")
            #expect(data["earlierTrial"] == nil)
            #expect(data["truncated"] as? Bool == false)
            #expect((data["billing"] as? [String: Any])?["links"] as? [Any] != nil)
            let mail = try #require(data["mail"] as? [[String: Any]])
            #expect(mail.map { $0["subject"] as? String } == ["Reset your password"] && mail.first?["to"] as? String == "reader@example.com", "\(mail)")
            #expect(!exported.text.contains(resetToken) && !exported.text.contains("#token="), "never a body or a token")
            let links = try #require(data["pendingLinks"] as? [[String: Any]])
            #expect(links.map { $0["purpose"] as? String } == ["reset-password"] && links.first?["expiresAt"] as? String != nil, "\(links)")
            let audited = try #require(try f.service.store.auditEntries(target: "account:\(id)", limit: 1).first)
            #expect(audited.action == "account.export" && audited.actor == .account(AccountID(rawValue: id)))
            // Three an hour per account.
            for _ in 0..<2 { #expect(try await client.json("/v1/me/export", ["password": "correct horse battery"], token: access).status == .ok) }
            let fourth = try await client.json("/v1/me/export", ["password": "correct horse battery"], token: access)
            #expect(fourth.status == .tooManyRequests && fourth.errorCode == "too_many_exports" && fourth.headers[.retryAfter] != nil, "\(fourth.text)")
        }
    }
}
