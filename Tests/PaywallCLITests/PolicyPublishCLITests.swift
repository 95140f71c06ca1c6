import Foundation
import Testing

/// `paywall policy publish|history|rollback` from the command line: refusals on stderr with
/// a non-zero exit and nothing stored; a publication listed and rolled back.
@Suite("paywall policy publish, history, rollback")
struct PolicyPublishCLITests {
    @Test("a broken folder, an unknown or malformed revision: refused, nothing published; then publish, history, rollback")
    func publishing() throws {
        let cli = try CLIHarness()
        let broken = cli.folder.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Data("rule \"half\" { when reader.signedIn grant }".utf8).write(to: broken.appendingPathComponent("a.policy"))
        let refused = try cli.run(["policy", "publish", broken.path, "--author", "ada"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("a.policy:1:"), "diagnostics name the file and line: \(refused.stderr)")
        let unknown = try cli.run(["policy", "rollback", "abc123"])
        #expect(unknown.status != 0 && unknown.stderr.contains("abc123"), "\(unknown.stderr)")
        let malformed = try cli.run(["policy", "rollback", "not-hex"])
        #expect(malformed.status != 0 && malformed.stderr.contains("revision"), "\(malformed.stderr)")
        #expect(try cli.run(["policy", "history"]).stdout.contains("no policy was published"))

        let published = try cli.run(["policy", "publish", CLIHarness.repositoryPolicies, "--author", "ada", "--json"])
        #expect(published.status == 0, "\(published.stderr)")
        let revision = try #require((try cli.json(published.stdout) as? [String: Any])?["revision"] as? String)
        // A folder named on the command line is what 'policy decide' uses, publication or not.
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        let other = cli.folder.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let shipped = try String(contentsOfFile: CLIHarness.repositoryPolicies + "/paywall.policy", encoding: .utf8)
        try Data((shipped + "\n# a change of the text is a change of revision\n").utf8).write(to: other.appendingPathComponent("paywall.policy"))
        let decide = ["policy", "decide", "--anonymous", "--title", "euronews", "--article", "a1", "--json"]
        let asPublished = try cli.json(try cli.run(decide).stdout) as? [String: Any]
        let asFolder = try cli.json(try cli.run(decide + ["--policies", other.path]).stdout) as? [String: Any]
        #expect(asPublished?["revision"] as? String == revision)
        #expect((asFolder?["revision"] as? String).map { $0 != revision } == true, "\(String(describing: asFolder))")
        let history = try cli.run(["policy", "history"])
        #expect(history.stdout.contains(revision) && history.stdout.contains("ada") && history.stdout.contains("(in force)"))
        let back = try cli.run(["policy", "rollback", String(revision.prefix(8)), "--author", "bob"])
        #expect(back.status == 0, "\(back.stderr)")
        let entries = try #require(try cli.json(try cli.run(["policy", "history", "--json"]).stdout) as? [[String: Any]])
        #expect(entries.compactMap { $0["revision"] as? String } == [revision, revision], "two publications of it, newest first")
        #expect(entries.first?["author"] as? String == "bob")
        // --actor names who acts for every command: publishing and rolling back too.
        #expect(try cli.run(["policy", "rollback", String(revision.prefix(8)), "--actor", "carol"]).status == 0)
        let latest = try #require(try cli.json(try cli.run(["policy", "history", "--json"]).stdout) as? [[String: Any]])
        #expect(latest.first?["author"] as? String == "carol", "\(latest.first ?? [:])")
    }

    @Test("publications are audited by --actor, the author and note in the entry; an author or a note that would not print as it is (controls, bidirectional overrides) is refused, nothing stored")
    func actorAndText() throws {
        let cli = try CLIHarness()
        for (arguments, field) in [(["--author", "ada\u{202E}nimda"], "author"), (["--author", "a\u{85}da"], "author"),
                                   (["--author", "ada", "--note", "fix\u{1B}[2J"], "note"), (["--author", "ada", "--note", "two\nlines"], "note")] {
            let refused = try cli.run(["policy", "publish", CLIHarness.repositoryPolicies] + arguments)
            #expect(refused.status == 1 && refused.stderr.contains(field), "\(arguments): \(refused.stderr)")
        }
        #expect(try cli.run(["policy", "history"]).stdout.contains("no policy was published"))
        let published = try cli.run(["policy", "publish", CLIHarness.repositoryPolicies, "--actor", "alice", "--author", "Alice (on call)", "--note", "the spring offer"])
        #expect(published.status == 0, "\(published.stderr)")
        let entries = try #require(try cli.json(try cli.run(["audit", "list", "--json"]).stdout) as? [[String: Any]])
        let entry = try #require(entries.first { $0["action"] as? String == "policy.publish" })
        #expect(entry["actor"] as? String == "admin:alice", "\(entry)")
        #expect((entry["details"] as? String)?.contains("Alice (on call)") == true && (entry["details"] as? String)?.contains("the spring offer") == true, "\(entry)")
    }

    @Test("publishing a policy with a section for a title not in the catalog warns, naming it, and publishes")
    func unknownTitleSection() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        let folder = cli.folder.appendingPathComponent("mistyped")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("""
            title "euronews" {
              teaser 2 paragraphs
            }

            title "le-mond" {
              rule "opinion is for members" {
                when article.section == "opinion"
                cap none
              }
            }
            """.utf8).write(to: folder.appendingPathComponent("paywall.policy"))
        let published = try cli.run(["policy", "publish", folder.path, "--author", "ada"])
        #expect(published.status == 0, "\(published.stderr)")
        #expect(published.stderr.contains("paywall: warning: the policy has sections for titles not in the catalog") && published.stderr.contains("le-mond"), "\(published.stderr)")
        #expect(!published.stderr.contains("euronews"))
    }
}
