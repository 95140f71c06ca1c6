import Foundation
import PaywallCore
import PaywallPolicy
import PaywallStore

/// Who is reading.
public enum Reader: Sendable {
    /// A signed-in reader (email or account id).
    case account(String)
    /// An anonymous reader, with the device id the app or cookie gives, if any.
    case anonymous(device: String?)
}

/// What the caller knows about the article (the catalog stores titles, not articles).
public struct ArticleInput: Sendable {
    public var id: String
    public var free = false
    public var publishedAt: Date?
    public var section = ""
    public var tags: Set<String> = []
    public init(id: String) { self.id = id }
}

/// How a proposed policy would change the decisions on recorded reads.
public struct PolicyImpact: Sendable {
    public var replayed = 0
    public var changed = 0
    /// Changed decisions per title.
    public var byTitle: [String: Int] = [:]
    /// Changed decisions per (current deciding rule → proposed deciding rule).
    public var byRule: [String: Int] = [:]
    /// Access changes, e.g. "full → teaser".
    public var byAccess: [String: Int] = [:]
}

extension PaywallService {
    /// Loads and checks the policy set (default `./Policies`).
    public func loadPolicy(directory: URL? = nil) throws(ServiceError) -> Policy {
        do {
            return try PolicyLoader.load(directory: directory ?? configuration.policyDirectory)
        } catch {
            throw .policy(error)
        }
    }

    /// The facts a decision needs, gathered from the store as of `at`.
    public func facts(reader: Reader, title: String, article: ArticleInput, request: RequestFacts, at: Date, policy: Policy) throws(ServiceError) -> DecisionFacts {
        try mapped {
            let titleID = try TitleID(validating: title, kind: "title")
            guard let catalogTitle = try store.title(id: titleID) else { throw StoreError.titleNotFound(titleID.rawValue) }
            let articleID = try ArticleRead.validateArticleID(article.id)
            var facts = DecisionFacts(now: at)
            facts.title.id = catalogTitle.id.rawValue
            facts.title.publisher = catalogTitle.publisher
            facts.article.id = articleID
            facts.article.free = article.free
            facts.article.publishedAt = article.publishedAt ?? at
            facts.article.section = article.section
            facts.article.tags = article.tags
            facts.request = request

            let subject: MeterSubject?
            switch reader {
            case let .account(reference):
                let account = try store.account(matching: reference)
                let email = try? EmailAddress(account.email)
                facts.user.signedIn = true
                facts.user.id = account.id.rawValue
                facts.user.emailDomain = email?.domain ?? ""
                facts.user.createdAt = account.createdAt
                facts.membership = try membershipFacts(accountID: account.id, at: at)
                if let trial = try store.trial(accountID: account.id) {
                    facts.trial.active = trial.status(at: at) == .active
                    facts.trial.endsAt = trial.endsAt
                    facts.trial.eligible = false
                } else {
                    facts.trial.eligible = try email.map { try store.isTrialEligible(email: $0) } ?? false
                }
                subject = .account(account.id)
            case let .anonymous(device):
                facts.trial.eligible = true  // anyone may sign up for one
                subject = try device.map { try MeterSubject.device(validating: $0) }
            }
            facts.meters = try policy.meters.map { meter in
                guard let subject else { return MeterFacts() }
                let used = try store.meterUsage(subject: subject, window: meter.window, at: at).used
                let reread = try store.hasRead(subject: subject, title: titleID, article: articleID, window: meter.window, at: at)
                return MeterFacts(used: used, alreadyRead: reread)
            }
            return facts
        }
    }

    /// The reader's best membership at `at`, and the titles of all that grant access.
    func membershipFacts(accountID: AccountID, at: Date) throws -> MembershipFacts {
        var facts = MembershipFacts()
        let memberships = try store.memberships(accountID: accountID)
        let rank: [MembershipStatus: Int] = [.active: 3, .pastDue: 2, .canceled: 1, .expired: 0]
        let best = memberships.max { (rank[$0.status] ?? 0, $0.currentPeriodEnd) < (rank[$1.status] ?? 0, $1.currentPeriodEnd) }
        if let best {
            facts.status = best.status.rawValue
            facts.active = best.status == .active && at < best.currentPeriodEnd
            facts.plan = best.planID.rawValue
            facts.periodEnds = best.currentPeriodEnd
            facts.graceEnds = best.gracePeriodEnd ?? best.currentPeriodEnd
        }
        for live in try liveMemberships(memberships, at: at) {
            switch live.titles {
            case .all: facts.allTitles = true
            case let .titles(set): facts.titles.formUnion(set.map(\.rawValue))
            }
        }
        return facts
    }

    /// Decides for a reader, title and article. With `record`, a read that uses a meter
    /// (or re-reads) is recorded atomically: if a concurrent read took the meter's last
    /// unit meanwhile, the decision is made again on the updated meter.
    public func decide(
        reader: Reader, title: String, article: ArticleInput, request: RequestFacts = RequestFacts(), at: Date? = nil,
        policy: Policy, explain: Bool = false, record: Bool = false
    ) throws(ServiceError) -> Decision {
        let instant = at ?? now
        var facts = try facts(reader: reader, title: title, article: article, request: request, at: instant, policy: policy)
        var decision = policy.decide(facts, explain: explain)
        guard record, let outcome = decision.meter, outcome.consumed || outcome.reread,
              let index = policy.meters.firstIndex(where: { $0.name == outcome.name })
        else { return decision }
        let subject: MeterSubject
        if facts.user.signedIn {
            subject = .account(AccountID(rawValue: facts.user.id))
        } else if case let .anonymous(device?) = reader {
            subject = try mapped { try MeterSubject.device(validating: device) }
        } else {
            return decision
        }
        let meter = policy.meters[index]
        let read = ArticleRead(subject: subject, titleID: TitleID(rawValue: facts.title.id), articleID: facts.article.id, at: instant)
        let result = try mapped { try store.recordMeteredRead(read, window: meter.window, limit: meter.limit) }
        if case let .exhausted(used) = result {
            facts.meters[index] = MeterFacts(used: used, alreadyRead: false)
            decision = policy.decide(facts, explain: explain)
        }
        return decision
    }

    /// Replays recorded reads through the running and the proposed policy.
    public func policyImpact(current: Policy, proposed: Policy, since: Date, limit: Int) throws(ServiceError) -> PolicyImpact {
        var impact = PolicyImpact()
        let reads = try mapped { try store.reads(since: since, limit: limit) }
        for read in reads {
            let reader: Reader
            switch read.subject {
            case let .account(id):
                guard (try? store.account(id: id)) != nil else { continue }  // deleted since
                reader = .account(id.rawValue)
            case let .device(id): reader = .anonymous(device: id)
            }
            // The meters as they stood just before the read.
            let before = read.at.addingTimeInterval(-0.001)
            let article = ArticleInput(id: read.articleID)
            let currentFacts = try facts(reader: reader, title: read.titleID.rawValue, article: article, request: RequestFacts(), at: before, policy: current)
            // Facts depend on the policy only through its meters.
            let proposedFacts = current.meters == proposed.meters ? currentFacts
                : try facts(reader: reader, title: read.titleID.rawValue, article: article, request: RequestFacts(), at: before, policy: proposed)
            let a = current.decide(currentFacts)
            let b = proposed.decide(proposedFacts)
            impact.replayed += 1
            if a.access != b.access || a.offers != b.offers {
                impact.changed += 1
                impact.byTitle[read.titleID.rawValue, default: 0] += 1
                impact.byRule["\(a.decidingRules.joined(separator: " + ")) → \(b.decidingRules.joined(separator: " + "))", default: 0] += 1
                impact.byAccess["\(a.access) → \(b.access)", default: 0] += 1
            }
        }
        return impact
    }
}
