import Foundation
import Testing

@Suite("paywall keys and token", .serialized)
struct TokenCLITests {
    func seeded() throws -> CLIHarness {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"]).status == 0)
        #expect(try cli.run(["plan", "add", "all", "--name", "All", "--period", "month", "--all"]).status == 0)
        #expect(try cli.run(["account", "create", "--email", "ada@example.com"], input: "correct horse battery\n").status == 0)
        #expect(try cli.run(["membership", "grant", "ada@example.com", "--plan", "all"]).status == 0)
        return cli
    }

    @Test("issue creates a development key (and says so); verify accepts it and prints the claims")
    func issueAndVerify() throws {
        let cli = try seeded()
        let issued = try cli.run(["token", "issue", "--account", "ada@example.com", "--ttl", "10m"])
        #expect(issued.status == 0, "\(issued.stderr)")
        #expect(issued.stderr.contains("created development key"))
        let token = issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3)
        let pems = try FileManager.default.contentsOfDirectory(atPath: cli.keys).filter { $0.hasSuffix(".pem") }
        #expect(pems.count == 1)
        let mode = try FileManager.default.attributesOfItem(atPath: cli.keys + "/" + pems[0])[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let verified = try cli.run(["token", "verify", token, "--json"])
        #expect(verified.status == 0)
        let object = try #require(try cli.json(verified.stdout) as? [String: Any])
        #expect(object["kind"] as? String == "at+jwt")
        let claims = try #require(object["claims"] as? [String: Any])
        #expect(((claims["ent"] as? [String: Any])?["memberships"] as? [[String: Any]])?.first?["titles"] as? String == "all")
        #expect(try cli.run(["token", "verify", "-"], input: token + "\n").status == 0)
        // Second issue: no new key, no announcement.
        #expect(try !cli.run(["token", "issue", "--account", "ada@example.com"]).stderr.contains("created"))
        // Whoever holds an issued token reads as the reader: each is audited, with its id.
        let jti = try #require(claims["jti"] as? String)
        let entries = try #require(try cli.json(try cli.run(["audit", "list", "--json"]).stdout) as? [[String: Any]])
        let issuedEntries = entries.filter { $0["action"] as? String == "token.access" }
        #expect(issuedEntries.count == 2 && issuedEntries.contains { ($0["details"] as? String)?.contains(jti) == true }, "\(issuedEntries)")
        #expect(issuedEntries.allSatisfy { $0["actor"] as? String == "admin:tester" })
    }

    @Test("inspect - with nothing on standard input: the message on stderr, not the error's Swift spelling")
    func inspectEmptyInput() throws {
        let cli = try CLIHarness()
        let result = try cli.run(["token", "inspect", "-"], input: "")
        #expect(result.status != 0 && result.stdout.isEmpty)
        #expect(result.stderr.contains("paywall: error: expected a token on standard input") && !result.stderr.contains("CLIFailure"), "\(result.stderr)")
    }

    @Test("refused tokens: exit 1 and the reason on one line", arguments: [
        (["--aud", "somebody-else"], "not for this audience"),
        ([], ""),
    ] as [([String], String)])
    func refused(extra: [String], message: String) throws {
        let cli = try seeded()
        let token = try cli.run(["token", "issue", "--account", "ada@example.com"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let candidate = extra.isEmpty ? String(token.dropLast(4)) + (token.hasSuffix("AAAA") ? "BBBB" : "AAAA") : token
        let result = try cli.run(["token", "verify", candidate] + extra)
        #expect(result.status == 1)
        #expect(result.stderr.contains(message.isEmpty ? "bad signature" : message))
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stdout.isEmpty)
    }

    @Test("garbage, a grant as an access token, inspect without trust")
    func garbageAndInspect() throws {
        let cli = try seeded()
        let garbage = try cli.run(["token", "verify", "not-a-token"])
        #expect(garbage.status == 1)
        #expect(garbage.stderr.contains("malformed token"))
        let grant = try cli.run(["token", "grant", "--device", "d1", "--title", "euronews", "--article", "a1"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["token", "verify", "--kind", "article", grant]).status == 0)
        // A script checking an access token must not accept an article grant (or a comp).
        let asAccess = try cli.run(["token", "verify", grant])
        #expect(asAccess.status == 1)
        #expect(asAccess.stderr.contains("paywall-article+jwt"), "\(asAccess.stderr)")
        #expect(try cli.run(["token", "verify", "--kind", "comp", grant]).status == 1)
        #expect(try cli.run(["token", "verify", "--kind", "bogus", grant]).status == 64)
        let inspected = try cli.run(["token", "inspect", grant])
        #expect(inspected.status == 0)
        #expect(inspected.stderr.contains("NOT VERIFIED"))
        #expect(inspected.stdout.contains("\"verified\" : false"))
        #expect(inspected.stdout.contains("paywall-article+jwt"))
        #expect(try cli.run(["token", "inspect", "x.y"]).status == 1)
    }

    @Test("comp grants are audited; bad ones are refused and write nothing")
    func comp() throws {
        let cli = try seeded()
        let issued = try cli.run(["token", "comp", "--account", "ada@example.com", "--title", "euronews", "--days", "7", "--json"])
        #expect(issued.status == 0, "\(issued.stderr)")
        #expect(try cli.run(["audit", "list", "--account", "ada@example.com"]).stdout.contains("token.comp"))
        let before = try cli.snapshot()
        let unknown = try cli.run(["token", "comp", "--account", "ada@example.com", "--title", "nope", "--days", "7"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no title 'nope'"))
        #expect(try cli.run(["token", "comp", "--account", "ada@example.com", "--title", "euronews", "--days", "0"]).status == 64)
        #expect(try cli.run(["token", "issue", "--account", "ada@example.com", "--ttl", "2d"]).status == 1)
        #expect(try cli.run(["token", "issue", "--account", "nobody@example.com"]).status == 1)
        #expect(try cli.snapshot() == before)
    }

    @Test("keys: generate, rotate, list, jwks, retire with its safeguards")
    func keys() throws {
        let cli = try seeded()
        let generation = try cli.run(["keys", "generate", "--json"])
        #expect(!generation.stderr.contains("in place of"), "the first key replaces none")
        let generated = try #require(try cli.json(generation.stdout) as? [String: Any])
        let first = try #require(generated["kid"] as? String)
        let rotated = try #require(try cli.json(try cli.run(["keys", "rotate", "--alg", "Ed25519", "--json"]).stdout) as? [String: Any])
        #expect(rotated["state"] as? String == "next")
        let second = try #require(rotated["kid"] as? String)
        let jwks = try #require(try cli.json(try cli.run(["keys", "jwks"]).stdout) as? [String: Any])
        #expect((jwks["keys"] as? [[String: Any]])?.compactMap { $0["kid"] as? String }.sorted() == [first, second].sorted())
        // The new key is published but the old one still signs.
        let token = try cli.run(["token", "issue", "--account", "ada@example.com", "--json"])
        #expect((try cli.json(token.stdout) as? [String: Any])?["kid"] as? String == first)

        let retireActive = try cli.run(["keys", "retire", "--", first])
        let keysNow = try cli.run(["keys", "list"]).stdout
        #expect(retireActive.status == 1, "stdout: \(retireActive.stdout) stderr: \(retireActive.stderr) keys: \(keysNow)")
        #expect(retireActive.stderr.contains("is the signing key"))
        #expect(try cli.run(["keys", "retire", "no-such-kid"]).status == 1)
        #expect(try cli.run(["keys", "generate", "--alg", "RS256"]).status == 64)
        #expect(try cli.run(["keys", "rotate", "--publish-ahead", "soon"]).status == 1)
        // Shorter than the JWKS cache (5 minutes): verifiers would refuse the new key's
        // tokens; refused, with why, and no key is made.
        let keysBefore = try cli.run(["keys", "list", "--json"]).stdout
        let aheadTooShort = try cli.run(["keys", "rotate", "--publish-ahead", "1m"])
        #expect(aheadTooShort.status == 1 && aheadTooShort.stderr.contains("at least 6m: how long verifiers cache the JWKS (5m) and a minute"), "\(aheadTooShort.stderr)")
        #expect(try cli.run(["keys", "rotate", "--publish-ahead", "5m"]).status == 1, "the cache time alone leaves no margin")
        let negative = try cli.run(["keys", "rotate", "--publish-ahead", "-10m"])
        #expect(negative.status == 1 && negative.stderr.contains("-10m"), "a value, refused with its reason: \(negative.stderr)")
        #expect(try cli.run(["keys", "list", "--json"]).stdout == keysBefore)

        // An emergency rotation while the Ed25519 key waits to take over: said, with the fix
        // (on stderr in JSON mode too).
        let json = try cli.run(["keys", "rotate", "--publish-ahead", "6m", "--json"])
        #expect(json.status == 0 && json.stderr.contains("paywall keys retire --force -- \(second)"), "\(json.stderr)")
        let third = try #require(try cli.json(json.stdout) as? [String: Any])["kid"] as? String
        let now = try cli.run(["keys", "rotate", "--publish-ahead", "0s"])
        #expect(now.status == 0)
        // The next to take over is the one published 6 minutes ahead.
        #expect(now.stdout.contains("until \(try #require(third)), published earlier, takes over at"), "\(now.stdout)")
        #expect(now.stderr.contains("paywall keys retire --force -- \(try #require(third))"), "\(now.stderr)")
        let listed = try #require(try cli.json(try cli.run(["keys", "list", "--json"]).stdout) as? [[String: Any]])
        #expect(listed.filter { $0["state"] as? String == "active" }.count == 1)
        #expect(listed.first { $0["kid"] as? String == first }?["state"] as? String == "verify-only")
        let tooSoon = try cli.run(["keys", "retire", "--", first])
        #expect(tooSoon.status == 1, "stdout: \(tooSoon.stdout) stderr: \(tooSoon.stderr)")
        #expect(tooSoon.stderr.contains("may still have live tokens"))
        #expect(try cli.run(["keys", "retire", "--force", "--", first]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: cli.keys + "/\(first).pem"))
        let audit = try cli.run(["audit", "list"]).stdout
        for action in ["key.generate", "key.rotate", "key.retire"] { #expect(audit.contains(action)) }

        // A private key file that cannot be deleted (a folder in its place: unlink refuses
        // it even to root): the key is retired, and the file named on stderr, exit 1.
        let stuck = cli.keys + "/\(second).pem"
        try FileManager.default.removeItem(atPath: stuck)
        try FileManager.default.createDirectory(atPath: stuck + "/inside", withIntermediateDirectories: true)
        let left = try cli.run(["keys", "retire", "--force", "--", second])
        #expect(left.status == 1 && left.stdout.contains("retired key \(second)"), "\(left.stdout)")
        #expect(left.stderr.contains("warning: the private key file \(stuck) may still be on the disk") && left.stderr.contains("make sure it is gone"), "\(left.stderr)")
        let after = try #require(try cli.json(try cli.run(["keys", "list", "--json"]).stdout) as? [[String: Any]])
        #expect(after.first { $0["kid"] as? String == second }?["state"] as? String == "retired")
        #expect(try cli.run(["audit", "list", "--json"]).stdout.contains("privateKeyLeft"))
    }

    @Test("keys generate in place of a key that signs says what it does to cached key sets, as an emergency rotation does")
    func generateOverActive() throws {
        let cli = try seeded()
        _ = try cli.run(["keys", "generate"])
        let again = try cli.run(["keys", "generate", "--json"])
        #expect(again.status == 0 && again.stderr.contains("signs at once in place of") && again.stderr.contains("'paywall keys rotate' publishes a key ahead"), "\(again.stderr)")
    }

    @Test("a private key readable by others stops the CLI with the fix")
    func insecureKey() throws {
        let cli = try seeded()
        let kid = try #require(try cli.json(try cli.run(["keys", "generate", "--json"]).stdout) as? [String: Any])["kid"] as? String
        let pem = cli.keys + "/\(try #require(kid)).pem"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: pem)
        let result = try cli.run(["token", "issue", "--account", "ada@example.com"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("chmod 600"))
    }
}
