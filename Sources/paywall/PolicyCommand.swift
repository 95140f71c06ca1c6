import ArgumentParser
import Foundation
import PaywallCore
import PaywallPolicy
import PaywallService
import PaywallViews

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check, test, try and publish the paywall rules in Policies/.",
        discussion: """
            The language is documented in Policies/README.md. A server runs the newest policy \
            published to its database ('policy publish'), or its policy folder when none was \
            published; servers sharing a database switch to a new publication within seconds.
            """,
        subcommands: [Check.self, Test.self, Decide.self, Diff.self, Publish.self, History.self, Rollback.self]
    )

    /// Options of the commands that read a policy folder but no database.
    struct Folder: ParsableArguments {
        @Argument(help: "The policy folder (default: $PAYWALL_POLICIES, else ./Policies).") var directory: String?

        /// Loads and checks the folder (the service prints nothing; errors go through `fail`).
        func load() throws -> (URL, Policy) {
            do {
                var overrides = ServiceConfiguration.Overrides()
                overrides.policyDirectory = directory
                overrides.knownEnvironment = knownSettings
                let configuration = try ServiceConfiguration.resolve(environment: ProcessInfo.processInfo.environment, overrides: overrides)
                let folder = configuration.policyDirectory
                return (folder, try PaywallService.checkPolicy(directory: folder))
            } catch {
                throw fail(error)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a policy folder: syntax, attributes, types, meters, duplicate names, rules that can never match.",
            discussion: "Errors print as file:line:column with the line and a caret. Exit 0 when clean, 1 otherwise."
        )
        @OptionGroup var folderOption: Folder
        @Flag(help: "Print machine-readable JSON.") var json = false

        func run() throws {
            let (folder, policy) = try folderOption.load()
            if json {
                struct Checked: Encodable { var folder: String; var revision: String; var rules: Int; var meters: Int; var result = "ok" }
                Output(json: true).emit(Checked(folder: folder.path, revision: policy.revision, rules: policy.ruleNames.count, meters: policy.meters.count))
            } else {
                print("\(folder.path): ok — \(policy.ruleNames.count) rules, \(policy.meters.count) meters, \(policy.titleSections.count) title sections (revision \(policy.revision))")
            }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the policy tests in FOLDER/tests and report rules no test exercises.",
            discussion: "Exit 0 when every test passes, 1 otherwise."
        )
        @OptionGroup var folderOption: Folder

        func run() throws {
            let (folder, policy) = try folderOption.load()
            let tests: [PolicyTestCase]
            do {
                tests = try PolicyTestRunner.load(directory: folder.appendingPathComponent("tests"), policy: policy)
            } catch {
                printError(error.description)
                throw ExitStatus.refused
            }
            let results = PolicyTestRunner.run(tests, policy: policy)
            for result in results where !result.passed {
                print("FAIL \(result.test.name) (\(URL(fileURLWithPath: result.test.file).lastPathComponent))")
                for failure in result.failures { print("     \(failure)") }
            }
            let unexercised = PolicyTestRunner.unexercisedRules(results, policy: policy)
            for rule in unexercised { print("not exercised by any test: rule \"\(rule)\"") }
            let failed = results.filter { !$0.passed }.count
            print("\(results.count - failed) passed, \(failed) failed")
            if failed > 0 { throw ExitStatus.refused }
        }
    }

    struct Decide: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide for a reader, title and article, from the real store.",
            discussion: "Example: paywall policy decide --account ada@example.com --title euronews --article a1 --explain"
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "A signed-in reader: email or account id.") var account: String?
        @Flag(help: "An anonymous reader.") var anonymous = false
        @Option(help: "The anonymous reader's device id (for the meter).") var device: String?
        @Option(help: "The title id.") var title: String
        @Option(help: "The article id.") var article: String
        @Option(help: "Decide as of this instant (ISO 8601; default now).") var at: String?
        @Option(help: "The reader's IP address.") var ip: String?
        @Option(help: "The request's country code.") var country: String?
        @Option(help: "web, app, rss, email or api.") var channel = "web"
        @Flag(help: "The publisher marked the article free.") var free = false
        @Option(help: "The article's section.") var section: String?
        @Option(help: "An article tag (repeatable).") var tag: [String] = []
        @Option(help: "When the article was published (ISO 8601).") var published: String?
        @Option(help: "The policy folder, used even when a policy was published to the database (default: the newest publication, else $PAYWALL_POLICIES, else ./Policies).") var policies: String?
        @Flag(help: "List every rule, whether it matched, and which part failed.") var explain = false
        @Flag(help: "Record the read when it uses the meter.") var record = false

        func validate() throws {
            if (account == nil) == !anonymous { throw ValidationError("give exactly one of --account and --anonymous") }
            if device != nil, !anonymous { throw ValidationError("--device is for --anonymous readers") }
            guard ["web", "app", "rss", "email", "api"].contains(channel) else { throw ValidationError("--channel is web, app, rss, email or api") }
            if let country, !(country.count == 2 && country.allSatisfy({ $0.isASCII && $0.isLetter })) {
                throw ValidationError("--country is a two-letter ISO 3166 code, e.g. DE or FR")
            }
        }

        func run() throws {
            try global.run(readOnly: !record, policies: policies, policyFolderFirst: policies != nil) { service in
                var request = RequestFacts()
                if let ip {
                    guard let address = IPAddress(ip) else { throw CLIFailure("--ip '\(ip)' is not an IPv4 or IPv6 address") }
                    request.ip = address
                }
                request.country = country?.uppercased() ?? ""
                request.channel = channel
                var input = ArticleInput(id: article)
                input.free = free
                input.section = section ?? ""
                input.tags = Set(tag)
                input.publishedAt = try published.map { try TimeText.instant($0) }
                let reader: Reader = account.map { .account($0) } ?? .anonymous(device: device)
                let decision = try service.decide(
                    reader: reader, title: title, article: input, request: request, at: try at.map { try TimeText.instant($0) },
                    explain: explain, record: record)
                let view = DecisionView(decision)
                if global.json { Output(json: true).emit(view); return }
                var fields: [(String, String)] = [
                    ("access", decision.access.description + (decision.access == .teaser ? " (\(decision.teaserParagraphs) paragraph\(decision.teaserParagraphs == 1 ? "" : "s"))" : "")),
                    ("offers", decision.offers.isEmpty ? "-" : decision.offers.map(\.description).joined(separator: ", ")),
                    ("decided by", decision.decidingRules.joined(separator: "; ")),
                ]
                if let meter = decision.meter {
                    fields.append(("meter", "\(meter.name): \(meter.used)/\(meter.limit) used\(meter.consumed ? " (this read uses one)" : meter.reread ? " (re-read, free)" : "")"))
                }
                if !decision.shadowMatches.isEmpty { fields.append(("shadow", decision.shadowMatches.joined(separator: "; "))) }
                fields.append(("free for all", decision.accessibleForFree ? "yes" : "no"))
                fields.append(("revision", decision.revision))
                Output(json: false).fields(fields)
                if let explanation = decision.explanation {
                    print("")
                    for trace in explanation {
                        let mark = trace.matched ? "✓" : "✗"
                        let why = trace.failedCondition.map { $0.isEmpty ? "" : "  (false: \($0))" } ?? ""
                        print("\(mark) \(trace.rule)\(trace.shadow ? " [shadow]" : "")\(why)")
                    }
                }
            }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay recorded reads through the running and a proposed policy; report what would change.",
            discussion: """
                Impact analysis before a change goes live. The proposed folder must check clean. \
                What is replayed is the metered reads the store recorded: access checks that wrote \
                nothing (members, trial readers, teasers once a meter was spent) left no record, so \
                a change that only gives more access (a higher limit, a wider members' rule) can \
                show no change here. A read is replayed with its reader, title and article id and \
                the meters as they stood; not with the article's other facts (tags, section, \
                publication time) nor the request's (channel, address, country), which are not \
                stored: rules on those are not exercised. A decision counts as changed when its \
                access, offers, teaser length or meter use would differ. Cover what a replay cannot \
                with a case in Policies/tests ('policy test').
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The proposed policy folder.") var proposed: String
        @Option(help: "Replay reads from this instant on (ISO 8601; default 30 days ago).") var since: String?
        @Option(help: "The running policy folder, used even when a policy was published (default: the newest publication, else $PAYWALL_POLICIES, else ./Policies).") var policies: String?
        @Option(parsing: .unconditional, help: "Replay at most this many reads (1 to 10000000).") var limit = 100_000

        func validate() throws {
            guard (1...10_000_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 10000000") }
        }

        func run() throws {
            try global.run(readOnly: true, policies: policies, policyFolderFirst: policies != nil) { service in
                let current = try service.policy()
                let next = try service.loadPolicy(directory: URL(fileURLWithPath: proposed))
                let start = try since.map { try TimeText.instant($0) } ?? service.now.addingTimeInterval(-30 * 86_400)
                let impact = try service.policyImpact(current: current, proposed: next, since: start, limit: limit)
                if global.json { Output(json: true).emit(PolicyImpactView(impact)); return }
                print("replayed \(impact.replayed) reads since \(start.text): \(impact.changed) decisions would change (revision \(current.revision) → \(next.revision))")
                print("(recorded metered reads only, without their articles' tags, sections and dates or their requests' facts; see 'paywall policy diff --help')")
                for (label, counts) in [("by title", impact.byTitle), ("by access", impact.byAccess), ("by rule", impact.byRule)] where !counts.isEmpty {
                    print("\n\(label):")
                    for (key, count) in counts.sorted(by: { $0.value > $1.value || $0.value == $1.value && $0.key < $1.key }) {
                        print("  \(String(count).leftPad(6))  \(key)")
                    }
                }
            }
        }
    }
}

extension PolicyCommand {
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a policy folder and publish it to the database: every server on the database switches to it.",
            discussion: """
                The folder must check clean (as 'policy check'); nothing is published otherwise. \
                Servers on the database put it in force within a few seconds (at once on \
                PostgreSQL). The publication is recorded with its author and audited; \
                'policy history' lists publications, 'policy rollback' goes back to one.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The policy folder (default: $PAYWALL_POLICIES, else ./Policies).") var directory: String?
        @Option(help: "Who publishes, as recorded in the history and the audit log (default: --actor, else the system user).") var author: String?
        @Option(help: "Why, as recorded in the history.") var note: String?

        func run() throws {
            try global.run(policies: directory) { service in
                let published = try service.publishPolicy(
                    directory: service.configuration.policyDirectory, author: author ?? global.actor ?? NSUserName(), note: note, actor: global.auditActor)
                let unknown = try service.titleSectionsNotInCatalog(try service.policy())
                if !unknown.isEmpty {
                    printWarning("the policy has sections for titles not in the catalog, whose rules apply to nothing until they are added: \(unknown.joined(separator: ", ")) (a mistyped id?)")
                }
                if global.json { Output(json: true).emit(PublishedPolicyView(published)); return }
                print("published revision \(published.revision) (publication \(published.number), \(published.files.count) file\(published.files.count == 1 ? "" : "s"), by \(published.author)) to \(service.databaseLocation)")
            }
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the policies published to the database, newest first (the first is in force).")
        @OptionGroup var global: GlobalOptions
        @Option(parsing: .unconditional, help: "At most this many (1 to 1000).") var limit = 20

        func validate() throws {
            guard (1...1_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
        }

        func run() throws {
            try global.run(readOnly: true) { service in
                let history = try service.policyHistory(limit: limit)
                if global.json { Output(json: true).emit(history.map(PublishedPolicyView.init)); return }
                if history.isEmpty {
                    print("no policy was published to \(service.databaseLocation): servers use their policy folder")
                    return
                }
                for (index, entry) in history.enumerated() {
                    let note = entry.note.map { " — \($0)" } ?? ""
                    print("\(String(entry.number).leftPad(5))  \(entry.revision)  \(entry.publishedAt.text)  \(entry.author)\(note)\(index == 0 ? "  (in force)" : "")")
                }
            }
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish again an earlier published revision: every server on the database switches back to it.",
            discussion: "REVISION is a revision from 'policy history' (or a unique prefix). The history keeps both publications."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The revision to go back to.") var revision: String
        @Option(help: "Who rolls back, as recorded (default: --actor, else the system user).") var author: String?

        func run() throws {
            try global.run { service in
                let published = try service.rollbackPolicy(to: revision, author: author ?? global.actor ?? NSUserName(), actor: global.auditActor)
                if global.json { Output(json: true).emit(PublishedPolicyView(published)); return }
                print("published revision \(published.revision) again (publication \(published.number), by \(published.author))")
            }
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
