import ArgumentParser
import Foundation

/// The `paywall` command: administer accounts, the catalog, entitlements and the database.
@main
struct Paywall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paywall",
        abstract: "Paywall and subscription entitlement service.",
        discussion: """
            Start with 'paywall serve --demo' (the HTTP API with a sample catalog). Every \
            command works on one database, a SQLite file or a postgres:// URL: --db, else $PAYWALL_DB, else \
            ./paywall.sqlite (created and migrated by the first command that changes something; one \
            that only reads, the token commands, 'db backup' and 'serve' without --demo refuse a file that does not exist), and signs with the keys in \
            --keys DIR, else $PAYWALL_KEYS, else ./Keys (the admin commands create a development \
            key on first use and say so; PAYWALL_DEV_KEYS=0 refuses; 'serve' without --demo never \
            does). Add --json for machine-readable output. Exit status: 0 success; 1 refused \
            (bad input, not found, conflict, unauthorized); 2 the database or the keys cannot be \
            used (locked, read-only, corrupt, not SQLite, unsafe key files); 64 usage error or invalid setting \
            (a flag, or a PAYWALL_* variable). \
            Every change is recorded in the audit log ('paywall audit list').
            """,
        version: "1.0.0 (API 1.0.0)",
        subcommands: [
            ServeCommand.self, AccountCommand.self, TitleCommand.self, PlanCommand.self, MembershipCommand.self,
            TrialCommand.self, MeterCommand.self, PolicyCommand.self, KeysCommand.self, TokenCommand.self, AuditCommand.self, DatabaseCommand.self, MailCommand.self,
            BillingCommand.self,
        ]
    )

    /// ArgumentParser's own `main`, except for a usage mistake a command finds once it runs
    /// (a `ValidationError` from `run()`: two options that exclude each other, an unknown
    /// provider): ArgumentParser then shows the top command's usage, which names none of the
    /// options at fault. Here it shows the usage of the command that was run.
    static func main() async {
        // `paywall help NAME…` for a command that does not exist: ArgumentParser prints the
        // top help and exits 0, which a script would take for success.
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "help", arguments.count > 1, !arguments.dropFirst().contains(where: { $0.hasPrefix("-") }) {
            var node: any ParsableCommand.Type = Paywall.self
            for name in arguments.dropFirst() {
                guard let next = node.configuration.subcommands.first(where: { commandName(of: $0) == name }) else {
                    let known = node.configuration.subcommands.map { commandName(of: $0) }.joined(separator: ", ")
                    let text = "Error: no command '\(name)' (known here: \(known))\n  See 'paywall --help' for more information.\n"
                    try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
                    Foundation.exit(ExitCode.validationFailure.rawValue)
                }
                node = next
            }
        }
        var ran: (any ParsableCommand.Type)?
        do {
            var command = try parseAsRoot()
            ran = type(of: command)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ValidationError {
            guard let ran, ran != Paywall.self else { exit(withError: error) }
            let name = ([commandName(of: ran)] + ancestors(of: ran)).reversed().joined(separator: " ")
            let text = "Error: \(error.message)\nUsage: \(usageString(for: ran))\n  See '\(name) --help' for more information.\n"
            try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }

    /// The command's name as typed.
    private static func commandName(of command: any ParsableCommand.Type) -> String {
        command.configuration.commandName ?? command._commandName
    }

    /// The names of the commands above `command`, nearest first, up to `paywall`.
    private static func ancestors(of command: any ParsableCommand.Type) -> [String] {
        func path(from node: any ParsableCommand.Type) -> [String]? {
            if node == command { return [] }
            for child in node.configuration.subcommands {
                if let rest = path(from: child) { return rest + [commandName(of: node)] }
            }
            return nil
        }
        return path(from: Paywall.self) ?? ["paywall"]
    }
}
