import Foundation
import PaywallTestSupport
import Testing
import PaywallCore
@testable import PaywallStore

@Suite("paywall CLI", .serialized)
struct CLITests {
    /// A database with a title, two plans and one account.
    func seeded() throws -> CLIHarness {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        #expect(try cli.run(["title", "add", "the-daily", "--name", "The Daily", "--publisher", "Daily Ltd"]).status == 0)
        #expect(try cli.run(["plan", "add", "monthly-all", "--name", "All titles", "--period", "month", "--all"]).status == 0)
        #expect(try cli.run(["plan", "add", "news", "--name", "News", "--period", "year", "--titles", "euronews"]).status == 0)
        let created = try cli.run(["account", "create", "--email", "Ada@Example.com", "--name", "Ada"], input: "correct horse battery\n")
        #expect(created.status == 0, "\(created.stderr)")
        return cli
    }

    @Test("plan delete: only with --yes, only a plan nothing refers to; audited")
    func planDelete() throws {
        let cli = try seeded()
        #expect(try cli.run(["plan", "delete", "news"]).status == 64)
        #expect(try cli.run(["membership", "grant", "ada@example.com", "--plan", "monthly-all"]).status == 0)
        let before = try cli.snapshot()
        let inUse = try cli.run(["plan", "delete", "monthly-all", "--yes"])
        #expect(inUse.status == 1 && inUse.stderr.contains("plan 'monthly-all' is in use by 1 membership"), "\(inUse.stderr)")
        #expect(try cli.snapshot() == before)
        let deleted = try cli.run(["plan", "delete", "news", "--yes"])
        #expect(deleted.status == 0 && deleted.stdout.contains("plan news deleted"), "\(deleted.stderr)")
        #expect(!(try cli.run(["plan", "list"]).stdout.contains("news")))
        #expect(try cli.run(["audit", "list", "--action", "plan.delete"]).stdout.contains("plan:news"))
    }

    @Test("catalog changes: a title renamed, a plan's titles replaced, audited; a command with nothing to change is a usage error")
    func catalogUpdates() throws {
        let cli = try seeded()
        let renamed = try cli.run(["title", "update", "euronews", "--name", "Euronews English"])
        #expect(renamed.status == 0 && renamed.stdout.contains("Euronews English, published by Euronews SA"), "\(renamed.stderr)")
        let plan = try cli.run(["plan", "update", "news", "--titles", "euronews,the-daily", "--json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect((try cli.json(plan.stdout) as? [String: Any])?["titles"] as? [String] == ["euronews", "the-daily"])
        #expect(try cli.run(["plan", "list"]).stdout.contains("euronews,the-daily"))
        let audit = try cli.run(["audit", "list", "--json"]).stdout
        #expect(audit.contains("plan.update") && audit.contains("title.update"))
        for arguments in [["title", "update", "euronews"], ["plan", "update", "news"], ["plan", "update", "news", "--all", "--titles", "euronews"]] {
            let before = try cli.snapshot()
            let usage = try cli.run(arguments)
            #expect(usage.status == 64 && !usage.stderr.isEmpty, "\(arguments): \(usage.status) \(usage.stderr)")
            #expect(try cli.snapshot() == before)
        }
    }

    @Test("an admin's session: accounts, trials, memberships, meters, audit, in text and JSON")
    func adminFlow() throws {
        let cli = try seeded()
        let show = try cli.run(["account", "show", "ada@example.com", "--json"])
        #expect(show.status == 0)
        let detail = try #require(try cli.json(show.stdout) as? [String: Any])
        let account = try #require(detail["account"] as? [String: Any])
        #expect(account["email"] as? String == "Ada@Example.com")
        #expect(detail["trialEligible"] as? Bool == true)
        #expect((detail["sessions"] as? [Any])?.isEmpty == true && (detail["pendingLinks"] as? [Any])?.isEmpty == true)
        let shown = try cli.run(["account", "show", "ada@example.com"]).stdout
        #expect(shown.contains("signed in") && shown.contains("nowhere") && shown.contains("links waiting"), "\(shown)")
        let id = try #require(account["id"] as? String)

        // --json has one shape with a trial and without (the API's TrialStatus).
        let none = try #require(try cli.json(try cli.run(["trial", "show", "ada@example.com", "--json"]).stdout) as? [String: Any])
        #expect(none["eligible"] as? Bool == true && none["trial"] == nil)
        #expect(try cli.run(["trial", "start", id, "--days", "14"]).stdout.contains("trial #1 started"))
        let status = try #require(try cli.json(try cli.run(["trial", "show", "ada@example.com", "--json"]).stdout) as? [String: Any])
        let trial = try #require(status["trial"] as? [String: Any])
        #expect(trial["status"] as? String == "active" && status["eligible"] as? Bool == false)

        let grant = try cli.run(["membership", "grant", "ada@example.com", "--plan", "news", "--until", "2099-01-01", "--json"])
        #expect(grant.status == 0, "\(grant.stderr)")
        #expect((try cli.json(grant.stdout) as? [String: Any])?["currentPeriodEnd"] as? String == "2099-01-01T00:00:00Z")
        #expect(try cli.run(["membership", "cancel", "ada@example.com", "--at-period-end"]).stdout.contains("will not renew"))
        #expect(try cli.run(["membership", "cancel", "ada@example.com", "--at-period-end", "--now"]).status == 64)
        #expect(try cli.run(["membership", "cancel", "ada@example.com"]).stdout.contains("access until 2099-01-01T00:00:00Z"))
        let memberships = try #require(try cli.json(try cli.run(["membership", "show", "ada@example.com", "--json"]).stdout) as? [[String: Any]])
        #expect(memberships.count == 1)
        #expect(memberships[0]["status"] as? String == "canceled")
        #expect((memberships[0]["history"] as? [[String: Any]])?.count == 2)

        #expect(try cli.run(["meter", "record", "--account", "ada@example.com", "--title", "euronews", "--article", "a1"]).status == 0)
        #expect(try cli.run(["meter", "record", "--account", "ada@example.com", "--title", "euronews", "--article", "a1"]).status == 0)
        #expect(try cli.run(["meter", "record", "--device", "dev-9", "--title", "the-daily", "--article", "a2"]).status == 0)
        // Reads an operator records count in the reads report publishers are paid on: audited.
        let imports = try #require(try cli.json(try cli.run(["audit", "list", "--json"]).stdout) as? [[String: Any]]).filter { $0["action"] as? String == "meter.import" }
        #expect(imports.count == 3 && imports.allSatisfy { ($0["details"] as? String)?.contains(#""reads":"1""#) == true }, "\(imports)")
        let meter = try #require(try cli.json(try cli.run(["meter", "show", "--account", id, "--json"]).stdout) as? [String: Any])
        #expect(meter["used"] as? Int == 1)

        let list = try #require(try cli.json(try cli.run(["account", "list", "--json"]).stdout) as? [[String: Any]])
        #expect(list.count == 1)
        let titles = try cli.run(["title", "list"])
        #expect(titles.stdout.contains("euronews") && titles.stdout.contains("The Daily"))
        #expect(try cli.run(["plan", "list"]).stdout.contains("all titles"))

        let audit = try #require(try cli.json(try cli.run(["audit", "list", "--json", "--limit", "100"]).stdout) as? [[String: Any]])
        let actions = audit.compactMap { $0["action"] as? String }
        for action in ["title.add", "plan.add", "account.create", "trial.start", "membership.grant", "membership.status"] {
            #expect(actions.contains(action), "missing \(action)")
        }
        #expect(audit.allSatisfy { $0["actor"] as? String == "admin:tester" })
        #expect(try cli.run(["audit", "list", "--account", "ada@example.com"]).stdout.contains("trial.start"))
        // Filters: by actor, by action prefix, by period; --actor (who makes a change) is refused here.
        let byTester = try cli.run(["audit", "list", "--by", "admin:tester", "--action", "membership.", "--json"])
        let filtered = try #require(try JSONSerialization.jsonObject(with: Data(byTester.stdout.utf8)) as? [[String: Any]])
        #expect(!filtered.isEmpty && filtered.allSatisfy { ($0["action"] as? String)?.hasPrefix("membership.") == true })
        #expect((try cli.json(try cli.run(["audit", "list", "--by", "admin:nobody", "--json"]).stdout) as? [Any])?.isEmpty == true)
        #expect((try cli.json(try cli.run(["audit", "list", "--since", "2999-01-01", "--json"]).stdout) as? [Any])?.isEmpty == true)
        let misused = try cli.run(["audit", "list", "--actor", "admin:tester"])
        #expect(misused.status == 64 && misused.stderr.contains("--by"))

        let check = try cli.run(["db", "check"])
        #expect(check.status == 0)
        #expect(check.stdout.contains("healthy"))
        let backup = cli.folder.appendingPathComponent("backup.sqlite").path
        #expect(try cli.run(["db", "backup", backup]).status == 0)
        #expect(try cli.run(["db", "backup", backup]).status == 1)
        #expect(!FileManager.default.fileExists(atPath: backup + ".partial"), "the partial file is renamed, not left")
        // An interrupted backup's partial file: refused, saying what to remove; nothing named.
        let second = cli.folder.appendingPathComponent("second.sqlite").path
        #expect(FileManager.default.createFile(atPath: second + ".partial", contents: Data("half".utf8)))
        let interrupted = try cli.run(["db", "backup", second])
        #expect(interrupted.status != 0 && interrupted.stderr.contains("second.sqlite.partial is there: an interrupted backup's"), "\(interrupted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: second))
        #expect(try Data(contentsOf: URL(fileURLWithPath: second + ".partial")) == Data("half".utf8), "not ours to remove")
        #expect(try cli.run(["db", "check", "--db", backup, "--json"]).stdout.contains("\"healthy\" : true"))
        // The database and its backup hold password hashes and sessions: readable by their owner only.
        if cli.schema == nil {
            for path in [cli.database, backup] {
                let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
                #expect(mode & 0o077 == 0, "\(path) is \(String(mode, radix: 8))")
            }
        }

        let access = try cli.run(["token", "issue", "--account", "ada@example.com"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["token", "verify", "--kind", "access", "-"], input: access + "\n").status == 0)
        #expect(try cli.run(["account", "set-password", "ada@example.com"], input: "another fine passphrase\n").status == 0)
        let ended = try cli.run(["token", "verify", "--kind", "access", "-"], input: access + "\n")
        #expect(ended.status == 1 && ended.stderr.contains("revoked"), "a token issued before the password was set: \(ended.stderr)")
        let signedOut = try cli.run(["account", "sign-out", "ada@example.com", "--json"])
        #expect(signedOut.status == 0, "\(signedOut.stderr)")
        #expect((try cli.json(signedOut.stdout) as? [String: Any])?["endedSessions"] as? Int == 0)
        #expect(try cli.run(["account", "sign-out", "ada@example.com"]).stdout.contains("signed Ada@Example.com out everywhere: 0 sessions ended"))
        #expect(try cli.run(["account", "delete", "ada@example.com", "--yes"]).status == 0)
        #expect(try cli.run(["account", "show", "ada@example.com"]).status == 1)
    }

    @Test("refused commands: one line on stderr, exit 1, nothing written", arguments: [
        (["account", "create", "--email", "bad@@example.com"], "correct horse battery\n", "invalid email address"),
        (["account", "create", "--email", "b@example.com"], "short\n", "at least 10 characters"),
        (["account", "create", "--email", "b@example.com"], "password123\n", "commonly used"),
        (["account", "create", "--email", "ADA@example.com"], "correct horse battery\n", "already exists"),
        (["account", "create", "--email", "b@example.com"], "", "expected the password"),
        (["account", "show", "nobody@example.com"], "", "no account 'nobody@example.com'"),
        (["account", "set-password", "ada@example.com"], "short\n", "at least 10 characters"),
        (["account", "delete", "ghost@example.com", "--yes"], "", "no account"),
        (["title", "add", "euronews", "--name", "E", "--publisher", "P"], "", "already exists"),
        (["title", "add", "Bad Id", "--name", "E", "--publisher", "P"], "", "invalid title id"),
        (["title", "add", "ok-id", "--name", "   ", "--publisher", "P"], "", "invalid title name"),
        (["plan", "add", "x", "--name", "X", "--period", "month", "--titles", "euronews,nope"], "", "no title 'nope'"),
        (["plan", "add", "x", "--name", "X", "--period", "fortnight", "--all"], "", "expected one of week, month, year"),
        (["plan", "add", "news", "--name", "X", "--period", "month", "--all"], "", "already exists"),
        (["membership", "grant", "ada@example.com", "--plan", "nope"], "", "no plan 'nope'"),
        (["membership", "grant", "ada@example.com", "--plan", "news", "--until", "2026-02-30"], "", "invalid date"),
        (["membership", "grant", "ada@example.com", "--plan", "news", "--until", "2001-01-01"], "", "a time in the future"),
        (["membership", "grant", "ada@example.com", "--plan", "news", "--until", "9999-12-31"], "", "at most 100 years ahead"),
        (["membership", "grant", "ada@example.com", "--plan", "news", "--for", "ten days"], "", "invalid duration"),
        (["membership", "grant", "nobody@example.com", "--plan", "news"], "", "no account"),
        (["membership", "cancel", "ada@example.com"], "", "no membership"),
        (["trial", "start", "nobody@example.com"], "", "no account"),
        (["meter", "record", "--device", "d1", "--title", "nope", "--article", "a"], "", "no title 'nope'"),
        (["meter", "record", "--device", "d 1", "--title", "euronews", "--article", "a"], "", "invalid device id"),
        (["meter", "record", "--device", "d1", "--title", "euronews", "--article", "a", "--at", "yesterday"], "", "invalid date"),
        (["meter", "show", "--device", "d1", "--window", "forever"], "", "invalid duration"),
        (["account", "verify-email", "nobody@example.com"], "", "no account 'nobody@example.com' (list accounts with 'paywall account list')"),
        (["title", "tag", "nope", "--tag", "x"], "", "no title 'nope' (list titles with 'paywall title list')"),
        (["title", "tag", "euronews", "--tag", "Not A Tag"], "", "invalid tag"),
        (["title", "add", "x", "--name", "X", "--publisher", "P", "--tag", "ok,-bad"], "", "invalid tag '-bad'"),
        (["meter", "show", "--device", "d1", "--title", "nope"], "", "no title 'nope'"),
        (["meter", "record", "--device", "d1", "--title", "euronews", "--article", "a", "--at", "2099-01-01"], "", "no later than now"),
        (["billing", "map", "stripe", "price 1; drop", "news"], "", "invalid product 'price 1; drop'"),
        (["token", "issue", "--account", "ada@example.com", "--aud", ""], "", "no audience given"),
        (["membership", "grant", "ada@example.com", "--plan", "news", "--for", "0d"], "", "a whole number above 0"),
        (["membership", "grant", "ada@example.com", "--plan", "news", "--for", "-5d"], "", "invalid duration '-5d'"),
        (["token", "revoke-admin", "--subject", "nobody-ever"], "", "no admin token was minted here for 'nobody-ever'"),
        (["title", "update", "nope", "--name", "X"], "", "no title 'nope'"),
        (["billing", "dismiss", "evt_nope", "--reason", "typo"], "", "no stripe event 'evt_nope' was received"),
        (["title", "update", "euronews", "--publisher", "   "], "", "invalid publisher name"),
        (["plan", "update", "nope", "--name", "X"], "", "no plan 'nope'"),
        (["plan", "update", "news", "--titles", "euronews,nope"], "", "no title 'nope'"),
        (["account", "set-email", "nobody@example.com", "new@example.com"], "", "no account 'nobody@example.com'"),
        (["account", "set-email", "ada@example.com", "not an address"], "", "invalid email address"),
        (["account", "set-email", "ada@example.com", "Ada@Example.com"], "", "the account's address already"),
        (["account", "sign-out", "nobody@example.com"], "", "no account 'nobody@example.com'"),
        (["plan", "delete", "nope", "--yes"], "", "no plan 'nope'"),
    ] as [([String], String, String)])
    func refused(arguments: [String], input: String, message: String) throws {
        let cli = try seeded()
        let before = try cli.snapshot()
        let result = try cli.run(arguments, input: input)
        #expect(result.status == 1, "exit \(result.status): \(result.stderr)")
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("paywall: error: "))
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stdout.isEmpty)
        #expect(try cli.snapshot() == before)
    }

    @Test("verified email and title tags: set by admins, shown, audited")
    func verificationAndTags() throws {
        let cli = try seeded()
        let shown = try cli.json(try cli.run(["account", "show", "ada@example.com", "--json"]).stdout) as? [String: Any]
        #expect((shown?["account"] as? [String: Any])?["emailVerified"] as? Bool == false)
        let verified = try cli.run(["account", "verify-email", "ada@example.com"])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("verified at"))
        let again = try cli.json(try cli.run(["account", "show", "ada@example.com", "--json"]).stdout) as? [String: Any]
        #expect((again?["account"] as? [String: Any])?["emailVerified"] as? Bool == true)
        #expect(try cli.run(["account", "show", "ada@example.com"]).stdout.contains("(verified)"))

        let tagged = try cli.run(["title", "tag", "euronews", "--tag", "News", "--tag", "europe,video", "--json"])
        #expect(tagged.status == 0, "\(tagged.stderr)")
        #expect((try cli.json(tagged.stdout) as? [String: Any])?["tags"] as? [String] == ["europe", "news", "video"])
        #expect(try cli.run(["title", "list"]).stdout.contains("europe,news,video"))
        let audit = try cli.run(["audit", "list", "--json"]).stdout
        #expect(audit.contains("account.verify-email") && audit.contains("title.set-tags"))
        #expect(try cli.run(["title", "tag", "euronews"]).stdout.contains("tags: -"), "no --tag clears them")
    }

    @Test("account set-email: the new address unconfirmed with a link in the outbox, or --confirmed; a taken one refused; audited")
    func setEmail() throws {
        let cli = try seeded()
        #expect(try cli.run(["account", "create", "--email", "bob@example.com"], input: "correct horse battery\n").status == 0)
        #expect(try cli.run(["account", "verify-email", "ada@example.com"]).status == 0)
        let before = try cli.snapshot()
        let taken = try cli.run(["account", "set-email", "ada@example.com", "BOB@example.com"])
        #expect(taken.status == 1 && taken.stderr.contains("already exists"), "\(taken.stderr)")
        #expect(try cli.snapshot() == before)

        let moved = try cli.run(["account", "set-email", "ada@example.com", "ada@new.example"])
        #expect(moved.status == 0 && moved.stdout.contains("is now <ada@new.example> (unconfirmed; a link to confirm it is in the outbox)"), "\(moved.stdout) \(moved.stderr)")
        let outbox = try cli.run(["mail", "outbox", "--json"]).stdout
        #expect(outbox.contains("ada@new.example") && outbox.contains("Your email address was changed"), "the link, and the notice to the confirmed old address")
        #expect(try cli.run(["account", "show", "Ada@Example.com"]).status == 1, "the old address names nothing now")

        #expect(try cli.run(["account", "verify-email", "ada@new.example"]).status == 0)
        let confirmed = try cli.run(["account", "set-email", "ada@new.example", "ada@third.example", "--confirmed", "--json"])
        #expect(confirmed.status == 0, "\(confirmed.stderr)")
        let shown = try #require(try cli.json(confirmed.stdout) as? [String: Any])
        #expect(shown["emailVerified"] as? Bool == true)
        // Confirmed now, not when an earlier address was.
        #expect(shown["emailVerifiedAt"] as? String == shown["updatedAt"] as? String, "\(shown)")
        let audit = try cli.run(["audit", "list", "--json"]).stdout
        #expect(audit.components(separatedBy: "account.change-email").count == 3, "\(audit)")
    }

    @Test("account export: the reader's data as JSON on stdout, audited; an unknown account refused")
    func export() throws {
        let cli = try seeded()
        #expect(try cli.run(["trial", "start", "ada@example.com"]).status == 0)
        let exported = try cli.run(["account", "export", "ada@example.com"])
        #expect(exported.status == 0, "\(exported.stderr)")
        let data = try #require(try cli.json(exported.stdout) as? [String: Any])
        #expect((data["account"] as? [String: Any])?["email"] as? String == "Ada@Example.com")
        #expect((data["trial"] as? [String: Any]) != nil && data["reads"] as? [Any] != nil)
        #expect(try cli.run(["audit", "list", "--json"]).stdout.contains("account.export"))
        let missing = try cli.run(["account", "export", "nobody@example.com"])
        #expect(missing.status == 1 && missing.stderr.contains("no account"))
    }

    @Test("account list --email: the accounts whose email starts with it, any case; bad combinations are usage errors")
    func listByEmail() throws {
        let cli = try seeded()
        #expect(try cli.run(["account", "create", "--email", "adam@example.com"], input: "correct horse battery\n").status == 0)
        #expect(try cli.run(["account", "create", "--email", "bob@example.com"], input: "correct horse battery\n").status == 0)
        let found = try cli.run(["account", "list", "--email", "AD", "--json"])
        #expect(found.status == 0, "\(found.stderr)")
        #expect((try cli.json(found.stdout) as? [[String: Any]])?.compactMap { $0["email"] as? String } == ["Ada@Example.com", "adam@example.com"])
        #expect(try cli.run(["account", "list", "--email", "ad", "--offset", "1"]).status == 64)
        #expect(try cli.run(["account", "list", "--email", "ad", "--limit", "5000"]).status == 64)
        let bad = try cli.run(["account", "list", "--email", "a b"])
        #expect(bad.status == 1 && bad.stderr.contains("the start of an email address"), "\(bad.stderr)")
    }

    @Test("title retire (with --yes) and restore: listed as retired, the plans it left said, audited")
    func retireTitle() throws {
        let cli = try seeded()
        #expect(try cli.run(["title", "retire", "euronews"]).status == 64, "--yes is needed")
        let retired = try cli.run(["title", "retire", "euronews", "--yes"])
        #expect(retired.status == 0 && retired.stdout.contains("title euronews retired; it left the plans news"), "\(retired.stdout) \(retired.stderr)")
        #expect(retired.stderr.contains("paywall: warning: news now grant no title") && !retired.stdout.contains("warning"), "\(retired.stdout) \(retired.stderr)")
        let listed = try cli.run(["title", "list"]).stdout
        #expect(listed.contains("retired ") && listed.contains("in the catalog"), "\(listed)")
        let plan = try cli.run(["plan", "update", "news", "--titles", "euronews"])
        #expect(plan.status == 1 && plan.stderr.contains("no longer in the catalog"), "\(plan.stderr)")
        let restored = try cli.run(["title", "restore", "euronews"])
        #expect(restored.status == 0 && restored.stdout.contains("in the catalog again"))
        #expect(try cli.run(["plan", "update", "news", "--titles", "euronews"]).status == 0)
        let audit = try cli.run(["audit", "list", "--json"]).stdout
        #expect(audit.contains("title.retire") && audit.contains("title.restore"))
    }

    @Test("a second trial for the same person is refused", arguments: ["ada@example.com", "ADA+again@example.com"])
    func secondTrial(email: String) throws {
        let cli = try seeded()
        #expect(try cli.run(["trial", "start", "ada@example.com"]).status == 0)
        if email != "ada@example.com" {
            #expect(try cli.run(["account", "create", "--email", email], input: "correct horse battery\n").status == 0)
        }
        let before = try cli.snapshot()
        let result = try cli.run(["trial", "start", email])
        #expect(result.status == 1)
        #expect(result.stderr.contains("already had a free trial"))
        #expect(try cli.snapshot() == before)
    }

    @Test("usage errors exit 64 and explain", arguments: [
        ["plan", "add", "x", "--name", "X", "--period", "month"],
        ["plan", "add", "x", "--name", "X", "--period", "month", "--all", "--titles", "a"],
        ["account", "delete", "ada@example.com"],
        ["meter", "record", "--title", "euronews", "--article", "a"],
        ["membership", "grant", "ada@example.com", "--plan", "news", "--until", "2099-01-01", "--for", "3d"],
        ["account", "list", "--limit", "0"],
        ["trial", "start", "ada@example.com", "--days", "0"],
        ["account", "frobnicate"],
        ["policy", "decide", "--anonymous", "--title", "euronews", "--article", "a", "--country", "Germany"],
        ["policy", "history", "--limit", "0"],
        ["title", "add", "t", "--name", "T", "--publisher", "P", "--actor", "two words"],
        ["help", "nonsense"],
        ["account", "list", "--limit", "-1"],
        ["trial", "start", "ada@example.com", "--days", "-3"],
        ["help", "meter", "bogus"],
    ])
    func usage(arguments: [String]) throws {
        let cli = try seeded()
        let before = try cli.snapshot()
        let result = try cli.run(arguments)
        #expect(result.status == 64, "exit \(result.status)")
        #expect(result.stderr.contains("Error:"))
        #expect(try cli.snapshot() == before)
    }

    @Test("a misspelt PAYWALL_ variable is a usage error for every command, naming the setting meant; nothing is made or written")
    func misspeltSetting() throws {
        let cli = try seeded()
        let before = try cli.snapshot()
        for (command, variable, meant) in [
            (["account", "list"], "PAYWALL_DBB", "PAYWALL_DB"), (["title", "add", "x", "--name", "X", "--publisher", "P"], "PAYWALL_SCRYPT_LOGN", "PAYWALL_SCRYPT_LN"),
            (["keys", "list"], "PAYWALL_KEY", "PAYWALL_KEYS"), (["policy", "check"], "PAYWALL_POLICY", "PAYWALL_POLICIES"),
        ] {
            let result = try cli.run(command, extraEnvironment: [variable: "/somewhere/else"])
            #expect(result.status == 64, "\(command) \(variable): exit \(result.status)")
            #expect(result.stderr.contains("\(variable) is not a setting of paywall (did you mean \(meant)?)"), "\(result.stderr)")
            #expect(!result.stderr.contains("/somewhere/else"), "the value is not echoed (it may be a secret)")
        }
        #expect(try cli.snapshot() == before)
        // A server's settings and a test's variables are not typos for a command.
        #expect(try cli.run(["account", "list"], extraEnvironment: ["PAYWALL_PORT": "8080", "PAYWALL_SECURE_COOKIES": "1", "PAYWALL_TEST_ANYTHING": "x"]).status == 0)
    }

    @Test("a file that is not SQLite: exit 2 and the file named")
    func notADatabase() throws {
        let cli = try CLIHarness()
        let path = cli.folder.appendingPathComponent("notes.txt").path
        try Data("shopping list: eggs, milk\n".utf8).write(to: URL(fileURLWithPath: path))
        for command in [["account", "list"], ["title", "add", "x", "--name", "X", "--publisher", "P"], ["db", "check"], ["db", "migrate"]] {
            let result = try cli.run(command + ["--db", path])
            #expect(result.status == 2)
            #expect(result.stderr == "paywall: error: \(path) is not a SQLite database (wrong file, or encrypted)\n")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "shopping list: eggs, milk\n")
    }

    @Test("a database locked by another process: exit 2 after the timeout, nothing written")
    func locked() throws {
        let cli = try seeded()
        let before = try cli.snapshot()
        let locker = try LockHolder(path: cli.database)
        defer { locker.release() }
        let result = try cli.run(["title", "add", "x", "--name", "X", "--publisher", "P"], extraEnvironment: ["PAYWALL_BUSY_TIMEOUT": "0.3"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(cli.database) is locked by another process"))
        // An import's batch meets the same lock: the database's failure (2), not a bad line.
        let read = #"{"device":"d1","title":"euronews","article":"a1"}"#
        let imported = try cli.run(["meter", "import"], input: read + "\n", extraEnvironment: ["PAYWALL_BUSY_TIMEOUT": "0.3"])
        #expect(imported.status == 2 && imported.stderr.contains("is locked") && !imported.stderr.contains("line 1:"), "\(imported.stderr)")
        locker.release()
        #expect(try cli.snapshot() == before)
    }

    @Test("reading commands on a missing database say so instead of creating it")
    func missingDatabase() throws {
        let cli = try CLIHarness()
        // Every command with nothing to do on a new database, a backup included (a mistyped
        // --db in a cron job must fail, not back up an empty file), and a server without --demo.
        for arguments in [["account", "list"], ["db", "backup", cli.folder.appendingPathComponent("backup.sqlite").path],
                          ["billing", "products"], ["billing", "failures"], ["billing", "show", "a@example.com"], ["serve", "--port", "0"]] {
            let result = try cli.run(arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("no such file") && result.stderr.contains("'paywall db migrate' creates a new database"), "\(arguments): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: cli.database), "\(arguments)")
        }
        #expect(!FileManager.default.fileExists(atPath: cli.folder.appendingPathComponent("backup.sqlite").path))
        // A folder, or another database's URL, named as the database.
        for (location, words) in [(cli.folder.path, "it is a folder"), ("mysql://db.example/paywall", "'mysql://' is not a database paywall uses"),
                                  ("postgress://paywall:hunter2@db.example/paywall", "'postgress://' is not a database paywall uses")] {
            let result = try cli.run(["account", "list", "--db", location])
            #expect(result.status == 2 && result.stderr.contains(words), "\(location): \(result.stderr)")
            #expect(!result.stderr.contains("hunter2"), "a password in a mistyped URL is not shown")
        }
        #expect(try cli.run(["db", "migrate"]).status == 0)
        #expect(try cli.run(["account", "list", "--json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]")
        // A mistyped key folder: refused, not listed (or published) as an empty key set, and
        // not created with its missing parents by a command that signs.
        let typo = cli.folder.appendingPathComponent("Kyes").path
        for arguments in [["keys", "jwks", "--keys", typo], ["keys", "list", "--keys", typo]] {
            let result = try cli.run(arguments)
            #expect(result.status == 2 && result.stderr.contains("no key folder") && result.stdout.isEmpty, "\(arguments): \(result.stderr)")
        }
        // The key listings read the key folder alone: a machine holding only Keys/ (no
        // database at all) publishes the JWKS.
        let keysOnly = try CLIHarness()
        #expect(try keysOnly.run(["db", "migrate"]).status == 0)
        #expect(try keysOnly.run(["keys", "generate"]).status == 0)
        try FileManager.default.removeItem(atPath: keysOnly.database)
        let published = try keysOnly.run(["keys", "jwks"])
        #expect(published.status == 0 && published.stdout.contains("\"kty\""), "\(published.stderr)")
        #expect(try keysOnly.run(["keys", "list"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: keysOnly.database), "no database made")
        let deep = cli.folder.appendingPathComponent("missing/Keys").path
        let signing = try cli.run(["keys", "generate", "--keys", deep])
        #expect(signing.status == 2 && signing.stderr.contains("does not exist"), "\(signing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.folder.appendingPathComponent("missing").path))
    }

    @Test("weak password hashing is refused outside tests")
    func weakHashing() throws {
        let cli = try CLIHarness()
        let result = try cli.run(["account", "create", "--email", "b@example.com"], input: "correct horse battery\n", extraEnvironment: ["PAYWALL_TESTING": "0"])
        #expect(result.status == 64, "an invalid setting is a usage error, as for 'serve'")
        #expect(result.stderr.contains("below OWASP's minimum"))
        let busy = try cli.run(["account", "list"], extraEnvironment: ["PAYWALL_BUSY_TIMEOUT": "abc"])
        #expect(busy.status == 64 && busy.stderr.contains("PAYWALL_BUSY_TIMEOUT"), "\(busy.stderr)")
    }

    @Test("--help explains each command")
    func help() throws {
        let cli = try CLIHarness()
        let root = try cli.run(["--help"])
        #expect(root.status == 0)
        for command in ["account", "title", "plan", "membership", "trial", "meter", "audit", "db"] {
            #expect(root.stdout.contains(command))
            let sub = try cli.run([command, "--help"])
            #expect(sub.status == 0)
            #expect(sub.stdout.contains("SUBCOMMANDS"))
        }
        #expect(try cli.run(["account", "create", "--help"]).stdout.contains("standard input"))
    }
}

@Suite("paywall db backup on an older schema")
struct BackupSchemaTests {
    @Test("db backup copies the file as its schema stands: a newer paywall neither migrates the live file nor the copy")
    func backupDoesNotMigrate() throws {
        let cli = try CLIHarness()
        guard cli.schema == nil else { return }  // SQLite's online backup
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "Euronews SA"]).status == 0)
        // The file as the previous version left it: the newest migration not applied.
        let newest = try #require(Migrations.identifiers.last)
        let store = try Store(location: cli.database)
        try store.write { db in
            try db.execute("DROP TABLE site_secrets", [])
            try db.execute("ALTER TABLE session_devices DROP COLUMN last_used_at", [])
            try db.execute("DELETE FROM grdb_migrations WHERE identifier = ?", [newest])
        }
        try store.close()
        let backup = cli.folder.appendingPathComponent("old.sqlite").path
        let result = try cli.run(["db", "backup", backup])
        #expect(result.status == 0, "\(result.stderr)")
        for path in [cli.database, backup] {
            var configuration = StoreConfiguration()
            configuration.migrate = false
            let opened = try Store(location: path, configuration: configuration)
            defer { try? opened.close() }
            #expect(try !opened.appliedMigrations().contains(newest), "\(path) was migrated")
        }
    }
}

@Suite("paywall membership past-due and trial end (as the admin API's)")
struct PastDueAndTrialEndCLITests {
    @Test("past-due: the membership reads until the grace end, audited; a grace end passed, an unknown account or plan: refused, nothing stored. trial end: ended, audited; none to end: refused")
    func pastDueAndTrialEnd() throws {
        let cli = try CLITests().seeded()
        #expect(try cli.run(["membership", "grant", "ada@example.com", "--plan", "news"]).status == 0)
        let before = try cli.run(["membership", "show", "ada@example.com", "--json"]).stdout
        for (arguments, message) in [(["--grace-end", "2001-01-01"], "graceEnd"), (["--grace-end", "soon"], "soon"), (["--plan", "nope", "--grace-end", "2099-01-01"], "nope")] {
            let refused = try cli.run(["membership", "past-due", "ada@example.com"] + arguments)
            #expect(refused.status != 0 && refused.stdout.isEmpty && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
        #expect(try cli.run(["membership", "past-due", "nobody@example.com", "--grace-end", "2099-01-01"]).status == 1)
        #expect(try cli.run(["membership", "show", "ada@example.com", "--json"]).stdout == before, "nothing stored")
        let marked = try cli.run(["membership", "past-due", "ada@example.com", "--grace-end", "2099-01-01", "--json", "--actor", "ops"])
        #expect(marked.status == 0, "\(marked.stderr)")
        #expect((try cli.json(marked.stdout) as? [String: Any])?["status"] as? String == "past_due", "\(marked.stdout)")

        #expect(try cli.run(["trial", "end", "ada@example.com"]).status == 1, "no trial to end")
        #expect(try cli.run(["trial", "start", "ada@example.com", "--days", "14"]).status == 0)
        let ended = try cli.run(["trial", "end", "ada@example.com", "--actor", "ops"])
        #expect(ended.status == 0 && ended.stdout.contains("ended"), "\(ended.stdout) \(ended.stderr)")
        let audit = try cli.run(["audit", "list", "--json"]).stdout
        let actions = (try cli.json(audit) as? [[String: Any]])?.filter { $0["actor"] as? String == "admin:ops" }.compactMap { $0["action"] as? String } ?? []
        #expect(actions.count == 2, "\(actions)")
        #expect(try cli.run(["trial", "start", "ada@example.com"]).status == 1, "the person's one trial stays used")
    }
}
