import Foundation
import PaywallCore
import PaywallPolicy
import PaywallStore

/// Who is reading.
public enum Reader: Sendable {
    /// A signed-in reader named by an admin (email or account id).
    case account(String)
    /// A signed-in reader whose access token names this account: an account deleted since,
    /// or every session of it ended since (`signOuts`, the token's count, below the
    /// account's), makes the token invalid (``ServiceError/token(_:)``), not a missing record.
    case tokenAccount(AccountID, signOuts: Int?)
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
    /// The facts a decision needs, gathered from the store as of `at`.
    public func facts(reader: Reader, title: String, article: ArticleInput, request: RequestFacts, at: Date, policy: Policy) throws(ServiceError) -> DecisionFacts {
        try facts(reader: reader, title: title, article: article, request: request, at: at, policy: policy, skipMeters: nil)
    }

    /// The facts; when `skipMeters` says so of the facts without meters, they are returned
    /// without them (the meters' queries not run), still inside the one snapshot. With
    /// `assumeMetersUnused`, a reader who can be counted gets every meter as unused and
    /// nothing read, without a query (``plan(reader:title:article:request:at:policy:explain:optimistic:)``).
    func facts(
        reader: Reader, title: String, article: ArticleInput, request: RequestFacts, at: Date, policy: Policy,
        skipMeters: ((DecisionFacts) -> Bool)?, assumeMetersUnused: Bool = false
    ) throws(ServiceError) -> DecisionFacts {
        // Every read below in one snapshot of the database (measured: a per-statement read
        // transaction took a WAL lock each, several per check).
        try mapped { try store.snapshot {
            let titleID = try TitleID(validating: title)
            // The request's own mistakes before the catalog's answer (a preview answers an
            // unknown title per item, and must not answer a malformed article id so).
            let articleID = try ArticleRead.validateArticleID(article.id)
            let catalogTitle = try store.catalogTitle(id: titleID)
            var facts = DecisionFacts(now: at)
            facts.title.id = catalogTitle.id.rawValue
            facts.title.publisher = catalogTitle.publisher
            facts.title.tags = catalogTitle.tags
            facts.article.id = articleID
            facts.article.free = article.free
            facts.article.publishedAt = article.publishedAt ?? at
            facts.article.section = article.section
            facts.article.tags = article.tags
            facts.request = request

            let known: AccountFacts?
            switch reader {
            case let .tokenAccount(id, signOuts):
                let found = try store.accountFacts(id: id)
                _ = try Self.holding(found?.account, signOuts: signOuts)
                known = found
            case let .account(reference):
                let account = try store.account(matching: reference)
                guard let found = try store.accountFacts(id: account.id) else { throw StoreError.accountNotFound(account.email) }
                known = found
            case .anonymous: known = nil
            }
            let subject: MeterSubject?
            if let known {
                let account = known.account
                facts.user.signedIn = true
                facts.user.id = account.id.rawValue
                facts.user.emailDomain = known.emailDomain
                facts.user.emailVerified = account.emailVerifiedAt != nil
                facts.user.createdAt = account.createdAt
                facts.membership = membershipFacts(known.memberships, title: titleID, at: at)
                if let trial = known.trial, trial.startedAt <= at {
                    facts.trial.active = trial.status(at: at) == .active
                    facts.trial.endsAt = trial.endsAt
                    facts.trial.eligible = false
                } else if known.trial != nil {
                    // A decision before the trial began (`policy diff` replaying reads,
                    // `decide --at`): no trial yet, and this one shows the person had none
                    // before (found in review: the reads before a trial replayed as a trial
                    // reader's, every meter change showing no impact on them).
                    facts.trial.eligible = true
                } else {
                    facts.trial.eligible = try store.isTrialEligible(personKey: known.personKey)
                }
                subject = .account(account.id)
            } else {
                facts.trial.eligible = true  // anyone may sign up for one
                if case let .anonymous(device?) = reader {
                    subject = try MeterSubject.device(validating: device)
                } else {
                    subject = nil
                }
            }
            if let skipMeters, skipMeters(facts) { return facts }
            if assumeMetersUnused, subject != nil {
                facts.meters = policy.meters.map { _ in MeterFacts(used: 0, alreadyRead: false) }
                return facts
            }
            facts.meters = try policy.meters.map { meter in
                // Without a subject nothing can be counted or recorded: the meter is spent
                // (fail closed), or every reader could read without limit by sending no id.
                guard let subject else { return MeterFacts(used: meter.limit, alreadyRead: false) }
                let (used, reread) = try store.meterFacts(subject: subject, window: meter.window, title: titleID, article: articleID, at: at)
                return MeterFacts(used: used, alreadyRead: reread)
            }
            return facts
        } }
    }

    /// The membership facts for `title` at `at`: the best of the reader's memberships that
    /// cover the title, by status *in effect at `at`* (see ``MembershipFacts``), and the
    /// titles of every membership that gives access. Access tokens carry the same
    /// memberships (``entitlements(accountID:)``), so both always agree.
    func membershipFacts(accountID: AccountID, title: TitleID, at: Date) throws -> MembershipFacts {
        membershipFacts(try store.membershipsWithBundles(accountID: accountID), title: title, at: at)
    }

    /// ``membershipFacts(accountID:title:at:)`` from the account's memberships as read.
    func membershipFacts(_ memberships: [Store.MembershipWithBundle], title: TitleID, at: Date) -> MembershipFacts {
        var facts = MembershipFacts()
        var best: (membership: Membership, status: MembershipStatus)?
        for item in memberships {
            let (membership, bundle) = (item.membership, item.bundle)
            // A decision in the past (`--at`, `policy diff` replaying reads) must not count
            // a membership that did not exist yet. (Past statuses are as stored now: the
            // history is not replayed.)
            guard membership.createdAt <= at else { continue }
            let status = membership.effectiveStatus(at: at)
            if status != .expired {
                switch bundle {
                case .all: facts.allTitles = true
                case let .titles(set): facts.titles.formUnion(set.map(\.rawValue))
                }
            }
            guard bundle.contains(title) else { continue }
            if let current = best {
                let key = (Self.statusRank(status), membership.accessEnd)
                if key <= (Self.statusRank(current.status), current.membership.accessEnd) { continue }
            }
            best = (membership, status)
        }
        if let (membership, status) = best {
            facts.status = status.rawValue
            facts.active = status == .active
            facts.entitled = MembershipFacts.entitles(facts.status)
            facts.plan = membership.planID.rawValue
            facts.periodEnds = membership.currentPeriodEnd
            facts.graceEnds = membership.accessEnd  // past due, or canceled while past due: the grace end
        }
        return facts
    }

    /// Which membership wins when several cover a title.
    static func statusRank(_ status: MembershipStatus) -> Int {
        switch status {
        case .active: 3
        case .pastDue: 2
        case .canceled: 1
        case .expired: 0
        }
    }

    /// Decides for a reader, title and article. With `record`, a read that uses a meter
    /// (or re-reads) is recorded atomically: if a concurrent read took the meter's last
    /// unit meanwhile, the decision is made again on the updated meter.
    public func decide(
        reader: Reader, title: String, article: ArticleInput, request: RequestFacts = RequestFacts(), at: Date? = nil,
        policy proposed: Policy? = nil, explain: Bool = false, record: Bool = false
    ) throws(ServiceError) -> Decision {
        let policy: Policy
        if let proposed { policy = proposed } else { policy = try self.policy() }
        let (_, decision, pending) = try plan(reader: reader, title: title, article: article, request: request, at: at ?? now, policy: policy, explain: explain)
        guard record, let pending else { return decision }
        return try complete(pending)
    }

    /// A decision whose metered read still has to be recorded (``complete(_:)``).
    struct PendingRead: Sendable {
        var facts: DecisionFacts
        var decision: Decision
        var policy: Policy
        var index: Int
        var read: ArticleRead
        var explain: Bool
    }

    /// Gathers the facts and decides; when the decision uses a meter (or re-reads), says
    /// what to record. Reads only: hot readers and memory.
    ///
    /// `optimistic` (a check that records its read): when the policy's only meter matters
    /// only through its metered grant (no condition reads a meter), the meter is taken as
    /// unused instead of counted. The read's own transaction then counts it exactly and
    /// says whether the unit was there, already spent on this article, or gone, and
    /// ``settle(_:_:)`` makes the decision the counted meter gives: the same answer, one
    /// query fewer. Why: on PostgreSQL that query was a round trip, a transaction and a
    /// hop to the blocking pool on every metered check (BENCHMARKS.md, shared store).
    func plan(
        reader: Reader, title: String, article: ArticleInput, request: RequestFacts, at instant: Date, policy: Policy, explain: Bool,
        optimistic: Bool = false
    ) throws(ServiceError) -> (DecisionFacts, Decision, PendingRead?) {
        // A decision full without the meters is final: their queries are skipped (not when
        // explaining, which shows every fact).
        var early: Decision?
        let assumed = optimistic && !explain && !policy.conditionsReadMeters && policy.meters.count == 1
        let facts = try facts(
            reader: reader, title: title, article: article, request: request, at: instant, policy: policy,
            skipMeters: explain ? nil : { facts in
                early = policy.decidesWithoutMeters(facts)
                return early != nil
            },
            assumeMetersUnused: assumed)
        let decision = early ?? policy.decide(facts, explain: explain)
        guard let outcome = decision.meter, outcome.consumed || outcome.reread,
              let index = policy.meters.firstIndex(where: { $0.name == outcome.name })
        else {
            // The meter shows in an answer that records nothing (a cap, a meter of no
            // units): its numbers must be the counted ones, so count them.
            if assumed, early == nil, decision.meter != nil {
                return try plan(reader: reader, title: title, article: article, request: request, at: instant, policy: policy, explain: explain)
            }
            return (facts, decision, nil)
        }
        let subject: MeterSubject
        if facts.user.signedIn {
            subject = .account(AccountID(rawValue: facts.user.id))
        } else if case let .anonymous(device?) = reader {
            subject = try mapped { try MeterSubject.device(validating: device) }
        } else {
            return (facts, decision, nil)
        }
        let read = ArticleRead(subject: subject, titleID: TitleID(rawValue: facts.title.id), articleID: facts.article.id, at: instant)
        return (facts, decision, PendingRead(facts: facts, decision: decision, policy: policy, index: index, read: read, explain: explain))
    }

    /// Records a planned metered read atomically (a durable write: the blocking pool's
    /// work) and returns the decision as it stands after it.
    func complete(_ pending: PendingRead) throws(ServiceError) -> Decision {
        var pending = pending
        while true {
            let meter = pending.policy.meters[pending.index]
            let counted = try mapped { try store.recordCountedRead(pending.read, window: meter.window, limit: meter.limit) }
            let (decision, next) = settle(pending, counted)
            guard let next else { return decision }
            pending = next
        }
    }

    /// At most this many metered reads wait for a transaction; past it checks are refused
    /// (``ServiceError/overloaded``) instead of piling up in memory behind a stalled disk.
    static let meteredReadsWaitingLimit = 10_000

    /// ``complete(_:)`` for async callers: the read waits for its transaction without
    /// holding a thread (``Store/recordCountedRead(_:window:limit:)``). Also says when the
    /// oldest read the meter counts was made (from the same transaction).
    ///
    /// `noFullAnswer`: why a full answer cannot be given (no grant can be signed). The
    /// decision may become full on a second meter (the first spent meanwhile); its unit is
    /// then not spent, and this is thrown instead.
    func complete(_ pending: PendingRead, noFullAnswer: ServiceError? = nil) async throws(ServiceError) -> (decision: Decision, meterIndex: Int, oldestCounted: Date?) {
        var pending = pending
        while true {
            if store.meteredReadsWaiting >= Self.meteredReadsWaitingLimit { throw .overloaded }
            let meter = pending.policy.meters[pending.index]
            let counted: Store.CountedRead
            do {
                counted = try await store.recordCountedRead(pending.read, window: meter.window, limit: meter.limit)
            } catch {
                throw .store(error)
            }
            let (decision, next) = settle(pending, counted)
            guard let next else { return (decision, pending.index, counted.oldestCounted) }
            if let noFullAnswer, next.decision.access == .full { throw noFullAnswer }
            pending = next
        }
    }

    /// The decision as it stands once the read is recorded (or found taken meanwhile), on
    /// the meter as the read's transaction counted it: a plan's count may be older, or
    /// assumed (``plan(reader:title:article:request:at:policy:explain:optimistic:)``).
    /// When that decision uses another meter (the first was spent, and a later rule meters
    /// the read on a second), it is `next`: to be recorded in turn, or it would be free.
    private func settle(_ pending: PendingRead, _ counted: Store.CountedRead) -> (decision: Decision, next: PendingRead?) {
        var facts = pending.facts
        var decision = pending.decision
        let policy = pending.policy
        let index = pending.index
        switch counted.outcome {
        case let .exhausted(used):
            // The meter was spent (by a concurrent read, or before): decide again on it.
            facts.meters[index] = MeterFacts(used: used, alreadyRead: false)
            decision = policy.decide(facts, explain: pending.explain)
            if let outcome = decision.meter, outcome.consumed || outcome.reread,
               let other = policy.meters.firstIndex(where: { $0.name == outcome.name }), other != index {
                var next = pending
                next.facts = facts
                next.decision = decision
                next.index = other
                return (decision, next)
            }
        case .reread:
            // This article was counted already (before, or by the same check twice at
            // once): free, and the meter as it stands (it counts this article).
            decision.meter?.consumed = false
            decision.meter?.reread = true
            decision.meter?.used = counted.used
        case let .recorded(used):
            // Counted as a new unit, even when planned as a re-read (the earlier read moved
            // meanwhile: a device's reads to the account it signed up with).
            decision.meter?.consumed = true
            decision.meter?.reread = false
            decision.meter?.used = used
        }
        return (decision, nil)
    }

    /// Replays recorded reads through the running and the proposed policy.
    public func policyImpact(current: Policy, proposed: Policy, since: Date, limit: Int) throws(ServiceError) -> PolicyImpact {
        var impact = PolicyImpact()
        let reads = try mapped { try store.reads(since: since, limit: limit) }
        for read in reads {
            // A title retired since reads nothing: no policy decides its articles now.
            guard (try? store.catalogTitle(id: read.titleID)) != nil else { continue }
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
            // A change is anything the reader or the meter would see: the access, the offers,
            // the teaser's length, and whether (and which) meter a read would use (a grant
            // made free of the meter changed nothing here before).
            if a.access != b.access || a.offers != b.offers || a.teaserParagraphs != b.teaserParagraphs
                || a.meter?.name != b.meter?.name || (a.meter?.consumed ?? false) != (b.meter?.consumed ?? false) {
                impact.changed += 1
                impact.byTitle[read.titleID.rawValue, default: 0] += 1
                impact.byRule["\(a.decidingRules.joined(separator: " + ")) → \(b.decidingRules.joined(separator: " + "))", default: 0] += 1
                impact.byAccess["\(a.access) → \(b.access)", default: 0] += 1
            }
        }
        return impact
    }
}
