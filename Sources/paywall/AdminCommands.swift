import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallStore
import PaywallViews

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
        @Option(help: ArgumentHelp("Only entries by this actor, e.g. admin:alice or system (as the ACTOR column shows it).", valueName: "actor")) var by: String?
        @Option(help: "Only this action, or every action under a prefix ending in '.', e.g. membership.") var action: String?
        @Option(help: ArgumentHelp("Only entries at or after this instant (2026-11-01 or 2026-11-01T09:00:00Z).", valueName: "instant")) var since: String?
        @Option(help: ArgumentHelp("Only entries before this instant.", valueName: "instant")) var until: String?
        @Option(parsing: .unconditional, help: "At most this many entries.") var limit = 50

        func validate() throws {
            if account != nil, target != nil { throw ValidationError("give at most one of --account and --target") }
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
            // --actor is every command's "who makes this change"; listing changes nothing, and
            // taking it for a filter silently listed everything.
            if global.actor != nil { throw ValidationError("--actor names who makes a change, and listing changes nothing: to see one actor's entries, use --by (e.g. --by admin:alice)") }
        }

        func run() throws {
            var filter = AuditFilter(actor: by, action: action, target: target)
            do throws(DomainError) {
                filter.since = try since.map { (text) throws(DomainError) in try TimeText.instant(text) }
                filter.until = try until.map { (text) throws(DomainError) in try TimeText.instant(text) }
            } catch {
                throw ValidationError(error.description)
            }
            try global.run(readOnly: true) { service in
                let entries = try service.auditEntries(filter: filter, account: account, limit: limit).map(AuditView.init)
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
        abstract: "Migrate, check, back up and copy the database.",
        subcommands: [Migrate.self, Check.self, Backup.self, Prune.self, Copy.self]
    )

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the database or bring its schema up to date.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run { service in
                let applied = try service.appliedMigrations()
                if global.json {
                    Output(json: true).emit(["path": service.databaseLocation, "migrations": applied.joined(separator: ",")])
                } else {
                    print("\(service.databaseLocation) is up to date (\(applied.count) migrations: \(applied.joined(separator: ", ")))")
                }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the database's integrity, foreign keys and schema version without changing it.",
            discussion: "Exits 0 when healthy, 1 when something is wrong (listed), 2 when the file cannot be opened at all (missing, not a database, damaged past opening, locked: the message says which)."
        )
        @OptionGroup var global: GlobalOptions

        func run() throws {
            var healthy = true
            try global.run(readOnly: true) { service in
                let view = DatabaseReportView(try service.databaseReport())
                healthy = view.healthy
                let out = Output(json: global.json)
                if global.json { out.emit(view); return }
                out.fields([
                    ("database", view.path),
                    ("integrity", view.integrity.joined(separator: "; ")),
                    ("foreign keys", view.foreignKeyViolations.isEmpty ? "ok" : view.foreignKeyViolations.joined(separator: "; ")),
                    ("schema", "\(view.appliedMigrations.count)/\(view.knownMigrations) migrations" + (view.pendingMigrations.isEmpty ? "" : " (pending: \(view.pendingMigrations.joined(separator: ", ")))")),
                    ("accounts", String(view.accounts)),
                    ("audit entries", String(view.auditEntries)),
                    ("result", view.healthy ? "healthy" : "PROBLEMS FOUND"),
                ])
            }
            if !healthy {
                printError("the database failed its check")
                throw ExitStatus.refused
            }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete expired sessions, email links, old mail and moot admin token revocations.",
            discussion: "Refresh-token rows and mail sent or expired more than 7 days ago, expired links, revocations past every admin token they cover. `paywall serve` does this every hour; nothing live is touched."
        )
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run { service in
                let report = try service.prune(actor: global.auditActor)
                let out = Output(json: global.json)
                if global.json {
                    out.emit(Dictionary(uniqueKeysWithValues: report.counts.map { ($0.name, $0.count) }))
                } else {
                    print("deleted \(report.sessions) expired session rows, \(report.sessionDevices) device names, \(report.emailLinks) links, \(report.outbox) old messages, \(report.adminTokenRevocations) moot admin token revocations")
                }
            }
        }
    }

    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the database, consistently and while in use, to a new file.",
            discussion: "Uses SQLite's online backup; the destination must not exist, its folder must. The database must exist (a mistyped --db is refused, not backed up empty). It is copied as its schema stands: a backup taken with a newer paywall before an upgrade is the old schema, and the live file is not migrated under the servers still running the old one."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The new file to write.") var destination: String

        func run() throws {
            try global.run(createDatabase: false, migrate: false) { service in
                try service.backup(to: destination, actor: global.auditActor)
                if global.json { Output(json: true).emit(["result": "backed-up", "destination": destination]) } else { print("backed up \(service.databaseLocation) to \(destination)") }
            }
        }
    }

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a SQLite database into an empty PostgreSQL database.",
            discussion: """
                Moves an install from its SQLite file to PostgreSQL. Every table of --from (opened \
                read-only, read in one consistent snapshot; it must be fully migrated) is copied into \
                --to (its tables created first, as a server would) in one transaction. Before it \
                commits, the row count of every table and the audit log (the same ids and the same \
                SHA-256 chain over every entry) are compared; any difference rolls the whole copy back.

                Refused, with nothing written, when the target holds any row (copy into a new, empty \
                database or schema), when the two schemas are at different versions, or when source \
                and target are the same database. Stop the servers that write to the file first: \
                writes after the snapshot are not copied. Then point PAYWALL_DB at the URL.

                --to defaults to $PAYWALL_DB. Give a URL with a password there rather than on the \
                command line, where other users of the machine can see it: \
                PAYWALL_DB='postgres://paywall:…@db.example.com/paywall' paywall db copy --from paywall.sqlite. \
                The password is never printed.

                Exit status: 0 copied and checked; 1 refused (nothing written); 2 a database cannot be \
                used (missing, locked, unreachable).
                """
        )
        @Option(name: .long, help: ArgumentHelp("The SQLite database file to copy (opened read-only).", valueName: "path"))
        var from: String

        @Option(name: .long, help: ArgumentHelp("The PostgreSQL database to copy into (postgres://user:password@host:port/database), which must be empty.", discussion: "Default: $PAYWALL_DB.", valueName: "url"))
        var to: String?

        @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
        var json = false

        func run() throws {
            do {
                var overrides = ServiceConfiguration.Overrides()
                overrides.databaseLocation = to
                overrides.knownEnvironment = knownSettings
                let configuration = try ServiceConfiguration.resolve(environment: ProcessInfo.processInfo.environment, overrides: overrides)
                let view = DatabaseCopyView(try PaywallService.copyDatabase(from: from, configuration: configuration))
                let out = Output(json: json)
                if json { out.emit(view); return }
                // Locations as the store gives them: a URL without its password.
                print("copied \(view.source) to \(view.target)")
                out.table(["TABLE", "ROWS"], view.tables.map { [$0.table, String($0.rows)] })
                out.fields([
                    ("rows", "\(view.totalRows) in \(view.tables.count) tables, the same count in each on both sides"),
                    ("audit log", "\(view.auditEntries) \(view.auditEntries == 1 ? "entry" : "entries")" + (view.lastAuditID.map { " (last id \($0))" } ?? "") + ", the same on both sides"),
                    ("audit SHA-256", view.auditDigest),
                    ("schema", "\(view.migrations.count) migrations" + (view.migrations.last.map { " (last \($0))" } ?? "")),
                ])
            } catch {
                throw fail(error)
            }
        }
    }
}
