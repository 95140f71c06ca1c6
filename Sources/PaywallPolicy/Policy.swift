import Foundation

/// A meter as declared in the policy.
public struct MeterDefinition: Hashable, Sendable {
    public var name: String
    public var limit: Int
    /// The rolling window, in seconds.
    public var window: TimeInterval
}

/// A compiled rule.
final class CompiledRule: Sendable {
    let name: String
    let shadow: Bool
    let title: String?
    let order: Int
    let location: SourceLocation
    let condition: @Sendable (FactsPointer) -> Bool
    let conjuncts: [(test: @Sendable (FactsPointer) -> Bool, text: String)]
    /// The highest unmetered grant, if any.
    let grant: AccessLevel?
    /// Metered grants: level and meter index.
    let meteredGrants: [(level: AccessLevel, meter: Int)]
    let cap: AccessLevel?
    let offers: [Offer]
    /// Whether the condition reads nothing about the reader (so a grant is free for all).
    let readerIndependent: Bool
    /// The tests of the conjuncts that read nothing about the reader: when one is false the
    /// rule matches for no reader of this article.
    let readerIndependentTests: [@Sendable (FactsPointer) -> Bool]
    /// An unmetered full grant whose condition reads nothing about the reader.
    let grantsFullToAnyone: Bool
    /// Whether the condition reads a meter (`meter("name").used` …).
    let conditionReadsMeters: Bool

    init(name: String, shadow: Bool, title: String?, order: Int, location: SourceLocation, condition: @escaping @Sendable (FactsPointer) -> Bool,
         conjuncts: [(test: @Sendable (FactsPointer) -> Bool, text: String)], grant: AccessLevel?, meteredGrants: [(level: AccessLevel, meter: Int)],
         cap: AccessLevel?, offers: [Offer], readerIndependent: Bool, readerIndependentTests: [@Sendable (FactsPointer) -> Bool],
         conditionReadsMeters: Bool) {
        self.name = name
        self.shadow = shadow
        self.title = title
        self.order = order
        self.location = location
        self.condition = condition
        self.conjuncts = conjuncts
        self.grant = grant
        self.meteredGrants = meteredGrants
        self.cap = cap
        self.offers = offers
        self.readerIndependent = readerIndependent
        self.readerIndependentTests = readerIndependentTests
        grantsFullToAnyone = readerIndependent && grant == .full && !shadow
        self.conditionReadsMeters = conditionReadsMeters
    }

    /// Whether the rule could match for some reader of the article `facts` describe.
    func couldMatchSomeReader(_ facts: FactsPointer) -> Bool {
        for test in readerIndependentTests where !test(facts) { return false }
        return true
    }
}

extension DecisionFacts {
    /// The state of meter `index` (of `limit` articles), failing closed: facts without the
    /// meter, or with a negative count, read as used up, so they never grant a read.
    func meterState(_ index: Int, limit: Int) -> MeterFacts {
        guard meters.indices.contains(index), meters[index].used >= 0 else { return MeterFacts(used: limit) }
        return meters[index]
    }
}

struct Settings: Sendable {
    var access: AccessLevel
    var teaserParagraphs: Int
}

/// A checked, compiled policy set: decides in about a microsecond, a pure function of
/// (policy, facts).
public final class Policy: Sendable {
    /// A hash of the files (FNV-1a 64 over names and contents): which policy decided.
    public let revision: String
    public let meters: [MeterDefinition]
    /// Every rule's name, in policy order.
    public let ruleNames: [String]
    /// Title ids with their own section.
    public let titleSections: Set<String>
    /// Whether some rule's condition reads a meter. When none does, meters can only matter
    /// through metered grants, which count only where they raise the access: a decision
    /// that is already full without them is the decision (see ``decidesWithoutMeters(_:)``).
    public let conditionsReadMeters: Bool
    let globalScope: Scope
    /// Per title with a section: its settings, and global and title rules merged in policy order.
    let scopes: [String: Scope]

    /// The rules and settings that apply to one title.
    final class Scope: Sendable {
        let rules: [CompiledRule]
        let settings: Settings
        /// What `decidingRules` says when the settings decided.
        let settingsName: String
        /// Enforced caps below full whose conditions read the reader: they may hold for
        /// another reader, so an article they could cap is not free for everyone.
        let readerDependentCaps: [CompiledRule]
        init(rules: [CompiledRule], settings: Settings, settingsName: String) {
            self.rules = rules
            self.settings = settings
            self.settingsName = settingsName
            readerDependentCaps = rules.filter { !$0.shadow && !$0.readerIndependent && ($0.cap ?? .full) < .full }
        }
    }

    init(revision: String, meters: [MeterDefinition], defaults: Settings, titleSettings: [String: Settings], rules: [CompiledRule]) {
        self.revision = revision
        self.meters = meters
        let ordered = rules.sorted { $0.order < $1.order }
        ruleNames = ordered.map(\.name)
        globalScope = Scope(rules: ordered.filter { $0.title == nil }, settings: defaults, settingsName: "defaults")
        var byTitle: [String: Scope] = [:]
        let titles = Set(titleSettings.keys).union(ordered.compactMap(\.title))
        for title in titles {
            let settings = titleSettings[title]
            byTitle[title] = Scope(
                rules: ordered.filter { $0.title == nil || $0.title == title }, settings: settings ?? defaults,
                settingsName: settings == nil ? "defaults" : "title \"\(title)\" settings")
        }
        scopes = byTitle
        titleSections = titles
        conditionsReadMeters = rules.contains { $0.conditionReadsMeters }
    }

    /// The decision for `facts` gathered without meter facts, when it cannot depend on
    /// them: no condition reads a meter and the access is full already (a metered grant
    /// only ever raises it). Nil: gather the meters and decide. Lets a member's check skip
    /// the meter's queries (measured: about 6% of it).
    public func decidesWithoutMeters(_ facts: borrowing DecisionFacts) -> Decision? {
        guard !conditionsReadMeters else { return nil }
        let decision = decide(facts)
        return decision.access == .full ? decision : nil
    }

    /// Decides for `facts`. With `explain`, every rule is listed with why it did not match.
    public func decide(_ facts: borrowing DecisionFacts, explain: Bool = false) -> Decision {
        let scope = scopes.isEmpty ? globalScope : (scopes[facts.title.id] ?? globalScope)
        return withUnsafePointer(to: facts) { decide($0, scope: scope, explain: explain) }
    }

    func decide(_ facts: FactsPointer, scope: Scope, explain: Bool) -> Decision {
        let rules = scope.rules
        let settings = scope.settings

        var grantLevel: AccessLevel?
        var grantRule: CompiledRule?
        var capLevel = AccessLevel.full
        var capRule: CompiledRule?
        // Matched rules as a bit set (the common case, up to 64 rules) without allocating.
        var matchedBits: UInt64 = 0
        var matchedBeyond64: [Int] = []
        var anyMetered = false
        var anyOffers = false
        var fullToAnyone = false
        var shadowMatches: [String] = []
        var traces: [RuleTrace] = []

        for (index, rule) in rules.enumerated() {
            let holds = rule.condition(facts)
            if explain {
                var failed: String?
                if !holds { failed = rule.conjuncts.first { !$0.test(facts) }?.text ?? "" }
                traces.append(RuleTrace(rule: rule.name, matched: holds, shadow: rule.shadow, failedCondition: failed, location: rule.location))
            }
            guard holds else { continue }
            if rule.shadow {
                shadowMatches.append(rule.name)
                continue
            }
            if index < 64 { matchedBits |= 1 << UInt64(index) } else { matchedBeyond64.append(index) }
            anyMetered = anyMetered || !rule.meteredGrants.isEmpty
            anyOffers = anyOffers || !rule.offers.isEmpty
            fullToAnyone = fullToAnyone || rule.grantsFullToAnyone
            if let level = rule.grant, grantLevel.map({ level > $0 }) ?? true {
                grantLevel = level
                grantRule = rule
            }
            if let cap = rule.cap, cap < capLevel {
                capLevel = cap
                capRule = rule
            }
        }

        // Without a metered grant: the unmetered grant, else the defaults, then the cap.
        var uncapped = grantLevel ?? settings.access
        var access = min(uncapped, capLevel)
        var deciding: [CompiledRule] = grantRule.map { [$0] } ?? []
        var meterOutcome: MeterOutcome?

        // A metered grant counts only where it raises the (capped) access.
        func isMatched(_ index: Int) -> Bool {
            // Past 64 rules, the matched indices are in ascending order (appended as the
            // rules were walked): a binary search, not a scan (a scan per rule made a
            // decision quadratic in the rules: 5.6 s at 20,000 in a debug build).
            guard index >= 64 else { return matchedBits & (1 << UInt64(index)) != 0 }
            var low = 0, high = matchedBeyond64.count
            while low < high {
                let middle = (low + high) / 2
                if matchedBeyond64[middle] < index { low = middle + 1 } else { high = middle }
            }
            return low < matchedBeyond64.count && matchedBeyond64[low] == index
        }
        search: for (index, rule) in rules.enumerated() where anyMetered && !rule.meteredGrants.isEmpty && isMatched(index) {
            for grant in rule.meteredGrants where min(grant.level, capLevel) > access {
                let definition = meters[grant.meter]
                let state = facts.pointee.meterState(grant.meter, limit: definition.limit)
                if state.alreadyRead {
                    meterOutcome = MeterOutcome(name: definition.name, consumed: false, reread: true, used: state.used, limit: definition.limit)
                } else if state.used < definition.limit {
                    meterOutcome = MeterOutcome(name: definition.name, consumed: true, reread: false, used: state.used + 1, limit: definition.limit)
                } else {
                    meterOutcome = MeterOutcome(name: definition.name, consumed: false, reread: false, used: state.used, limit: definition.limit)
                    continue
                }
                uncapped = grant.level
                access = min(grant.level, capLevel)
                deciding = [rule]
                break search
            }
        }

        var names = deciding.map(\.name)
        if names.isEmpty { names = [scope.settingsName] }
        if let capRule, capLevel < uncapped { names.append(capRule.name) }

        var offers: [Offer] = []
        if access < .full, anyOffers {
            for (index, rule) in rules.enumerated() where !rule.offers.isEmpty && isMatched(index) {
                for offer in rule.offers where !offers.contains(offer) { offers.append(offer) }
            }
        }
        // Free for all (schema.org isAccessibleForFree): full access that no reader can miss,
        // granted by a rule that reads nothing about the reader, with no meter used, and no
        // cap that could hold for another reader. A publisher's "free" mark alone is not
        // enough: a cap (an embargo, say) may still leave others a teaser.
        let freeForAll = access == .full && fullToAnyone && meterOutcome == nil
            && !scope.readerDependentCaps.contains { $0.couldMatchSomeReader(facts) }

        return Decision(
            access: access, teaserParagraphs: settings.teaserParagraphs, offers: offers, meter: meterOutcome,
            decidingRules: names, shadowMatches: shadowMatches, revision: revision, accessibleForFree: freeForAll,
            explanation: explain ? traces : nil)
    }
}
