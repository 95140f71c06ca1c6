import Foundation
import Testing

@Suite("paywall token admin", .serialized)
struct AdminTokenCLITests {
    @Test("issues a scoped admin token, audited; verify --kind admin accepts it and --kind access refuses it")
    func issues() throws {
        let cli = try CLIHarness()
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

    @Test("refused: no scope, an unknown scope, too long a lifetime, a bad subject; errors on stderr, non-zero exit, no token", arguments: [
        (["--subject", "alice"], "at least one --scope"),
        (["--scope", "root", "--subject", "alice"], "unknown scope 'root'"),
        (["--scope", "audit", "--subject", "alice", "--lifetime", "13h"], "lifetime"),
        (["--scope", "audit", "--subject", "alice bob"], "subject"),
    ] as [([String], String)])
    func refused(arguments: [String], message: String) throws {
        let cli = try CLIHarness()
        let result = try cli.run(["token", "admin"] + arguments)
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}
