import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallViews

struct AccountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "Create, inspect and delete reader accounts.",
        subcommands: [Create.self, Show.self, List.self, VerifyEmail.self, SetEmail.self, SetPassword.self, SignOut.self, Export.self, Delete.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an account.",
            discussion: """
                The password is read from the first line of standard input (prompted for, \
                without echo, on a terminal); it must have at least 10 characters and not be \
                a commonly used password. Example:
                  printf '%s\\n' "$PASSWORD" | paywall account create --email ada@example.com --name "Ada"
                """
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "The account's email address (unique, case-insensitive).") var email: String
        @Option(help: "The reader's display name.") var name: String?

        func run() throws {
            try global.run { service in
                let password = try readPassword(prompt: "Password for \(email): ")
                let account = try service.signUp(email: email, password: password, displayName: name, actor: global.auditActor)
                let view = AccountView(account)
                if global.json { Output(json: true).emit(view) } else { print("created account \(account.id) <\(account.email)>") }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an account, its trial, memberships, devices signed in and links waiting.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run(readOnly: true) { service in
                let detail = AccountDetailView(try service.accountDetail(account), now: service.now)
                let out = Output(json: global.json)
                if global.json { out.emit(detail); return }
                var fields = detail.account.fields
                fields.append(("trial", detail.trial.map { "\($0.status) until \($0.endsAt.text)" } ?? (detail.trialEligible ? "none (eligible)" : "none (already used)")))
                let devices = detail.sessions.map { $0.deviceName ?? "unnamed" }
                fields.append(("signed in", devices.isEmpty ? "nowhere" : "\(devices.count): " + devices.joined(separator: ", ")))
                let links = detail.pendingLinks.map { link in
                    link.purpose + (link.restores.map { " of \($0)" } ?? "") + " until " + link.expiresAt.text
                }
                fields.append(("links waiting", links.isEmpty ? "none" : links.joined(separator: "; ")))
                out.fields(fields)
                if !detail.memberships.isEmpty {
                    print("")
                    out.table(MembershipView.header, detail.memberships.map(\.row))
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List accounts, oldest first, or those whose email starts with --email.",
            discussion: """
                  paywall account list --email ada@        # ada@example.com, ada@news.example…
                  paywall account list --email "rita.r"    # any case; in email order
                """)
        @OptionGroup var global: GlobalOptions
        @Option(parsing: .unconditional, help: "At most this many accounts (1 to 1000 with --email).") var limit = 100
        @Option(parsing: .unconditional, help: "Skip this many accounts first (not with --email).") var offset = 0
        @Option(help: "Only accounts whose email starts with this (any case), in email order.") var email: String?

        func validate() throws {
            guard limit > 0, limit <= 100_000 else { throw ValidationError("--limit must be between 1 and 100000") }
            guard offset >= 0 else { throw ValidationError("--offset must not be negative") }
            if email != nil {
                guard limit <= 1_000 else { throw ValidationError("--limit must be between 1 and 1000 with --email") }
                guard offset == 0 else { throw ValidationError("--offset does not go with --email (narrow the prefix instead)") }
            }
        }

        func run() throws {
            try global.run(readOnly: true) { service in
                let found = try email.map { try service.accounts(emailPrefix: $0, limit: limit) } ?? service.accounts(limit: limit, offset: offset)
                let accounts = found.map(AccountView.init)
                let out = Output(json: global.json)
                if global.json { out.emit(accounts); return }
                out.table(["ID", "EMAIL", "NAME", "CREATED"], accounts.map { [$0.id, $0.email, $0.displayName ?? "-", $0.createdAt.text] })
            }
        }
    }

    struct VerifyEmail: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-email",
            abstract: "Mark an account's email address as verified.",
            discussion: """
                For an address checked by other means (support, a partner's list). Policies read it \
                as user.emailVerified, e.g. a university's licence for verified addresses at its \
                domain. Idempotent: the first verification time stays. Audited.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run { service in
                let verified = try service.markEmailVerified(account: account, method: "admin", actor: global.auditActor)
                if global.json { Output(json: true).emit(AccountView(verified)) } else {
                    print("email of \(verified.id) <\(verified.email)> verified at \(verified.emailVerifiedAt.text)")
                }
            }
        }
    }

    struct SetEmail: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-email",
            abstract: "Change an account's email address (for a reader who lost the old mailbox).",
            discussion: """
                The new address is unconfirmed until the reader uses the link mailed to it, \
                unless --confirmed says you checked it by other means. Links mailed to the old \
                address stop working, and the old address is told, without the undo link a \
                reader's own change sends (whoever holds a mailbox the reader lost must not get \
                a way back in). Readers change their own with their password (POST /v1/me/email, the account page).
                  paywall account set-email ada@example.com ada@new.example
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Argument(help: "The new email address (unique, case-insensitive).") var email: String
        @Flag(help: "The new address is confirmed already (checked by other means): no link is mailed.") var confirmed = false

        func run() throws {
            try global.run { service in
                let (changed, mail) = try service.changeEmail(account: account, to: email, confirmed: confirmed, actor: global.auditActor)
                if global.json { Output(json: true).emit(AccountView(changed)) } else {
                    let state = changed.emailVerifiedAt != nil ? "confirmed" : mail != nil ? "unconfirmed; a link to confirm it is in the outbox" : "unconfirmed"
                    print("email of \(changed.id) is now <\(changed.email)> (\(state))")
                }
            }
        }
    }

    struct SetPassword: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Set an account's password (read from standard input) and sign it out everywhere."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run { service in
                let found = try service.account(account)
                let password = try readPassword(prompt: "New password for \(found.email): ")
                try service.setPassword(account: found.id.rawValue, password: password, actor: global.auditActor)
                if global.json { Output(json: true).emit(["id": found.id.rawValue, "result": "password-set"]) } else { print("password set for \(found.email)") }
            }
        }
    }

    struct SignOut: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign-out",
            abstract: "Sign a reader out everywhere: every session and every access token issued so far end.",
            discussion: """
                For a reader whose device or password was taken. Their apps and pages must sign \
                in again; access tokens issued before are refused at once by this database's \
                servers (the others within moments; a verifier with the JWKS alone honours them \
                until they expire). The password \
                stays: if it was taken, set a new one (set-password, which signs out too). \
                Audited. Example:
                  paywall account sign-out ada@example.com
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run { service in
                let (found, ended) = try service.signOutEverywhere(account: account, actor: global.auditActor)
                if global.json {
                    Output(json: true).emit(SignedOutView(account: found.id.rawValue, endedSessions: ended))
                } else {
                    print("signed \(found.email) out everywhere: \(ended) session\(ended == 1 ? "" : "s") ended, access tokens issued before refused")
                }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Everything stored about a reader, as JSON (a request for their data).",
            discussion: """
                The account, memberships with their histories, trial, devices signed in, reads, \
                gifts, payment links, subscriptions and events, the audit entries about or by \
                the account, the mail queued about it (no bodies) and links mailed and not used (no \
                tokens): what readers download themselves (POST /v1/me/export, the account \
                page). Written to standard output; audited. Example:
                  paywall account export ada@example.com > ada.json
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run { service in
                Output(json: true).emit(AccountExportView(try service.exportAccount(account, actor: global.auditActor)))
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an account with its memberships, sessions and reads.",
            discussion: """
                The person's trial stays recorded: a re-created account gets no second trial. \
                Refused while Stripe or the App Store still renews a membership of the account \
                (the reader would go on paying for an account that is gone): cancel it with the \
                provider first, or add --even-if-renewing once it is cancelled there.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Flag(help: "Confirm the deletion (required).") var yes = false
        @Flag(help: "Delete even though a payment provider still renews a membership of the account.") var evenIfRenewing = false

        func validate() throws {
            guard yes else { throw ValidationError("deleting an account cannot be undone; add --yes to confirm") }
        }

        func run() throws {
            try global.run { service in
                let deleted = try service.deleteAccount(account, evenIfRenewing: evenIfRenewing, actor: global.auditActor)
                if global.json { Output(json: true).emit(["id": deleted.id.rawValue, "result": "deleted"]) } else { print("deleted account \(deleted.id) <\(deleted.email)>") }
            }
        }
    }
}
