import ArgumentParser

/// The `paywall` command: administer accounts, the catalog, entitlements and the database.
@main
struct Paywall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paywall",
        abstract: "Paywall and subscription entitlement service.",
        discussion: """
            Start with 'paywall serve --demo' (the HTTP API with a sample catalog). Every \
            command works on one database, a SQLite file or a postgres:// URL: --db, else $PAYWALL_DB, else \
            ./paywall.sqlite (created and migrated on first use), and signs with the keys in \
            --keys DIR, else $PAYWALL_KEYS, else ./Keys (the admin commands create a development \
            key on first use and say so; PAYWALL_DEV_KEYS=0 refuses; 'serve' without --demo never \
            does). Add --json for machine-readable output. Exit status: 0 success; 1 refused \
            (bad input, not found, conflict, unauthorized); 2 the database or the keys cannot be \
            used (locked, read-only, corrupt, not SQLite, unsafe key files); 64 usage error. \
            Every change is recorded in the audit log ('paywall audit list').
            """,
        subcommands: [
            ServeCommand.self, AccountCommand.self, TitleCommand.self, PlanCommand.self, MembershipCommand.self,
            TrialCommand.self, MeterCommand.self, PolicyCommand.self, KeysCommand.self, TokenCommand.self, AuditCommand.self, DatabaseCommand.self, MailCommand.self,
            BillingCommand.self,
        ]
    )
}
