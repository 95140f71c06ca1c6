import Foundation
import Testing

@Suite("paywall token admin", .serialized)
struct AdminTokenCLITests {
    @Test("issues a scoped admin token, audited; verify --kind admin accepts it and --kind access refuses it")
    func issues() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["db", "migrate"]).status == 0)
        let issued = try cli.run(["token", "admin", "--scope", "catalog", "--scope", "members", "--subject", "alice", "--lifetime", "30m", "--json", "--actor", "ops"])
        #expect(issued.status == 0, "\(issued.stderr)")
        let object = try #require(try cli.json(issued.stdout) as? [String: Any])
        #expect(object["kind"] as? String == "paywall-admin+jwt" && object["subject"] as? String == "alice")
        let token = try #require(object["token"] as? String)
        let verified = try cli.run(["token", "verify", "--kind", "admin", "--json", "-"], input: token + "\n")
        #expect(verified.status == 0, "\(verified.stderr)")
        let claims = try #require((try cli.json(verified.stdout) as? [String: Any])?["claims"] as? [String: Any])
        #expect(claims["scope"] as? String == "catalog members")
        #expect((claims["exp"] as? Int).flatMap { exp in (claims["iat"] as? Int).map { exp - $0 } } == 1_800)
        #expect(try cli.run(["token", "verify", "--kind", "access", "-"], input: token + "\n").status == 1)
        let audit = try cli.run(["audit", "list", "--target", "admin:alice", "--json"])
        let entries = try #require(try cli.json(audit.stdout) as? [[String: Any]])
        #expect(entries.first?["action"] as? String == "token.admin" && entries.first?["actor"] as? String == "admin:ops")
    }

    @Test("without the database (PAYWALL_DB unset, a typo): token admin, revoke-admin, issue, grant and comp refuse and make none, so no token is minted or revoked with its audit entry in a new file")
    func noDatabase() throws {
        let cli = try CLIHarness()
        for arguments in [["token", "admin", "--scope", "audit", "--subject", "alice"], ["token", "revoke-admin", "--subject", "alice"],
                          ["token", "issue", "--account", "ada@example.com"], ["token", "grant", "--device", "d-1", "--title", "euronews", "--article", "a1"],
                          ["token", "comp", "--account", "ada@example.com", "--title", "euronews", "--days", "3"]] {
            let result = try cli.run(arguments)
            #expect(result.status == 2 && result.stdout.isEmpty, "\(arguments): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains("no such file") && result.stderr.contains("paywall db migrate"), "\(arguments): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: cli.database), "\(arguments) made a database")
        }
    }

    @Test("refused: no scope, an unknown scope, too long a lifetime, a bad subject; errors on stderr, non-zero exit, no token", arguments: [
        (["--subject", "alice"], "at least one --scope"),
        (["--scope", "root", "--subject", "alice"], "unknown scope 'root'"),
        (["--scope", "audit", "--subject", "alice", "--lifetime", "13h"], "lifetime"),
        (["--scope", "audit", "--subject", "alice bob"], "subject"),
    ] as [([String], String)])
    func refused(arguments: [String], message: String) throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["db", "migrate"]).status == 0)
        let result = try cli.run(["token", "admin"] + arguments)
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("revoke-admin: by id, then by subject; verify --kind admin refuses the revoked; audited; bad input refused, nothing stored")
    func revoke() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["db", "migrate"]).status == 0)
        func mint(_ subject: String) throws -> (token: String, id: String) {
            let issued = try cli.run(["token", "admin", "--scope", "audit", "--subject", subject, "--json"])
            let token = try #require((try cli.json(issued.stdout) as? [String: Any])?["token"] as? String)
            let verified = try cli.run(["token", "verify", "--kind", "admin", "--json", "-"], input: token + "\n")
            let claims = try #require((try cli.json(verified.stdout) as? [String: Any])?["claims"] as? [String: Any])
            return (token, try #require(claims["jti"] as? String))
        }
        func valid(_ token: String) throws -> Bool {
            let verified = try cli.run(["token", "verify", "--kind", "admin", "-"], input: token + "\n")
            if verified.status != 0 { #expect(verified.stderr.contains("revoked"), "\(verified.stderr)") }
            return verified.status == 0
        }
        let first = try mint("alice"), second = try mint("alice"), bob = try mint("bob")

        for (arguments, message) in [([String](), "one of --id, --token or --subject"), (["--id", first.id, "--subject", "alice"], "one of --id, --token or --subject"),
                                     (["--token", "-", "--subject", "alice"], "one of --id, --token or --subject"), (["--token", "not.a.token"], "malformed"),
                                     (["--id", "not a jti"], "jti"), (["--subject", "alice bob"], "subject")] {
            let result = try cli.run(["token", "revoke-admin"] + arguments)
            #expect(result.status != 0 && result.stdout.isEmpty, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(try valid(first.token) && valid(second.token) && valid(bob.token), "nothing revoked by bad input")

        // A typo of an id: refused (the leaked token would keep working), unless forced.
        let typo = try cli.run(["token", "revoke-admin", "--id", "AAAAAAAAAAAAAAAAAAAAAA"])
        #expect(typo.status != 0 && typo.stderr.contains("no admin token with id"), "\(typo.stderr)")
        let forced = try cli.run(["token", "revoke-admin", "--id", "AAAAAAAAAAAAAAAAAAAAAA", "--force"])
        #expect(forced.status == 0 && forced.stdout.contains("not minted here"), "\(forced.stderr)")
        // An id that begins with "-" (a jti is base64url: one in 64 does) is taken as the id,
        // not as an option.
        let dashed = try cli.run(["token", "revoke-admin", "--id", "-AAAAAAAAAAAAAAAAAAAAA"])
        #expect(dashed.status != 0 && dashed.stderr.contains("no admin token with id"), "\(dashed.stderr)")
        // A token pasted where its id goes: refused, and not printed back.
        let pasted = try cli.run(["token", "revoke-admin", "--id", first.token])
        #expect(pasted.status != 0 && !pasted.stderr.contains(first.token.prefix(30)), "\(pasted.stderr)")

        let byID = try cli.run(["token", "revoke-admin", "--id", first.id, "--actor", "ops"])
        #expect(byID.status == 0, "\(byID.stderr)")
        #expect(byID.stdout.contains("revoked admin token \(first.id) (minted for alice, expires"), "\(byID.stdout)")
        #expect(try !valid(first.token))
        #expect(try valid(second.token) && valid(bob.token))

        // By the token itself, from standard input; a second time it is already revoked.
        let third = try mint("alice")
        let byToken = try cli.run(["token", "revoke-admin", "--token", "-"], input: third.token + "\n")
        #expect(byToken.status == 0 && byToken.stdout.contains("revoked admin token \(third.id) (minted for alice"), "\(byToken.stderr)")
        #expect(try !valid(third.token))
        let again = try cli.run(["token", "revoke-admin", "--token", "-"], input: third.token + "\n")
        #expect(again.status != 0 && again.stderr.contains("revoked"), "\(again.stderr)")
        #expect(!again.stderr.contains(third.token.prefix(30)), "the token is not echoed")

        let bySubject = try cli.run(["token", "revoke-admin", "--subject", "alice", "--json"])
        #expect(bySubject.status == 0, "\(bySubject.stderr)")
        #expect((try cli.json(bySubject.stdout) as? [String: Any])?["subject"] as? String == "alice")
        #expect(try !valid(second.token))
        #expect(try valid(bob.token))

        let audit = try cli.run(["audit", "list", "--json"])
        let entries = try #require(try cli.json(audit.stdout) as? [[String: Any]]).filter { $0["action"] as? String == "token.admin.revoke" }
        #expect(Set(entries.compactMap { $0["target"] as? String }) == ["token:\(first.id)", "token:AAAAAAAAAAAAAAAAAAAAAA", "token:\(third.id)", "admin:alice"])
        #expect(entries.contains { $0["actor"] as? String == "admin:ops" })
    }
}
