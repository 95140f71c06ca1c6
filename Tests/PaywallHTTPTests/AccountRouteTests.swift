import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PaywallCore
@testable import PaywallHTTP
@testable import PaywallService
import PaywallTestSupport
import Testing

/// A fake sendmail: a shell script that appends each message it is given to a file.
final class FakeSendmail: @unchecked Sendable {
    let folder: TestFolder
    var script: String { folder.path("sendmail") }
    var capture: String { folder.path("mail.txt") }

    init(exitStatus: Int = 0) throws {
        folder = try TestFolder("paywall-sendmail")
        let text = """
            #!/bin/sh
            cat >> '\(folder.path("mail.txt"))'
            printf '\\n.END.\\n' >> '\(folder.path("mail.txt"))'
            exit \(exitStatus)

            """
        try text.write(toFile: folder.path("sendmail"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path("sendmail"))
    }

    /// The service whose courier delivers to this script (set by ``readerFixture``).
    weak var service: PaywallService?

    /// Every captured message (after the courier's next pass: mail is delivered after the
    /// answer that queued it).
    func messages() -> [String] {
        service?.flushMail(timeout: 10)
        guard let text = try? String(contentsOfFile: capture, encoding: .utf8) else { return [] }
        return text.components(separatedBy: "\n.END.\n").filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
    }

    /// The token of the newest link to `page` (`verify-email`, `reset-password`).
    func token(_ page: String) throws -> String {
        let message = try #require(messages().last { $0.contains("/\(page)#token=") }, "no mail with a \(page) link")
        let range = try #require(message.range(of: "/\(page)#token=[A-Za-z0-9_-]+", options: .regularExpression))
        return String(message[range].split(separator: "=").last ?? "")
    }
}

/// A seeded service whose mail goes to a fake sendmail.
func readerFixture(mail: FakeSendmail?, backend: TestBackend = .sqlite, configure: @escaping (inout ServiceConfiguration) -> Void = { _ in }) throws -> ServiceFixture {
    let f = try seededFixture(backend: backend) { configuration in
        configuration.sendmailCommand = mail.map { [$0.script, "-t"] }
        configure(&configuration)
    }
    mail?.service = f.service
    return f
}

extension TestClientProtocol {
    func json(_ uri: String, _ object: [String: Any], token: String? = nil) async throws -> TestResponse {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return try await post(uri, String(decoding: data, as: UTF8.self), token: token)
    }

    func signUp(_ email: String, name: String = "Rita Reader", password: String = "a long enough passphrase", extra: [String: Any] = [:], token: String? = nil) async throws -> TestResponse {
        try await json("/v1/accounts", ["email": email, "password": password, "name": name].merging(extra) { $1 }, token: token)
    }

    func signIn(_ email: String, password: String = "correct horse battery", deviceName: String? = nil) async throws -> TestResponse {
        var body: [String: Any] = ["email": email, "password": password]
        if let deviceName { body["deviceName"] = deviceName }
        return try await json("/v1/sessions", body)
    }

    func call(_ uri: String, method: HTTPRequest.Method, token: String?) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: method, headers: headers)
    }
}

extension TestResponse {
    func string(_ path: String...) throws -> String {
        var value: Any = try object()
        for key in path { value = try #require((value as? [String: Any])?[key], "no \(path) in \(text)") }
        return try #require(value as? String, "\(path) is not a string in \(text)")
    }
}

@Suite("Readers' accounts over HTTP")
struct AccountRouteTests {
    @Test("sign up with a device token: its reads carry over, the verification mail is sent, the link verifies once", arguments: TestBackend.all)
    func signUpJourney(backend: TestBackend) async throws {
        let mail = try FakeSendmail()
        let f = try readerFixture(mail: mail, backend: backend)
        let (signUp, me, verify, again, beforeAgain, afterAgain) = try await withAPI(f) { client in
            let device = try await client.post("/v1/devices", nil, contentType: nil).string("deviceToken")
            // The shipped policy meters signed-in readers only: the device's reads are
            // recorded as an app's other meters would record them.
            let sub = try #require(try claims(of: device)["sub"] as? String)
            for article in ["a1", "a2"] {
                try await f.service.recordRead(subject: .device(String(sub.dropFirst("device:".count))), title: "euronews", article: article)
            }
            let signUp = try await client.signUp("New.Reader+news@example.com", extra: ["deviceToken": device, "deviceName": "Rita's phone"])
            let access = try signUp.string("accessToken")
            let me = try await client.get("/v1/me", headers: [.authorization: "Bearer \(access)"])
            let token = try mail.token("verify-email")
            let verify = try await client.json("/v1/email/verify", ["token": token])
            let before = try f.snapshot()
            let again = try await client.json("/v1/email/verify", ["token": token])
            return (signUp, me, verify, again, before, try f.snapshot())
        }
        #expect(signUp.status == .created, "\(signUp.text)")
        let body = try signUp.object()
        #expect(body["carriedReads"] as? Int == 2)
        #expect(body["verificationMail"] as? String == "queued", "delivered after the answer, by the courier")
        #expect(body["tokenType"] as? String == "Bearer")
        #expect((body["refreshToken"] as? String)?.count == 43)
        #expect(try signUp.string("account", "displayName") == "Rita Reader")
        #expect(try signUp.string("session", "deviceName") == "Rita's phone")
        #expect(try claims(of: try signUp.string("accessToken"))["sub"] as? String == (try signUp.string("account", "id")))

        #expect(me.status == .ok, "\(me.text)")
        let profile = try me.object()
        let meters = try #require(profile["meters"] as? [[String: Any]])
        #expect(meters.first?["used"] as? Int == 2 && meters.first?["remaining"] as? Int == 1, "the device's reads count for the account")
        #expect((profile["sessions"] as? [[String: Any]])?.count == 1)
        #expect(profile["trialEligible"] as? Bool == true && profile["offeredTrialDays"] as? Int == 14)
        #expect((profile["account"] as? [String: Any])?["emailVerified"] as? Bool == false)

        let message = try #require(mail.messages().first)
        #expect(message.contains("To: New.Reader+news@example.com"))
        #expect(message.contains("Subject: Confirm your email address"))
        #expect(verify.status == .ok, "\(verify.text)")
        #expect(try (try verify.object()["account"] as? [String: Any])?["emailVerified"] as? Bool == true)
        #expect(again.status == .badRequest && again.errorCode == "link_invalid", "single use")
        #expect(beforeAgain == afterAgain)
        // The outbox keeps no link once the mail is sent; the store keeps the link's hash only.
        let outbox = try f.service.outbox()
        #expect(outbox.count == 1 && outbox[0].sentAt != nil && outbox[0].body.isEmpty)
    }

    @Test("the device token may come as the bearer instead of in the body", arguments: TestBackend.all)
    func signUpWithBearerDevice(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let signUp = try await withAPI(f) { client in
            let device = try await client.post("/v1/devices", nil, contentType: nil).string("deviceToken")
            let sub = try #require(try claims(of: device)["sub"] as? String)
            try await f.service.recordRead(subject: .device(String(sub.dropFirst("device:".count))), title: "euronews", article: "a1")
            return try await client.signUp("bearer@example.com", token: device)
        }
        #expect(signUp.status == .created, "\(signUp.text)")
        #expect(try signUp.object()["carriedReads"] as? Int == 1)
    }

    @Test("sign-ups per client address: the burst, then 429 too_many_sign_ups with Retry-After, nothing written", arguments: TestBackend.all)
    func signUpLimit(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.signUpsPerAddress = 2 }
        try await withAPI(f) { client in
            #expect(try await client.signUp("one@example.com").status == .created)
            #expect(try await client.signUp("two@example.com").status == .created)
            let before = try f.snapshot()
            let refused = try await client.signUp("three@example.com")
            #expect(refused.status == .tooManyRequests && refused.errorCode == "too_many_sign_ups")
            #expect(Int(refused.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(try f.snapshot() == before)
            // Still refused while the burst is spent (one more a minute).
            #expect(try await client.signUp("four@example.com").status == .tooManyRequests)
        }
        #expect(throws: ServiceError.self) { try f.service.account("three@example.com") }
    }

    @Test("a refused sign-up (bad email, weak password, bad name) spends none of the address's budget; the name is optional", arguments: TestBackend.all)
    func refusedSignUpsSpendNothing(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.signUpsPerAddress = 1 }
        try await withAPI(f) { client in
            let before = try f.snapshot()
            for _ in 0..<3 {
                #expect(try await client.signUp("not an email").errorCode == "invalid_email")
                #expect(try await client.signUp("weak@example.com", password: "short").errorCode == "weak_password")
                #expect(try await client.signUp("named@example.com", name: "bad\u{07}name").errorCode == "invalid_name")
            }
            #expect(try f.snapshot() == before)
            // The one sign-up the budget allows, with no name at all.
            let nameless = try await client.json("/v1/accounts", ["email": "nameless@example.com", "password": "a long enough passphrase"])
            #expect(nameless.status == .created, "\(nameless.text)")
            #expect(try await client.signUp("blank@example.com", name: "   ").status == .tooManyRequests)
        }
        #expect(try f.service.account("nameless@example.com").displayName == nil)
    }

    @Test("a blank name is no name", arguments: TestBackend.all)
    func blankName(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let response = try await withAPI(f) { client in try await client.signUp("blank@example.com", name: "  ") }
        #expect(response.status == .created, "\(response.text)")
        #expect(try f.service.account("blank@example.com").displayName == nil)
    }

    @Test("password-reset requests per client address: the burst, then 429 too_many_reset_requests for known and unknown emails alike, nothing written", arguments: TestBackend.all)
    func resetRequestLimit(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.signUpsPerAddress = 2 }
        try await withAPI(f) { client in
            #expect(try await client.json("/v1/password/forgot", ["email": "reader@example.com"]).status == .ok)
            #expect(try await client.json("/v1/password/forgot", ["email": "nobody@example.com"]).status == .ok)
            let before = try f.snapshot()
            for email in ["reader@example.com", "nobody@example.com"] {
                let refused = try await client.json("/v1/password/forgot", ["email": email])
                #expect(refused.status == .tooManyRequests && refused.errorCode == "too_many_reset_requests", "\(email)")
            }
            #expect(try f.snapshot() == before)
        }
    }

    @Test("sign-up refusals write nothing", arguments: TestBackend.all)
    func signUpRefusals(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let cases: [([String: Any], String?, HTTPResponse.Status, String)] = [
            (["password": "a long enough passphrase", "name": "X"], nil, .badRequest, "missing_field"),
            (["email": "x@example.com", "password": "a long enough passphrase", "name": "X", "admin": true], nil, .badRequest, "unknown_field"),
            (["email": "not an email", "password": "a long enough passphrase", "name": "X"], nil, .badRequest, "invalid_email"),
            (["email": "x@example.com", "password": "short", "name": "X"], nil, .badRequest, "weak_password"),
            (["email": "x@example.com", "password": "a long enough passphrase", "name": "X\u{07}"], nil, .badRequest, "invalid_name"),
            (["email": "x@example.com", "password": "a long enough passphrase", "name": String(repeating: "n", count: 201)], nil, .badRequest, "invalid_name"),
            (["email": "x@example.com", "password": "a long enough passphrase", "name": "X", "deviceName": String(repeating: "d", count: 65)], nil, .badRequest, "invalid_name"),
            (["email": "x@example.com", "password": "a long enough passphrase", "name": "X", "deviceToken": "not-a-token"], nil, .unauthorized, "invalid_token"),
            (["email": "x@example.com", "password": "a long enough passphrase", "name": "X"], "a.b.c", .unauthorized, "invalid_token"),
            (["email": "READER@example.com", "password": "a long enough passphrase", "name": "X"], nil, .conflict, "email_taken"),
            (["email": "x@example.com", "password": 12, "name": "X"], nil, .badRequest, "invalid_field"),
        ]
        let member = try accessToken(f, "member@example.com")
        let before = try f.snapshot()
        let bodies = try cases.map { (String(decoding: try JSONSerialization.data(withJSONObject: $0.0), as: UTF8.self), $0.1) }
        let answers = try await withAPI(f) { client in
            var answers: [TestResponse] = []
            for (body, token) in bodies { answers.append(try await client.post("/v1/accounts", body, token: token)) }
            // An access token is not a device token.
            answers.append(try await client.json("/v1/accounts", ["email": "x@example.com", "password": "a long enough passphrase", "name": "X", "deviceToken": member]))
            answers.append(try await client.post("/v1/accounts", "{", token: nil))
            answers.append(try await client.post("/v1/accounts", "{}", contentType: "text/plain"))
            return answers
        }
        for (answer, expected) in zip(answers, cases) {
            #expect(answer.status == expected.2 && answer.errorCode == expected.3, "\(expected.0): \(answer.text)")
        }
        #expect(answers[cases.count].status == .unauthorized && answers[cases.count].errorCode == "invalid_token")
        #expect(answers[cases.count + 1].errorCode == "invalid_json")
        #expect(answers[cases.count + 2].status == .unsupportedMediaType)
        #expect(try f.snapshot() == before)
    }

    @Test("sign in, refresh with rotation; a reused refresh token revokes the family and is audited", arguments: TestBackend.all)
    func refreshRotation(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let (first, second, reused, afterReuse) = try await withAPI(f) { client in
            let signIn = try await client.signIn("reader@example.com", deviceName: "laptop")
            #expect(signIn.status == .created, "\(signIn.text)")
            let token = try signIn.string("refreshToken")
            let second = try await client.json("/v1/sessions/refresh", ["refreshToken": token])
            f.clock.advance(by: 11)  // past the grace window for concurrent refreshes
            let reused = try await client.json("/v1/sessions/refresh", ["refreshToken": token])
            let afterReuse = try await client.json("/v1/sessions/refresh", ["refreshToken": try second.string("refreshToken")])
            return (signIn, second, reused, afterReuse)
        }
        #expect(second.status == .ok, "\(second.text)")
        #expect(try second.string("refreshToken") != (try first.string("refreshToken")))
        #expect(try second.string("session", "id") == (try first.string("session", "id")), "a session keeps its id across refreshes")
        #expect(try second.string("session", "deviceName") == "laptop")
        #expect(reused.status == .unauthorized && reused.errorCode == "session_reused")
        #expect(afterReuse.status == .unauthorized && afterReuse.errorCode == "session_rejected", "the whole family is revoked")
        let reader = try f.service.account("reader@example.com")
        #expect(try f.service.auditEntries(target: "account:\(reader.id)", limit: 100).contains { $0.action == "session.reuse" })
    }

    @Test("refresh refusals: unknown, empty, oversized tokens; nothing written", arguments: TestBackend.all)
    func refreshRefusals(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let before = try f.snapshot()
        let answers = try await withAPI(f) { client in
            [try await client.json("/v1/sessions/refresh", ["refreshToken": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]),
             try await client.json("/v1/sessions/refresh", ["refreshToken": ""]),
             try await client.json("/v1/sessions/refresh", ["refreshToken": String(repeating: "A", count: 5000)]),
             try await client.json("/v1/sessions/refresh", [:]),
             try await client.json("/v1/sessions/sign-out", ["refreshToken": "nope"])]
        }
        #expect(answers.prefix(3).allSatisfy { $0.status == .unauthorized && $0.errorCode == "session_rejected" })
        #expect(answers[3].errorCode == "missing_field")
        #expect(answers[4].status == .unauthorized && answers[4].errorCode == "session_rejected")
        #expect(try f.snapshot() == before)
    }

    @Test("past the session cap, signing in ends the least recently used session and says so", arguments: TestBackend.all)
    func sessionCap(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.maximumSessions = 2 }
        let (signIns, refreshedOld, me) = try await withAPI(f) { client in
            var signIns: [TestResponse] = []
            for device in ["phone", "tablet"] {
                signIns.append(try await client.signIn("reader@example.com", deviceName: device))
                f.clock.advance(by: 60)
            }
            // The phone refreshes: now the tablet is the least recently used.
            let refreshed = try await client.json("/v1/sessions/refresh", ["refreshToken": try signIns[0].string("refreshToken")])
            f.clock.advance(by: 60)
            signIns.append(try await client.signIn("reader@example.com", deviceName: "laptop"))
            let tabletRefresh = try await client.json("/v1/sessions/refresh", ["refreshToken": try signIns[1].string("refreshToken")])
            let me = try await client.get("/v1/me", headers: [.authorization: "Bearer \(try signIns[2].string("accessToken"))"])
            _ = refreshed
            return (signIns, tabletRefresh, me)
        }
        #expect(signIns.map { (try? $0.object()["endedSessions"] as? [Any])?.count } == [0, 0, 1])
        let ended = try #require((try signIns[2].object()["endedSessions"] as? [[String: Any]])?.first)
        #expect(ended["deviceName"] as? String == "tablet")
        #expect(try ended["id"] as? String == (try signIns[1].string("session", "id")))
        #expect(refreshedOld.status == .unauthorized && refreshedOld.errorCode == "session_rejected")
        let sessions = try #require(try me.object()["sessions"] as? [[String: Any]])
        #expect(sessions.map { $0["deviceName"] as? String } == ["laptop", "phone"], "most recently used first")
        #expect(sessions.allSatisfy { $0["lastUsedAt"] is String && $0["startedAt"] is String })
    }

    @Test("sign out, sign out everywhere and revoking one session; refusals write nothing", arguments: TestBackend.all)
    func signingOut(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let one = try await client.signIn("reader@example.com", deviceName: "one")
            let two = try await client.signIn("reader@example.com", deviceName: "two")
            let three = try await client.signIn("reader@example.com", deviceName: "three")
            let memberSession = try await client.signIn("member@example.com")
            let access = try three.string("accessToken")

            let out = try await client.json("/v1/sessions/sign-out", ["refreshToken": try one.string("refreshToken")])
            #expect(try out.status == .ok && (try out.string("session", "deviceName")) == "one", "\(out.text)")
            var before = try f.snapshot()
            let outAgain = try await client.json("/v1/sessions/sign-out", ["refreshToken": try one.string("refreshToken")])
            #expect(outAgain.status == .unauthorized && outAgain.errorCode == "session_rejected")
            #expect(try f.snapshot() == before)

            let id = try two.string("session", "id")
            let revoked = try await client.call("/v1/me/sessions/\(id)", method: .delete, token: access)
            #expect(try revoked.status == .ok && (try revoked.string("session", "id")) == id, "\(revoked.text)")
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try two.string("refreshToken")]).errorCode == "session_rejected")
            // Another device signed out: the account's access tokens ended, this one's too; it refreshes.
            #expect(try await client.call("/v1/me", method: .get, token: access).errorCode == "invalid_token")
            let threeRenewed = try await client.json("/v1/sessions/refresh", ["refreshToken": try three.string("refreshToken")])
            let renewedAccess = try threeRenewed.string("accessToken")
            before = try f.snapshot()
            let refusals = [
                try await client.call("/v1/me/sessions/\(id)", method: .delete, token: renewedAccess),
                try await client.call("/v1/me/sessions/\(try memberSession.string("session", "id"))", method: .delete, token: renewedAccess),
                try await client.call("/v1/me/sessions/\(id)", method: .delete, token: nil),
                try await client.call("/v1/me/sessions/\(id)", method: .get, token: renewedAccess),
            ]
            #expect(refusals[0].status == .notFound && refusals[0].errorCode == "session_not_found")
            #expect(refusals[1].status == .notFound && refusals[1].errorCode == "session_not_found", "another account's session is not found")
            #expect(refusals[2].status == .unauthorized && refusals[2].errorCode == "token_required")
            #expect(refusals[3].status == .methodNotAllowed && refusals[3].headers[.allow] == "DELETE")
            #expect(try f.snapshot() == before)

            let everywhere = try await client.post("/v1/sessions/sign-out-everywhere", nil, token: renewedAccess, contentType: nil)
            #expect(try everywhere.status == .ok && (try everywhere.object()["endedSessions"] as? Int) == 1, "\(everywhere.text)")
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try threeRenewed.string("refreshToken")]).errorCode == "session_rejected")
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try memberSession.string("refreshToken")]).status == .ok, "other accounts keep theirs")
            let device = try await client.post("/v1/devices", nil, contentType: nil).string("deviceToken")
            before = try f.snapshot()
            let deviceAnswer = try await client.post("/v1/sessions/sign-out-everywhere", nil, token: device, contentType: nil)
            #expect(deviceAnswer.status == .unauthorized && deviceAnswer.errorCode == "invalid_token", "a device token is not a reader")
            let ended = try await client.post("/v1/sessions/sign-out-everywhere", nil, token: access, contentType: nil)
            #expect(ended.status == .unauthorized && ended.errorCode == "invalid_token", "the access token ended with the sessions")
            let fresh = try await client.signIn("reader@example.com").string("accessToken")
            before = try f.snapshot()
            let bodyAnswer = try await client.post("/v1/sessions/sign-out-everywhere", #"{"all":true}"#, token: fresh)
            #expect(bodyAnswer.errorCode == "unknown_field")
            #expect(try f.snapshot() == before)
        }
    }

    @Test("sign-in answers alike for an unknown email and a wrong password, then 429 with Retry-After; a restart keeps the count", arguments: TestBackend.all)
    func throttledSignIn(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { configuration in
            configuration.signInThrottle.accountFree = 2
            configuration.signInThrottle.accountRefuseAfter = 4
        }
        func attempts(_ email: String) async throws -> [(HTTPResponse.Status, String?, String?)] {
            try await withAPI(f) { client in
                var answers: [(HTTPResponse.Status, String?, String?)] = []
                for _ in 0..<4 {
                    let answer = try await client.signIn(email, password: "wrong password here")
                    answers.append((answer.status, answer.errorCode, answer.headers[.retryAfter]))
                }
                return answers
            }
        }
        let known = try await attempts("reader@example.com")
        let unknown = try await attempts("nobody@example.com")
        #expect(known.map(\.0) == [.unauthorized, .unauthorized, .unauthorized, .tooManyRequests])
        #expect(known.map(\.1) == ["invalid_credentials", "invalid_credentials", "invalid_credentials", "too_many_attempts"])
        #expect(known[3].2 == "1", "the third failure makes the next attempt wait a second")
        #expect(unknown.map(\.0) == known.map(\.0) && unknown.map(\.1) == known.map(\.1) && unknown.map(\.2) == known.map(\.2))

        // While blocked, even the right password is refused, and nothing is hashed or written.
        let before = try f.snapshot()
        let blocked = try await withAPI(f) { client in try await client.signIn("reader@example.com") }
        #expect(blocked.status == .tooManyRequests)
        #expect(try f.snapshot() == before)

        // A new service over the same database (a restart) still refuses.
        var configuration = f.service.configuration
        configuration.databaseLocation = f.path
        let restarted = try PaywallService(configuration: configuration)
        defer { try? restarted.close() }
        #expect(throws: ServiceError.tooManyAttempts(retryAfter: 1)) {
            try restarted.signInReader(email: "reader@example.com", password: "correct horse battery", deviceName: nil, client: "127.0.0.1")
        }
        // Once the wait is over, the right password works and clears the account's count.
        f.clock.advance(by: 2)
        let fine = try await withAPI(f) { client in try await client.signIn("reader@example.com") }
        #expect(fine.status == .created, "\(fine.text)")
    }

    @Test("password reset by a single-use link: a newer link voids the older, sessions end, the new password works", arguments: TestBackend.all)
    func passwordReset(backend: TestBackend) async throws {
        let mail = try FakeSendmail()
        let f = try readerFixture(mail: mail, backend: backend)
        try await withAPI(f) { client in
            let session = try await client.signIn("reader@example.com")
            var before = try f.snapshot()
            let unknown = try await client.json("/v1/password/forgot", ["email": "nobody@example.com"])
            #expect(unknown.status == .ok && unknown.text == #"{"status":"accepted"}"#)
            #expect(try f.snapshot() == before, "nothing queued for an unknown email")
            #expect(try await client.json("/v1/password/forgot", ["email": "nope"]).errorCode == "invalid_email")

            let first = try await client.json("/v1/password/forgot", ["email": "Reader@Example.com"])
            #expect(first.status == .ok && first.text == unknown.text, "the same answer whether or not the account exists")
            let older = try mail.token("reset-password")
            _ = try await client.json("/v1/password/forgot", ["email": "reader@example.com"])
            let newer = try mail.token("reset-password")
            #expect(older != newer)

            before = try f.snapshot()
            let stale = try await client.json("/v1/password/reset", ["token": older, "password": "a brand new passphrase"])
            #expect(stale.status == .badRequest && stale.errorCode == "link_invalid")
            let weak = try await client.json("/v1/password/reset", ["token": newer, "password": "short"])
            #expect(weak.errorCode == "weak_password")
            #expect(try f.snapshot() == before)

            let reset = try await client.json("/v1/password/reset", ["token": newer, "password": "a brand new passphrase"])
            #expect(try reset.status == .ok && (try reset.object()["endedSessions"] as? Int) == 1, "\(reset.text)")
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try session.string("refreshToken")]).errorCode == "session_rejected")
            #expect(try await client.signIn("reader@example.com").status == .unauthorized)
            #expect(try await client.signIn("reader@example.com", password: "a brand new passphrase").status == .created)
            before = try f.snapshot()
            let twice = try await client.json("/v1/password/reset", ["token": newer, "password": "another new passphrase"])
            #expect(twice.errorCode == "link_invalid")
            #expect(try f.snapshot() == before)
        }
    }

    @Test("a link expires", arguments: TestBackend.all)
    func linkExpires(backend: TestBackend) async throws {
        let mail = try FakeSendmail()
        let f = try readerFixture(mail: mail, backend: backend)
        try await withAPI(f) { client in
            _ = try await client.json("/v1/password/forgot", ["email": "reader@example.com"])
            f.clock.advance(by: 3_601)
            let late = try await client.json("/v1/password/reset", ["token": try mail.token("reset-password"), "password": "a brand new passphrase"])
            #expect(late.errorCode == "link_invalid")
        }
    }

    @Test("without a sendmail command mail waits in the outbox; a resend voids the previous link", arguments: TestBackend.all)
    func queuedMail(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let signUp = try await client.signUp("queued@example.com")
            #expect(try signUp.object()["verificationMail"] as? String == "queued")
            let resent = try await client.post("/v1/email/verification", nil, token: try signUp.string("accessToken"), contentType: nil)
            #expect(try resent.status == .ok && (try resent.object()["verificationMail"] as? String) == "queued", "\(resent.text)")
            let outbox = try f.service.outbox()
            #expect(outbox.count == 2 && outbox.allSatisfy { $0.sentAt == nil && $0.recipient == "queued@example.com" })
            let tokens = outbox.compactMap { message in message.body.range(of: "#token=[A-Za-z0-9_-]+", options: .regularExpression).map { String(message.body[$0].dropFirst(7)) } }
            #expect(tokens.count == 2)
            // Newest first: the older link is void, the newer verifies.
            #expect(try await client.json("/v1/email/verify", ["token": tokens[1]]).errorCode == "link_invalid")
            #expect(try await client.json("/v1/email/verify", ["token": tokens[0]]).status == .ok)
            #expect(try await client.post("/v1/email/verification", nil, contentType: nil).errorCode == "token_required")
        }
    }

    @Test("mail already waiting is delivered when a server starts; stopping takes no further message, only finishes the one in hand", arguments: TestBackend.all)
    func courierAtStartAndStop(backend: TestBackend) throws {
        let folder = try TestFolder("paywall-start-stop-sendmail")
        // Kept to the end: ARC may end a value at its last use, and the folder's deinit
        // removes the files the script and the test meet in.
        defer { withExtendedLifetime(folder) {} }
        let gate = folder.path("gate"), started = folder.path("started"), capture = folder.path("mail.txt"), script = folder.path("sendmail")
        try """
            #!/bin/sh
            touch '\(started)'
            while [ ! -e '\(gate)' ]; do sleep 0.05; done
            cat >> '\(capture)'
            """.write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        // Queued while no server could send (no sendmail): two readers' links.
        let f = try readerFixture(mail: nil, backend: backend)
        for email in ["first@example.com", "second@example.com"] {
            _ = try f.service.signUpReader(email: email, password: "correct horse battery", name: nil, deviceToken: nil, deviceName: nil, client: "c")
        }
        #expect(try f.service.outbox().filter { $0.sentAt == nil }.count == 2)
        // A server starts with sendmail: the courier begins with what waits.
        // Run by /bin/sh, not exec'd itself: a file just written can be "busy" to exec while
        // another test's fork still holds its descriptor (ETXTBSY), a failed delivery here.
        let server = try f.another { $0.sendmailCommand = ["/bin/sh", script, "-t"] }
        _ = try server.prepareToServe()
        // Synchronous, on threads of its own: under a full parallel run the cooperative pool
        // is busy for longer than sendmail's timeout, and a test step waiting on it let both
        // messages time out.
        let deadline = Date().addingTimeInterval(15)
        while !FileManager.default.fileExists(atPath: started), Date() < deadline { usleep(50_000) }
        #expect(FileManager.default.fileExists(atPath: started), "nothing was delivered at start")
        // SIGTERM meanwhile: the message in hand is finished and marked, no other is taken.
        let closed = DispatchSemaphore(value: 0)
        Thread {
            try? server.close()
            closed.signal()
        }.start()
        usleep(200_000)
        FileManager.default.createFile(atPath: gate, contents: nil)
        closed.wait()
        // What the store says first (the stop waited for the message in hand to be marked)…
        let marked = try f.service.outbox()
        #expect(marked.filter { $0.sentAt != nil }.count == 1, "the one in hand is marked sent when the stop returns: \(marked.map { "\($0.attempts) \($0.lastError ?? "-")" })")
        // …then what sendmail got (on a loaded machine the file may lag its writer a moment).
        let fileDeadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: capture), Date() < fileDeadline { usleep(50_000) }
        let captured = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
        #expect(captured.components(separatedBy: "To: ").count - 1 == 1, "one message handed over: \(captured)")
        let outbox = try f.service.outbox()
        #expect(outbox.filter { $0.sentAt != nil }.count == 1, "the one in hand is marked sent")
        #expect(outbox.filter { $0.sentAt == nil }.allSatisfy { $0.attempts == 0 }, "the other was not claimed")
    }

    @Test("mail is delivered after the answer, off the request: a sendmail that blocks holds up no sign-up", arguments: TestBackend.all)
    func deliveryOffTheRequest(backend: TestBackend) async throws {
        let folder = try TestFolder("paywall-gated-sendmail")
        defer { withExtendedLifetime(folder) {} }  // as above: the files outlive its last use
        let gate = folder.path("gate"), capture = folder.path("mail.txt"), script = folder.path("sendmail")
        // Waits until the test opens the gate, then captures the message.
        try """
            #!/bin/sh
            while [ ! -e '\(gate)' ]; do sleep 0.05; done
            cat >> '\(capture)'
            """.write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let f = try readerFixture(mail: nil, backend: backend) { $0.sendmailCommand = [script, "-t"] }
        let answers = try await withAPI(f) { client in
            [try await client.signUp("first@example.com"), try await client.signUp("second@example.com")]
        }
        // Both answered while the command was still blocked on the first message.
        #expect(answers.map(\.status) == [.created, .created])
        #expect(!FileManager.default.fileExists(atPath: capture))
        #expect(try f.service.outbox().allSatisfy { $0.sentAt == nil })
        FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(f.service.flushMail(timeout: 30))
        let captured = try String(contentsOfFile: capture, encoding: .utf8)
        #expect(captured.contains("To: first@example.com") && captured.contains("To: second@example.com"))
        #expect(try f.service.outbox().allSatisfy { $0.sentAt != nil })
    }

    @Test("a failing sendmail keeps the message in the outbox, to be tried again", arguments: TestBackend.all)
    func failingSendmail(backend: TestBackend) async throws {
        let mail = try FakeSendmail(exitStatus: 75)
        let f = try readerFixture(mail: mail, backend: backend)
        let signUp = try await withAPI(f) { client in try await client.signUp("fails@example.com") }
        #expect(signUp.status == .created)
        #expect(try signUp.object()["verificationMail"] as? String == "queued")
        #expect(f.service.flushMail(timeout: 10))
        let message = try #require(try f.service.outbox().first)
        #expect(message.sentAt == nil && message.attempts == 1 && message.lastError?.contains("75") == true && !message.body.isEmpty)
    }

    @Test("too much mail to one address is refused (resend) or silently dropped (forgot password)", arguments: TestBackend.all)
    func mailLimit(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.mailsPerAddressPerHour = 2 }
        try await withAPI(f) { client in
            let signUp = try await client.signUp("busy@example.com")  // mail 1
            let access = try signUp.string("accessToken")
            #expect(try await client.post("/v1/email/verification", nil, token: access, contentType: nil).status == .ok)  // mail 2
            let before = try f.snapshot()
            let third = try await client.post("/v1/email/verification", nil, token: access, contentType: nil)
            #expect(third.status == .tooManyRequests && third.errorCode == "too_much_mail" && third.headers[.retryAfter] == "3600")
            let forgot = try await client.json("/v1/password/forgot", ["email": "busy@example.com"])
            #expect(forgot.status == .ok)
            #expect(try f.snapshot() == before)
        }
    }

    @Test("DELETE /v1/me: the password again; refusals write nothing; a renewing subscription first; then the account, its sessions and reads are gone and its token opens nothing", arguments: TestBackend.all)
    func deleteOwnAccount(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        @Sendable func delete(_ client: any TestClientProtocol, _ body: String?, token: String?) async throws -> TestResponse {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let token { headers[.authorization] = "Bearer \(token)" }
            return try await client.execute(uri: "/v1/me", method: .delete, headers: headers, body: body.map { ByteBuffer(string: $0) })
        }
        try await withAPI(f) { client in
            let signedUp = try await client.signUp("leaving@example.com")
            let access = try signedUp.string("accessToken")
            _ = try await client.access(article: "a1", token: access)
            #expect(try await client.post("/v1/trials", nil, token: access, contentType: nil).status == .created)
            let before = try f.snapshot()
            let wrong = try await delete(client, #"{"password":"not the password"}"#, token: access)
            #expect(wrong.status == .unauthorized && wrong.errorCode == "invalid_credentials")
            #expect(try await delete(client, #"{"password":"a long enough passphrase"}"#, token: nil).errorCode == "token_required")
            #expect(try await delete(client, "{}", token: access).errorCode == "missing_field")
            #expect(try await delete(client, #"{"password":"x","extra":1}"#, token: access).errorCode == "unknown_field")
            let snapshot = try f.snapshot()
            #expect(snapshot["accounts"] == before["accounts"] && snapshot["reads"] == before["reads"])

            // A subscription Stripe renews: cancel it there first.
            let account = try f.service.account("leaving@example.com")
            let stripe = try f.service.store.grantMembership(
                accountID: account.id, planID: PlanID(rawValue: "news"), periodEnd: f.clock.now().addingTimeInterval(30 * 86_400),
                source: MembershipSource(rawValue: "stripe"), actor: .system)
            let renewing = try await delete(client, #"{"password":"a long enough passphrase"}"#, token: access)
            #expect(renewing.status == .conflict && renewing.errorCode == "subscription_active", "\(renewing.text)")
            _ = try f.service.store.scheduleCancellation(id: stripe.id, actor: .system)

            let deleted = try await delete(client, #"{"password":"a long enough passphrase"}"#, token: access)
            #expect(deleted.status == .noContent, "\(deleted.text)")
            #expect(deleted.headers[.cacheControl] == "no-store")
            #expect(throws: ServiceError.self) { try f.service.account("leaving@example.com") }
            #expect(try await client.get("/v1/me", headers: [.authorization: "Bearer \(access)"]).errorCode == "invalid_token")
            let refresh = try await client.json("/v1/sessions/refresh", ["refreshToken": try signedUp.string("refreshToken")])
            #expect(refresh.status == .unauthorized, "its sessions went with it: \(refresh.text)")
            #expect(try f.snapshot()["reads"] == before["reads"], "its read stays counted for the title, under a pseudonym")
            // The person's one trial stays spent: signing up again buys none.
            #expect(try !f.service.store.isTrialEligible(email: EmailAddress("leaving@example.com")))
        }
    }

    @Test("PAYWALL_TRIAL_NEEDS_VERIFIED_EMAIL: no trial before the address is confirmed (403, nothing written), then the trial", arguments: TestBackend.all)
    func trialNeedsVerifiedEmail(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend) { $0.trialNeedsVerifiedEmail = true }
        try await withAPI(f) { client in
            let access = try await client.signUp("new@example.com").string("accessToken")
            let before = try f.snapshot()
            let refused = try await client.post("/v1/trials", nil, token: access, contentType: nil)
            #expect(refused.status == .forbidden && refused.errorCode == "email_not_verified", "\(refused.text)")
            #expect(try f.snapshot() == before)
            let mail = try #require(try f.service.outbox().first { $0.recipient == "new@example.com" })
            let token = try #require(mail.body.range(of: "#token=[A-Za-z0-9_-]+", options: .regularExpression).map { String(mail.body[$0].dropFirst(7)) })
            #expect(try await client.json("/v1/email/verify", ["token": token]).status == .ok)
            let started = try await client.post("/v1/trials", nil, token: access, contentType: nil)
            #expect(started.status == .created, "\(started.text)")
        }
    }

    @Test("POST /v1/trials starts the policy's trial once per person; refusals write nothing", arguments: TestBackend.all)
    func trials(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let signUp = try await client.signUp("jo.smith@gmail.com")
            let access = try signUp.string("accessToken")
            let started = try await client.post("/v1/trials", nil, token: access, contentType: nil)
            #expect(started.status == .created, "\(started.text)")
            let trial = try #require(try started.object()["trial"] as? [String: Any])
            #expect(trial["daysLeft"] as? Int == 14 && trial["status"] as? String == "active")
            let me = try await client.get("/v1/me", headers: [.authorization: "Bearer \(access)"])
            #expect(try (try me.object()["trial"] as? [String: Any])?["daysLeft"] as? Int == 14)
            #expect(try me.object()["trialEligible"] as? Bool == false)

            let alias = try await client.signUp("josmith+news@gmail.com")
            let device = try await client.post("/v1/devices", nil, contentType: nil).string("deviceToken")
            let before = try f.snapshot()
            let again = try await client.post("/v1/trials", nil, token: access, contentType: nil)
            let aliased = try await client.post("/v1/trials", nil, token: try alias.string("accessToken"), contentType: nil)
            let anonymous = try await client.post("/v1/trials", nil, contentType: nil)
            let byDevice = try await client.post("/v1/trials", nil, token: device, contentType: nil)
            let withBody = try await client.post("/v1/trials", #"{"days":90}"#, token: try alias.string("accessToken"))
            #expect(again.status == .conflict && again.errorCode == "trial_already_used")
            #expect(aliased.status == .conflict && aliased.errorCode == "trial_already_used", "one trial per person: the normalized email")
            #expect(anonymous.status == .unauthorized && anonymous.errorCode == "token_required")
            #expect(byDevice.status == .unauthorized && byDevice.errorCode == "invalid_token")
            #expect(withBody.errorCode == "unknown_field")
            #expect(try f.snapshot() == before)
        }
    }

    @Test("GET /v1/me: memberships, trial, meters; a token of a deleted account is refused", arguments: TestBackend.all)
    func profile(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let member = try accessToken(f, "member@example.com")
        let trial = try accessToken(f, "trial@example.com")
        let reader = try accessToken(f, "reader@example.com")
        let (asMember, asTrial, deleted, noToken) = try await withAPI(f) { client in
            let asMember = try await client.get("/v1/me", headers: [.authorization: "Bearer \(member)"])
            let asTrial = try await client.get("/v1/me", headers: [.authorization: "Bearer \(trial)"])
            _ = try f.service.deleteAccount("reader@example.com", actor: f.admin)
            return (asMember, asTrial, try await client.get("/v1/me", headers: [.authorization: "Bearer \(reader)"]), try await client.get("/v1/me"))
        }
        let memberships = try #require(try asMember.object()["memberships"] as? [[String: Any]])
        #expect(memberships.map { $0["plan"] as? String } == ["news"] && memberships.first?["status"] as? String == "active")
        #expect(try asMember.object()["trial"] == nil)
        #expect(try (try asTrial.object()["trial"] as? [String: Any])?["daysLeft"] as? Int == 14)
        #expect(deleted.status == .unauthorized && deleted.errorCode == "invalid_token")
        #expect(noToken.status == .unauthorized && noToken.errorCode == "token_required")
    }

    @Test("each account route takes its methods only: others get 405 with Allow", arguments: TestBackend.all)
    func methods(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        // The methods each path takes (GET brings HEAD), in the router's order.
        var byPath: [String: [HTTPRequest.Method]] = [:]
        var order: [String] = []
        for (path, method) in PaywallAPI.accountRoutes {
            if byPath[path] == nil { order.append(path) }
            byPath[path, default: []].append(method)
        }
        try await withAPI(f) { [byPath, order] client in
            for path in order {
                let methods = byPath[path] ?? []
                let uri = path.replacingOccurrences(of: "{id}", with: "abc")
                let other: HTTPRequest.Method = methods.contains(.get) ? .post : .get
                let answer = try await client.execute(uri: uri, method: other, headers: [:])
                #expect(answer.status == .methodNotAllowed && answer.errorCode == "method_not_allowed", "\(other) \(uri)")
                let allow = methods.flatMap { $0 == .get ? ["GET", "HEAD"] : [$0.rawValue] }.joined(separator: ", ")
                #expect(answer.headers[.allow] == allow, "\(uri)")
            }
        }
    }
}
