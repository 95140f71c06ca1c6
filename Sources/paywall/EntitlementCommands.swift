import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallViews

struct MembershipCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "membership",
        abstract: "Grant, cancel and inspect memberships.",
        subcommands: [Grant.self, Cancel.self, PastDue.self, Show.self]
    )

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grant an account a membership of a plan.",
            discussion: """
                The period ends at --until (ISO 8601 date or time), or after --for (e.g. 30d), \
                or by default one billing period of the plan from now. Granting a plan the \
                account has as canceled or past due reactivates that membership.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Option(help: "The plan id.") var plan: String
        @Option(help: "When access ends, e.g. 2027-01-01 (a bare date is its first instant, 00:00 UTC: access ends as that day begins) or 2026-12-31T23:59:59Z.") var until: String?
        @Option(name: .customLong("for"), parsing: .unconditional, help: "Length of the period, e.g. 30d, 12w.") var length: String?
        @Option(help: "Where the membership comes from: admin or comp.") var source = "admin"
        @Option(help: "Why, for the history.") var reason: String?

        func validate() throws {
            if until != nil, length != nil { throw ValidationError("give at most one of --until and --for") }
            guard ["admin", "comp"].contains(source) else { throw ValidationError("--source must be admin or comp") }
        }

        func run() throws {
            try global.run { service in
                let end = try parseEnd(until: until, for: length, now: service.now)
                let membership = try service.grantMembership(
                    account: account, plan: plan, until: end, source: MembershipSource(rawValue: source), actor: global.auditActor, reason: reason)
                let view = MembershipView(membership, now: service.now)
                if global.json { Output(json: true).emit(view) } else { print("membership #\(view.id): \(view.plan) \(view.status) until \(view.currentPeriodEnd.text)") }
            }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a membership.",
            discussion: """
                Access continues until the end of the paid period (status canceled), unless --now ends \
                it at once (expired). --at-period-end keeps it active and marks it not to renew.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Option(help: "The plan id (needed when the account has several memberships).") var plan: String?
        @Flag(help: "End access now instead of at the end of the period.") var now = false
        @Flag(name: .customLong("at-period-end"), help: "Stay active until the period ends, then do not renew.") var atPeriodEnd = false

        func validate() throws {
            if now, atPeriodEnd { throw ValidationError("give at most one of --now and --at-period-end") }
        }

        func run() throws {
            try global.run { service in
                let how: PaywallService.Cancellation = now ? .immediately : atPeriodEnd ? .atPeriodEnd : .canceled
                let membership = try service.cancelMembership(account: account, plan: plan, how: how, actor: global.auditActor)
                let view = MembershipView(membership, now: service.now)
                if global.json { Output(json: true).emit(view); return }
                if atPeriodEnd {
                    print("membership #\(view.id) (\(view.plan)) stays active until \(view.currentPeriodEnd.text) and will not renew")
                } else if now {
                    print("membership #\(view.id) (\(view.plan)) ended now")
                } else {
                    // Its period end, or its grace end when it was past due (``Membership/accessEnd``).
                    print("membership #\(view.id) (\(view.plan)) canceled; access until \(membership.accessEnd.text)")
                }
            }
        }
    }

    struct PastDue: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "past-due",
            abstract: "Mark a membership past due: it reads until --grace-end, then ends unless paid.",
            discussion: """
                As POST /admin/v1/accounts/{account}/memberships/past-due: for a payment taken by \
                hand that failed. --grace-end is an ISO 8601 date or time in the future (a bare date \
                is its first instant, 00:00 UTC). Granting the plan again makes it active.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Option(help: "The plan id (needed when the account has several memberships).") var plan: String?
        @Option(name: .customLong("grace-end"), help: "When access ends unless paid, e.g. 2027-01-08 or 2027-01-07T18:00:00Z.") var graceEnd: String

        func run() throws {
            try global.run(createDatabase: false) { service in
                let membership = try service.markPastDue(account: account, plan: plan, graceEnd: try TimeText.instant(graceEnd), actor: global.auditActor)
                let view = MembershipView(membership, now: service.now)
                if global.json { Output(json: true).emit(view); return }
                print("membership #\(view.id) (\(view.plan)) past due; access until \(membership.accessEnd.text) unless paid")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an account's memberships and their status history.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run(readOnly: true) { service in
                let (found, records) = try service.membershipRecords(account: account)
                let now = service.now
                let views = records.map { MembershipView($0.membership, now: now, history: $0.history) }
                let out = Output(json: global.json)
                if global.json { out.emit(views); return }
                if views.isEmpty { print("\(found.email) has no memberships"); return }
                out.table(MembershipView.header, views.map(\.row))
                for view in views {
                    print("\nhistory of #\(view.id):")
                    for change in view.history ?? [] {
                        print("  \(change.at.text)  \(change.from ?? "-") -> \(change.to)  by \(change.actor)\(change.reason.map { "  (\($0))" } ?? "")")
                    }
                }
            }
        }
    }
}

struct TrialCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trial",
        abstract: "Start and inspect free trials (one per person, ever).",
        subcommands: [Start.self, End.self, Show.self]
    )

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start an account's free trial.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Option(parsing: .unconditional, help: "Length in days.") var days = 14

        func validate() throws {
            guard (1...366).contains(days) else { throw ValidationError("--days must be between 1 and 366") }
        }

        func run() throws {
            try global.run { service in
                let trial = try service.startTrial(account: account, length: TimeInterval(days) * 86_400, actor: global.auditActor)
                let view = TrialView(trial, now: service.now)
                if global.json { Output(json: true).emit(view) } else { print("trial #\(view.id) started; ends \(view.endsAt.text)") }
            }
        }
    }

    struct End: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End an account's trial now (as POST /admin/v1/accounts/{account}/trial/end); the person's one trial stays used.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run(createDatabase: false) { service in
                let trial = try service.endTrial(account: account, actor: global.auditActor)
                let view = TrialView(trial, now: service.now)
                if global.json { Output(json: true).emit(view) } else { print("trial #\(view.id) ended") }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an account's trial.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run(readOnly: true) { service in
                let detail = try service.accountDetail(account)
                // --json: one shape with or without a trial, the API's (`GET .../trial`).
                if global.json { return Output(json: true).emit(TrialStatusView(detail, now: service.now)) }
                guard let trial = detail.trial else {
                    print("\(detail.account.email) has no trial (\(detail.trialEligible ? "eligible for one" : "the person already had one"))")
                    return
                }
                Output(json: false).fields(TrialView(trial, now: service.now).fields)
            }
        }
    }
}
