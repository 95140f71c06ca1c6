import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallStore

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the append-only audit log.",
        subcommands: [List.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List audit entries, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only entries about this account (email or id).") var account: String?
        @Option(help: "Only entries about this target, e.g. title:euronews.") var target: String?
        @Option(help: "At most this many entries.") var limit = 50

        func validate() throws {
            if account != nil, target != nil { throw ValidationError("give at most one of --account and --target") }
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        }

        func run() throws {
            try global.run(readOnly: true) { service in
                var filter = target
                if let account { filter = "account:\(try service.account(account).id)" }
                let entries = try service.store.auditEntries(target: filter, limit: limit).map(AuditView.init)
                let out = Output(json: global.json)
                if global.json { out.emit(entries); return }
                out.table(["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAILS"], entries.map {
                    ["\($0.id)", $0.at.text, $0.actor, $0.action, $0.target, $0.details]
                })
            }
        }
    }
}

struct DatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Migrate, check and back up the database.",
        subcommands: [Migrate.self, Check.self, Backup.self]
    )

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the database or bring its schema up to date.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run { service in
                let applied = try service.store.appliedMigrations()
                if global.json {
                    Output(json: true).emit(["path": service.store.path, "migrations": applied.joined(separator: ",")])
                } else {
                    print("\(service.store.path) is up to date (\(applied.count) migrations: \(applied.joined(separator: ", ")))")
                }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the database's integrity, foreign keys and schema version without changing it.",
            discussion: "Exits 0 when healthy, 1 when something is wrong (listed)."
        )
        @OptionGroup var global: GlobalOptions

        struct View: Encodable {
            var path: String
            var healthy: Bool
            var integrity: [String]
            var foreignKeyViolations: [String]
            var appliedMigrations: [String]
            var pendingMigrations: [String]
            var accounts: Int
            var auditEntries: Int
        }

        func run() throws {
            var healthy = true
            try global.run(readOnly: true) { service in
                let health = try service.store.health()
                healthy = health.isHealthy
                let view = View(
                    path: service.store.path, healthy: health.isHealthy, integrity: health.integrity,
                    foreignKeyViolations: health.foreignKeyViolations, appliedMigrations: health.appliedMigrations,
                    pendingMigrations: health.pendingMigrations, accounts: try service.store.accountCount(),
                    auditEntries: try service.store.auditCount())
                let out = Output(json: global.json)
                if global.json { out.emit(view); return }
                out.fields([
                    ("database", view.path),
                    ("integrity", view.integrity.joined(separator: "; ")),
                    ("foreign keys", view.foreignKeyViolations.isEmpty ? "ok" : view.foreignKeyViolations.joined(separator: "; ")),
                    ("schema", "\(view.appliedMigrations.count)/\(Store.knownMigrations.count) migrations" + (view.pendingMigrations.isEmpty ? "" : " (pending: \(view.pendingMigrations.joined(separator: ", ")))")),
                    ("accounts", String(view.accounts)),
                    ("audit entries", String(view.auditEntries)),
                    ("result", view.healthy ? "healthy" : "PROBLEMS FOUND"),
                ])
            }
            if !healthy {
                printError("\(global.databasePath) failed its check")
                throw ExitStatus.refused
            }
        }
    }

    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the database, consistently and while in use, to a new file.",
            discussion: "Uses SQLite's online backup; the destination must not exist."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The new file to write.") var destination: String

        func run() throws {
            try global.run { service in
                try service.store.backup(to: destination)
                try service.store.recordAudit(actor: global.auditActor, action: "db.backup", target: "db", details: ["destination": destination])
                if global.json { Output(json: true).emit(["result": "backed-up", "destination": destination]) } else { print("backed up \(service.store.path) to \(destination)") }
            }
        }
    }
}
