import Foundation
import Testing

@Suite("paywall policy", .serialized)
struct PolicyCLITests {
    func seeded() throws -> CLIHarness {
        let cli = try CLIHarness()
        for (id, name) in [("euronews", "Euronews"), ("le-monde", "Le Monde"), ("the-daily", "The Daily")] {
            #expect(try cli.run(["title", "add", id, "--name", name, "--publisher", "P"]).status == 0)
        }
        #expect(try cli.run(["plan", "add", "news", "--name", "News", "--period", "month", "--titles", "euronews"]).status == 0)
        #expect(try cli.run(["account", "create", "--email", "ada@example.com"], input: "correct horse battery\n").status == 0)
        return cli
    }

    func policyFolder(_ cli: CLIHarness, _ name: String, _ text: String) throws -> String {
        let folder = cli.folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: folder.appendingPathComponent("main.policy"))
        return folder.path
    }

    @Test("check and test the shipped policy")
    func shipped() throws {
        let cli = try CLIHarness()
        let check = try cli.run(["policy", "check"])
        #expect(check.status == 0)
        #expect(check.stdout.contains("ok — 14 rules"))
        let test = try cli.run(["policy", "test"])
        #expect(test.status == 0, "\(test.stdout)")
        #expect(test.stdout.contains(" passed, 0 failed"))
        #expect(!test.stdout.contains("not exercised"))
    }

    @Test("a broken policy: every error as file:line:column with a caret, exit 1")
    func broken() throws {
        let cli = try CLIHarness()
        let folder = try policyFolder(cli, "broken", "rule \"a\" { when trial.active; grant full }\nrule \"b\" { when trial.active; grant ful }\n")
        try Data("rule \"c\" {\n  when user.signedin\n  grant full\n}\n".utf8).write(to: URL(fileURLWithPath: folder + "/other.policy"))
        let result = try cli.run(["policy", "check", folder])
        #expect(result.status == 1)
        #expect(result.stderr.contains("main.policy:2:37: error: expected an access level: none, teaser or full; found 'ful'"))
        #expect(result.stderr.contains("\n    rule \"b\" { when trial.active; grant ful }\n                                        ^"))
        #expect(result.stderr.contains("other.policy:2:8: error: unknown attribute 'user.signedin'; did you mean 'user.signedIn'?") == false,
                "semantic checks run once every file parses")
        #expect(result.stderr.contains("1 error; the policy was not loaded"))
        try Data("rule \"b\" { when trial.active; grant full }\n".utf8).write(to: URL(fileURLWithPath: folder + "/main.policy"))
        let semantic = try cli.run(["policy", "check", folder])
        #expect(semantic.stderr.contains("other.policy:2:8: error: unknown attribute 'user.signedin'; did you mean 'user.signedIn'?"))
        #expect(try cli.run(["policy", "check", cli.folder.appendingPathComponent("missing").path]).status == 1)
    }

    @Test("policy tests that fail are reported with what differed; unexercised rules are listed")
    func failingTests() throws {
        let cli = try CLIHarness()
        let folder = try policyFolder(cli, "p", """
            rule "signed" { when user.signedIn; grant full }
            rule "never tested" { when trial.active; grant full }
            """)
        try FileManager.default.createDirectory(atPath: folder + "/tests", withIntermediateDirectories: true)
        try Data(#"{"tests": [{"name": "anonymous", "at": "2026-01-01T00:00:00Z", "facts": {"title.id": "x"}, "expect": {"access": "full"}}]}"#.utf8)
            .write(to: URL(fileURLWithPath: folder + "/tests/t.json"))
        let result = try cli.run(["policy", "test", folder])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL anonymous"))
        #expect(result.stdout.contains("access is teaser, expected full"))
        #expect(result.stdout.contains("not exercised by any test: rule \"never tested\""))
        #expect(result.stdout.contains("0 passed, 1 failed"))
        try Data(#"{"tests": [{"name": "typo", "at": "2026-01-01T00:00:00Z", "facts": {"user.signedin": true}, "expect": {"access": "full"}}]}"#.utf8)
            .write(to: URL(fileURLWithPath: folder + "/tests/t.json"))
        let typo = try cli.run(["policy", "test", folder])
        #expect(typo.status == 1)
        #expect(typo.stderr.contains("did you mean 'user.signedIn'?"))
        // A misspelled expectation would check nothing and pass: refused, with the name meant.
        for (test, words) in [(#""expect": {"acess": "full"}"#, #"unknown member "acess" in "expect""#), (#""expect": {"access": "full"}, "fatcs": {}"#, #"unknown member "fatcs" in a test"#),
                              (#""expect": {"teaser": "2"}"#, #""teaser" must be a number"#)] {
            try Data((#"{"tests": [{"name": "t", "at": "2026-01-01T00:00:00Z", "# + test + "}]}").utf8).write(to: URL(fileURLWithPath: folder + "/tests/t.json"))
            let result = try cli.run(["policy", "test", folder])
            #expect(result.status == 1 && result.stderr.contains(words), "\(test): \(result.stderr)")
        }
        try Data(#"{"tests": [{"name": "t", "at": "2026-01-01T00:00:00Z", "expect": {"acess": "full"}}]}"#.utf8).write(to: URL(fileURLWithPath: folder + "/tests/t.json"))
        #expect(try cli.run(["policy", "test", folder]).stderr.contains(#"did you mean "access"?"#))
    }

    @Test("decide from the real store: anonymous, metered with --record, members, explain")
    func decide() throws {
        let cli = try seeded()
        let anonymous = try #require(try cli.json(try cli.run(["policy", "decide", "--anonymous", "--title", "euronews", "--article", "a1", "--json"]).stdout) as? [String: Any])
        #expect(anonymous["access"] as? String == "teaser")
        #expect(anonymous["teaserParagraphs"] as? Int == 2)
        #expect(anonymous["offers"] as? [String] == ["signUp", "signIn", "trial 14 days"])
        #expect(anonymous["isPrivate"] as? Bool == true)

        var accesses: [String] = []
        // One instant for the five runs (a slow machine must not take the re-read past the
        // minute in which re-reads are not stored).
        let clock = try FileClockDriver(path: cli.folder.appendingPathComponent("now").path, start: Date())
        for article in ["a1", "a2", "a3", "a4", "a1"] {
            let decided = try cli.run(
                ["policy", "decide", "--account", "ada@example.com", "--title", "the-daily", "--article", article, "--record", "--json"],
                extraEnvironment: ["PAYWALL_TEST_CLOCK_FILE": clock.path])
            #expect(decided.status == 0, "\(decided.stderr)")
            accesses.append((try cli.json(decided.stdout) as? [String: Any])?["access"] as? String ?? "?")
        }
        #expect(accesses == ["full", "full", "full", "teaser", "full"], "three free articles, then the teaser; a re-read is free")
        #expect(try cli.snapshot()[4] == 3, "three consumed reads; the re-read, within the minute, writes nothing")

        #expect(try cli.run(["membership", "grant", "ada@example.com", "--plan", "news"]).status == 0)
        let member = try cli.run(["policy", "decide", "--account", "ada@example.com", "--title", "euronews", "--article", "z", "--explain"])
        #expect(member.stdout.contains("decided by    members read the titles in their plan"))
        #expect(member.stdout.contains("✓ members read the titles in their plan"))
        let other = try cli.run(["policy", "decide", "--account", "ada@example.com", "--title", "le-monde", "--article", "edito", "--section", "opinion"])
        #expect(other.stdout.contains("access        none"), "a member of another title's plan is no member of le-monde: its opinion cap applies")

        let corporate = try cli.run(["policy", "decide", "--anonymous", "--title", "the-daily", "--article", "a1", "--ip", "203.0.113.9"])
        #expect(corporate.stdout.contains("access        full"))
        let free = try cli.run(["policy", "decide", "--anonymous", "--title", "the-daily", "--article", "a1", "--free", "--json"])
        #expect((try cli.json(free.stdout) as? [String: Any])?["accessibleForFree"] as? Bool == true)
    }

    @Test("decide refuses bad input clearly", arguments: [
        (["--anonymous", "--title", "nope", "--article", "a"], 1, "no title 'nope'"),
        (["--account", "nobody@example.com", "--title", "euronews", "--article", "a"], 1, "no account"),
        (["--anonymous", "--title", "euronews", "--article", "a", "--ip", "999.1.1.1"], 1, "not an IPv4 or IPv6 address"),
        (["--anonymous", "--title", "euronews", "--article", "a", "--at", "soon"], 1, "invalid date"),
        (["--title", "euronews", "--article", "a"], 64, "exactly one of --account and --anonymous"),
        (["--anonymous", "--title", "euronews", "--article", "a", "--channel", "fax"], 64, "--channel"),
    ] as [([String], Int32, String)])
    func decideErrors(arguments: [String], status: Int32, message: String) throws {
        let cli = try seeded()
        let before = try cli.snapshot()
        let result = try cli.run(["policy", "decide"] + arguments)
        #expect(result.status == status)
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(try cli.snapshot() == before)
    }

    @Test("diff replays recorded reads through a proposed policy")
    func diff() throws {
        let cli = try seeded()
        for article in ["a1", "a2", "a3"] {
            #expect(try cli.run(["policy", "decide", "--account", "ada@example.com", "--title", "the-daily", "--article", article, "--record"]).status == 0)
        }
        let shipped = try String(contentsOfFile: CLIHarness.repositoryPolicies + "/paywall.policy", encoding: .utf8)
        let stricter = try policyFolder(cli, "stricter", shipped.replacingOccurrences(of: "limit 3 per 30 days", with: "limit 1 per 30 days"))
        let result = try cli.run(["policy", "diff", stricter, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let impact = try #require(try cli.json(result.stdout) as? [String: Any])
        #expect(impact["replayed"] as? Int == 3)
        #expect(impact["changed"] as? Int == 2)
        #expect((impact["byTitle"] as? [String: Int])?["the-daily"] == 2)
        #expect((impact["byAccess"] as? [String: Int])?["full → teaser"] == 2)
        // Free of the meter: the same access, but no unit used (a change the reader's meter shows).
        let unmetered = try policyFolder(cli, "unmetered", shipped.replacingOccurrences(of: "grant full using meter \"free-articles\"", with: "grant full"))
        let freed = try #require(try cli.json(try cli.run(["policy", "diff", unmetered, "--json"]).stdout) as? [String: Any])
        #expect(freed["changed"] as? Int == 3, "\(freed)")
        let same = try policyFolder(cli, "same", shipped)
        #expect((try cli.json(try cli.run(["policy", "diff", same, "--json"]).stdout) as? [String: Any])?["changed"] as? Int == 0)
        let broken = try policyFolder(cli, "broken", "rule {")
        #expect(try cli.run(["policy", "diff", broken]).status == 1)
    }
}
