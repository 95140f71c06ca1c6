import Foundation
import PaywallCore
import PaywallStore

/// JSON shapes of the CLI's output. Field names are stable: scripts depend on them.
struct AccountView: Encodable {
    var id: String
    var email: String
    var displayName: String?
    var createdAt: Date
    var updatedAt: Date

    init(_ account: Account) {
        id = account.id.rawValue
        email = account.email
        displayName = account.displayName
        createdAt = account.createdAt
        updatedAt = account.updatedAt
    }

    var fields: [(String, String)] {
        [("id", id), ("email", email), ("name", displayName ?? "-"), ("created", createdAt.text), ("updated", updatedAt.text)]
    }
}

struct TitleView: Encodable {
    var id: String
    var name: String
    var publisher: String
    var createdAt: Date

    init(_ title: Title) {
        id = title.id.rawValue
        name = title.name
        publisher = title.publisher
        createdAt = title.createdAt
    }
}

struct PlanView: Encodable {
    var id: String
    var name: String
    var period: String
    /// `["*"]` for all titles.
    var titles: [String]
    var allTitles: Bool
    var createdAt: Date

    init(_ plan: Plan) {
        id = plan.id.rawValue
        name = plan.name
        period = plan.period.rawValue
        switch plan.bundle {
        case .all:
            titles = []
            allTitles = true
        case let .titles(set):
            titles = set.sorted().map(\.rawValue)
            allTitles = false
        }
        createdAt = plan.createdAt
    }

    var titleText: String { allTitles ? "all titles" : titles.joined(separator: ",") }
}

struct TrialView: Encodable {
    var id: Int64
    var accountId: String?
    var status: String
    var startedAt: Date
    var endsAt: Date

    init(_ trial: Trial, now: Date) {
        id = trial.id
        accountId = trial.accountID?.rawValue
        status = trial.status(at: now).rawValue
        startedAt = trial.startedAt
        endsAt = trial.endsAt
    }

    var fields: [(String, String)] {
        [("trial", "#\(id)"), ("status", status), ("started", startedAt.text), ("ends", endsAt.text)]
    }
}

struct MembershipView: Encodable {
    var id: Int64
    var accountId: String
    var plan: String
    var status: String
    var storedStatus: String
    var currentPeriodEnd: Date
    var gracePeriodEnd: Date?
    var cancelAtPeriodEnd: Bool
    var source: String
    var createdAt: Date
    var updatedAt: Date
    var history: [ChangeView]?

    struct ChangeView: Encodable {
        var from: String?
        var to: String
        var at: Date
        var actor: String
        var reason: String?
    }

    init(_ membership: Membership, now: Date, history: [MembershipStatusChange]? = nil) {
        id = membership.id
        accountId = membership.accountID.rawValue
        plan = membership.planID.rawValue
        status = membership.effectiveStatus(at: now).rawValue
        storedStatus = membership.status.rawValue
        currentPeriodEnd = membership.currentPeriodEnd
        gracePeriodEnd = membership.gracePeriodEnd
        cancelAtPeriodEnd = membership.cancelAtPeriodEnd
        source = membership.source.rawValue
        createdAt = membership.createdAt
        updatedAt = membership.updatedAt
        self.history = history?.map { ChangeView(from: $0.from?.rawValue, to: $0.to.rawValue, at: $0.at, actor: $0.actor, reason: $0.reason) }
    }

    var row: [String] {
        ["#\(id)", plan, status, currentPeriodEnd.text, gracePeriodEnd.text, cancelAtPeriodEnd ? "yes" : "no", source]
    }
    static let header = ["ID", "PLAN", "STATUS", "PERIOD END", "GRACE END", "CANCEL AT END", "SOURCE"]
}

struct AuditView: Encodable {
    var id: Int64
    var at: Date
    var actor: String
    var action: String
    var target: String
    var details: String

    init(_ entry: AuditEntry) {
        id = entry.id
        at = entry.at
        actor = entry.actor.rawValue
        action = entry.action
        target = entry.target
        details = entry.details
    }
}
