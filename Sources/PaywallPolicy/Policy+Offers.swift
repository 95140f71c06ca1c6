import Foundation

extension Policy {
    /// The length, in days, of the free trial the policy offers: the first
    /// `offer trial N days` of an enforced rule, in policy order (nil: no trial is
    /// offered). `POST /v1/trials` starts a trial of this length, so the page's offer and
    /// what the reader gets cannot disagree.
    public var offeredTrialDays: Int? {
        var rules = globalScope.rules
        for scope in scopes.values { rules += scope.rules }
        return rules.filter { !$0.shadow }.sorted { $0.order < $1.order }.lazy
            .flatMap(\.offers)
            .compactMap { offer -> Int? in if case let .trial(days) = offer { days } else { nil } }
            .first
    }
}
