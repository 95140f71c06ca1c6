import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PaywallCore
@testable import PaywallHTTP
@testable import PaywallService
import PaywallTestSupport
import PaywallTokens
import Testing

/// An access token ends with the sessions: after a sign-out everywhere or a password change
/// every route that takes one refuses those issued before, instead of honouring them for the
/// rest of their minutes (``Account/signOutsEverywhere``).
@Suite("Access tokens end when every session of the account ends")
struct SessionEndTests {
    /// Every route that takes a reader's access token, asked as that reader would.
    static func routes(gift: String, comp: String) -> [(HTTPRequest.Method, String, String?)] {
        [
            (.post, "/v1/access", #"{"title":"euronews","article":{"id":"a1"}}"#),
            (.post, "/v1/access/preview", #"{"articles":[{"title":"euronews","article":{"id":"a2"}}]}"#),
            (.post, "/v1/access", GiftRouteTests.accessBody(title: "le-monde", article: "g1", gift: gift)),
            (.post, "/v1/access", CompAccessTests.body(title: "the-daily", article: "c1", comp: comp)),
            (.post, "/v1/gifts", #"{"title":"euronews","article":"g2"}"#),
            (.get, "/v1/me", nil),
            (.post, "/v1/sessions/sign-out-everywhere", nil),
        ]
    }

    @Test("sign out everywhere: the account's access tokens, also one an admin minted, are refused by every route at once; refusals write nothing; a new sign-in's token and other accounts' work", arguments: TestBackend.all)
    func signOutEverywhere(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let gift = try f.service.createGift(reader: .account(try f.service.account("member@example.com").id), title: "le-monde", article: "g1").token
        let comp = try CompAccessTests.comp(f, "member@example.com", titles: ["the-daily"])
        try await withAPI(f) { client in
            let laptop = try await client.signIn("member@example.com", deviceName: "Laptop")
            let phone = try await client.signIn("member@example.com", deviceName: "Phone")
            let old = [try laptop.string("accessToken"), try phone.string("accessToken"), try accessToken(f, "member@example.com")]
            let other = try await client.signIn("reader@example.com").string("accessToken")
            // Every route but the sign-out itself, before: each token is honoured.
            for token in old {
                for (method, path, body) in Self.routes(gift: gift, comp: comp).dropLast() {
                    let reply = try await client.call(method, path, body, token: token)
                    #expect(reply.status == .ok || reply.status == .created, "\(method) \(path): \(reply.status) \(reply.text)")
                }
            }

            let out = try await client.post("/v1/sessions/sign-out-everywhere", nil, token: old[1], contentType: nil)
            #expect(try out.status == .ok && (try out.object()["endedSessions"] as? Int) == 2, "\(out.text)")
            let before = try f.snapshot()
            for token in old {
                for (method, path, body) in Self.routes(gift: gift, comp: comp) {
                    let reply = try await client.call(method, path, body, token: token)
                    #expect(reply.status == .unauthorized && reply.errorCode == "invalid_token", "\(method) \(path): \(reply.status) \(reply.text)")
                    #expect(!reply.text.contains("revoked"), "the reason goes to the log only")
                }
            }
            #expect(try f.snapshot() == before, "a refused token writes nothing")
            // The gift link still opens its article to whoever holds it without a token.
            #expect(try await client.call(.post, "/v1/access", GiftRouteTests.accessBody(title: "le-monde", article: "g1", gift: gift)).status == .ok)

            // Another account keeps its token; the member signs in again and reads as a member.
            #expect(try await client.call(.get, "/v1/me", nil, token: other).status == .ok)
            let again = try await client.signIn("member@example.com").string("accessToken")
            let read = try await client.access(title: "euronews", article: "a3", token: again)
            #expect(try read.status == .ok && (try read.object()["access"] as? String) == "full", "\(read.text)")
            #expect(try await client.call(.get, "/v1/me", nil, token: try accessToken(f, "member@example.com")).status == .ok, "minted after: honoured")
            #expect(try f.service.account("member@example.com").signOutsEverywhere == 1)
        }
    }

    @Test("a password change ends every access token issued before it, the answer's own new one excepted; a refresh after it carries the new count", arguments: TestBackend.all)
    func passwordChange(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let laptop = try await client.signIn("reader@example.com", deviceName: "Laptop")
            let phone = try await client.signIn("reader@example.com", deviceName: "Phone")
            // Issued in the same second as the change below: a count, not a time, tells them apart.
            let changed = try await client.json(
                "/v1/me/password", ["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase"],
                token: try phone.string("accessToken"))
            #expect(changed.status == .ok, "\(changed.text)")
            for token in [try laptop.string("accessToken"), try phone.string("accessToken")] {
                #expect(try await client.call(.get, "/v1/me", nil, token: token).errorCode == "invalid_token")
                #expect(try await client.access(title: "euronews", article: "p1", token: token).status == .unauthorized)
            }
            let fresh = try changed.string("accessToken")
            #expect(try await client.call(.get, "/v1/me", nil, token: fresh).status == .ok)
            let refreshed = try await client.json("/v1/sessions/refresh", ["refreshToken": try changed.string("refreshToken")])
            #expect(try await client.access(title: "euronews", article: "p2", token: try refreshed.string("accessToken")).status == .ok)
            #expect(try claims(of: try refreshed.string("accessToken"))["soe"] as? Int == 1)
        }
    }

    @Test("support signs a reader out everywhere: their sessions and access tokens end, the password stays; audited by the admin; refusals write nothing", arguments: TestBackend.all)
    func adminSignOut(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let admin = try adminToken(f, [.members])
        let catalogOnly = try adminToken(f, [.catalog])
        try await withAPI(f) { client in
            let session = try await client.signIn("reader@example.com")
            let access = try session.string("accessToken")
            let other = try await client.signIn("member@example.com").string("accessToken")
            let before = try f.snapshot()
            let refusals = [
                (try await client.call(.post, "/admin/v1/accounts/nobody@example.com/sign-out", token: admin), HTTPResponse.Status.notFound, "account_not_found"),
                (try await client.call(.post, "/admin/v1/accounts/reader@example.com/sign-out", token: catalogOnly), .forbidden, "insufficient_scope"),
                (try await client.call(.post, "/admin/v1/accounts/reader@example.com/sign-out", token: access), .forbidden, "admin_token_required"),
                (try await client.call(.post, "/admin/v1/accounts/reader@example.com/sign-out", #"{"all":true}"#, token: admin), .badRequest, "unknown_field"),
            ]
            for (reply, status, code) in refusals {
                #expect(reply.status == status && reply.errorCode == code, "\(reply.status) \(reply.text)")
            }
            #expect(try f.snapshot() == before, "refusals write nothing")
            #expect(try await client.call(.get, "/v1/me", nil, token: access).status == .ok)

            let out = try await client.call(.post, "/admin/v1/accounts/reader%40example.com/sign-out", token: admin)
            #expect(out.status == .ok, "\(out.text)")
            let id = try f.service.account("reader@example.com").id
            #expect(try out.object()["account"] as? String == id.rawValue && (try out.object()["endedSessions"] as? Int) == 1)
            #expect(try await client.call(.get, "/v1/me", nil, token: access).errorCode == "invalid_token")
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try session.string("refreshToken")]).errorCode == "session_rejected")
            #expect(try await client.call(.get, "/v1/me", nil, token: other).status == .ok, "another reader keeps theirs")
            #expect(try await client.signIn("reader@example.com").status == .created, "the password stays")
            let entry = try #require(try f.service.store.auditEntries(target: "account:\(id)", limit: 20).first { $0.action == "session.revoke-all" })
            #expect(entry.actor.description == "admin:alice")
        }
    }

    @Test("a refresh token used twice (theft) ends the account's access tokens, the thief's included; other devices refresh and go on", arguments: TestBackend.all)
    func reuseDetected(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let stolen = try await client.signIn("reader@example.com", deviceName: "Phone")
            let laptop = try await client.signIn("reader@example.com", deviceName: "Laptop")
            let thief = try await client.json("/v1/sessions/refresh", ["refreshToken": try stolen.string("refreshToken")])
            let thiefAccess = try thief.string("accessToken")
            #expect(try await client.call(.get, "/v1/me", nil, token: thiefAccess).status == .ok)
            f.clock.advance(by: 11)  // past the grace window of a refresh sent twice at once
            let reused = try await client.json("/v1/sessions/refresh", ["refreshToken": try stolen.string("refreshToken")])
            #expect(reused.errorCode == "session_reused", "\(reused.text)")
            for token in [thiefAccess, try laptop.string("accessToken")] {
                #expect(try await client.call(.get, "/v1/me", nil, token: token).errorCode == "invalid_token")
            }
            let renewed = try await client.json("/v1/sessions/refresh", ["refreshToken": try laptop.string("refreshToken")])
            #expect(try await client.call(.get, "/v1/me", nil, token: try renewed.string("accessToken")).status == .ok, "\(renewed.text)")
        }
    }

    @Test("a device signed out from another loses its access token at once (it cannot read, give gifts or sign the owner out); the one that did it refreshes; a device signing itself out ends nothing else", arguments: TestBackend.all)
    func deviceSignedOutFromAnother(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let phone = try await client.signIn("reader@example.com", deviceName: "Phone")
            let laptop = try await client.signIn("reader@example.com", deviceName: "Laptop")
            let tablet = try await client.signIn("reader@example.com", deviceName: "Tablet")
            // The tablet signs itself out: the others' tokens go on.
            #expect(try await client.json("/v1/sessions/sign-out", ["refreshToken": try tablet.string("refreshToken")]).status == .ok)
            for device in [phone, laptop] {
                #expect(try await client.call(.get, "/v1/me", nil, token: try device.string("accessToken")).status == .ok)
            }
            // The laptop signs the phone out.
            let profile = try await client.call(.get, "/v1/me", nil, token: try laptop.string("accessToken"))
            let sessions = try #require(try profile.object()["sessions"] as? [[String: Any]])
            let phoneID = try #require(sessions.first { $0["deviceName"] as? String == "Phone" }?["id"] as? String)
            #expect(try await client.call(.delete, "/v1/me/sessions/\(phoneID)", nil, token: try laptop.string("accessToken")).status == .ok)
            let phoneAccess = try phone.string("accessToken")
            #expect(try await client.call(.get, "/v1/me", nil, token: phoneAccess).errorCode == "invalid_token")
            #expect(try await client.call(.post, "/v1/gifts", #"{"title":"euronews","article":"g9"}"#, token: phoneAccess).status == .unauthorized)
            #expect(try await client.json("/v1/sessions/refresh", ["refreshToken": try phone.string("refreshToken")]).errorCode == "session_rejected")
            // The laptop refreshes and goes on.
            #expect(try await client.call(.get, "/v1/me", nil, token: try laptop.string("accessToken")).errorCode == "invalid_token")
            let renewed = try await client.json("/v1/sessions/refresh", ["refreshToken": try laptop.string("refreshToken")])
            #expect(try await client.call(.get, "/v1/me", nil, token: try renewed.string("accessToken")).status == .ok, "\(renewed.text)")
        }
    }

    @Test("after sign out everywhere an old, rotated refresh token replayed is refused quietly: the new sign-in's access token stays, no theft is audited", arguments: TestBackend.all)
    func replayAfterSignOutEverywhere(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let first = try await client.signIn("reader@example.com", deviceName: "Phone")
            let rotated = try await client.json("/v1/sessions/refresh", ["refreshToken": try first.string("refreshToken")])
            #expect(try await client.call(.post, "/v1/sessions/sign-out-everywhere", nil, token: try rotated.string("accessToken")).status == .ok)
            let again = try await client.signIn("reader@example.com", deviceName: "Phone")
            f.clock.advance(by: 11)  // past the grace window
            let replay = try await client.json("/v1/sessions/refresh", ["refreshToken": try first.string("refreshToken")])
            #expect(replay.status == .unauthorized)
            #expect(try await client.call(.get, "/v1/me", nil, token: try again.string("accessToken")).status == .ok, "the new sign-in's token ended")
            #expect(try f.service.auditEntries(limit: 50).allSatisfy { $0.action != "session.reuse" })
        }
    }

    @Test("a password reset by its link ends the access tokens issued before it", arguments: TestBackend.all)
    func passwordReset(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        try await withAPI(f) { client in
            let access = try await client.signIn("reader@example.com").string("accessToken")
            #expect(try await client.json("/v1/password/forgot", ["email": "reader@example.com"]).status == .ok)
            let body = try #require(try f.service.outbox().last { $0.body.contains("/reset-password#token=") }?.body)
            let range = try #require(body.range(of: "#token=[A-Za-z0-9_-]+", options: .regularExpression))
            let token = String(body[range].dropFirst(7))
            #expect(try await client.json("/v1/password/reset", ["token": token, "password": "a brand new passphrase"]).status == .ok)
            #expect(try await client.access(title: "euronews", article: "r1", token: access).status == .unauthorized)
            #expect(try await client.call(.get, "/v1/me", nil, token: access).errorCode == "invalid_token")
        }
    }

    @Test("signed out through another server (or the CLI on the same database): this server refuses the tokens once it hears the change", arguments: TestBackend.all)
    func anotherServer(backend: TestBackend) async throws {
        let f = try readerFixture(mail: nil, backend: backend)
        let other = try f.another()
        try await withAPI(f) { client in
            let access = try await client.signIn("member@example.com").string("accessToken")
            #expect(try await client.access(title: "euronews", article: "o1", token: access).status == .ok, "cached here")
            _ = try other.signOutEverywhere(account: "member@example.com", actor: f.admin)
            var status = HTTPResponse.Status.ok
            for _ in 0..<100 where status == .ok {
                status = try await client.access(title: "euronews", article: "o2", token: access).status
                if status == .ok { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(status == .unauthorized, "still honoured five seconds after the other server's change")
        }
    }
}
