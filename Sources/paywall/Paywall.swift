import ArgumentParser

/// The `paywall` command: administer accounts, the catalog, entitlements and the database.
@main
struct Paywall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paywall",
        abstract: "Paywall and subscription entitlement service.",
        discussion: """
            Every command works on one SQLite database: --db PATH, else $PAYWALL_DB, else \
            ./paywall.sqlite (created and migrated on first use), and signs with the keys in \
            --keys DIR, else $PAYWALL_KEYS, else ./Keys (a development key is created on first use). Add --json for machine-readable \
            output. Exit status: 0 success; 1 refused (bad input, not found, conflict); \
            2 the database cannot be used (locked, read-only, corrupt, not SQLite); 64 usage error. \
            Every change is recorded in the audit log ('paywall audit list').
            """,
        subcommands: [
            ServeCommand.self, AccountCommand.self, TitleCommand.self, PlanCommand.self, MembershipCommand.self,
            TrialCommand.self, MeterCommand.self, PolicyCommand.self, KeysCommand.self, TokenCommand.self, AuditCommand.self, DatabaseCommand.self,
        ]
    )
}
