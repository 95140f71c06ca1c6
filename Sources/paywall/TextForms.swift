import Foundation
import PaywallViews

// The text forms of the views: what the CLI prints without --json.

extension AccountView {
    var fields: [(String, String)] {
        [("id", id), ("email", email + (emailVerified ? " (verified)" : " (not verified)")), ("name", displayName ?? "-"),
         ("created", createdAt.text), ("updated", updatedAt.text)]
    }
}

extension TrialView {
    var fields: [(String, String)] {
        [("trial", "#\(id)"), ("status", status), ("started", startedAt.text), ("ends", endsAt.text)]
    }
}

extension MembershipView {
    var row: [String] {
        ["#\(id)", plan, status, currentPeriodEnd.text, gracePeriodEnd.text, cancelAtPeriodEnd ? "yes" : "no", source]
    }
    static let header = ["ID", "PLAN", "STATUS", "PERIOD END", "GRACE END", "CANCEL AT END", "SOURCE"]
}

extension PlanView {
    var titleText: String { allTitles ? "all titles" : titles.joined(separator: ",") }
}

extension TitleView {
    var tagText: String { tags.isEmpty ? "-" : tags.joined(separator: ",") }
}
