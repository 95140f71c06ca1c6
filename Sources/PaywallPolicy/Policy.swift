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
    let condition: @Sendable (Facts) -> Bool
    let conjuncts: [(test: @Sendable (Facts) -> Bool, text: String)]
    /// The highest unmetered grant, if any.
    let grant: AccessLevel?
    /// Metered grants: level and meter index.
    let meteredGrants: [(level: AccessLevel, meter: Int)]
    let cap: AccessLevel?
    let offers: [Offer]
    /// Whether the condition reads nothing about the reader (so a grant is free for all).
    let readerIndependent: Bool

    init(name: String, shadow: Bool, title: String?, order: Int, location: SourceLocation, condition: @escaping @Sendable (Facts) -> Bool,
         conjuncts: [(test: @Sendable (Facts) -> Bool, text: String)], grant: AccessLevel?, meteredGrants: [(level: AccessLevel, meter: Int)],
         cap: AccessLevel?, offers: [Offer], readerIndependent: Bool) {
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
    let defaults: Settings
    let titleSettings: [String: Settings]
    let globalRules: [CompiledRule]
    /// Per title with a section: global and title rules merged in policy order.
    let rulesByTitle: [String: [CompiledRule]]

    init(revision: String, meters: [MeterDefinition], defaults: Settings, titleSettings: [String: Settings], rules: [CompiledRule]) {
        self.revision = revision
        self.meters = meters
        self.defaults = defaults
        self.titleSettings = titleSettings
        let ordered = rules.sorted { $0.order < $1.order }
        ruleNames = ordered.map(\.name)
        globalRules = ordered.filter { $0.title == nil }
        var byTitle: [String: [CompiledRule]] = [:]
        let titles = Set(titleSettings.keys).union(ordered.compactMap(\.title))
        for title in titles {
            byTitle[title] = ordered.filter { $0.title == nil || $0.title == title }
        }
        rulesByTitle = byTitle
        titleSections = titles
    }

    /// Decides for `facts`. With `explain`, every rule is listed with why it did not match.
    public func decide(_ facts: DecisionFacts, explain: Bool = false) -> Decision {
        withUnsafePointer(to: facts) { decide(pointer: $0, explain: explain) }
    }

    func decide(pointer facts: Facts, explain: Bool) -> Decision {
        let titleID = facts.pointee.title.id
        let rules = rulesByTitle.isEmpty ? globalRules : (rulesByTitle[titleID] ?? globalRules)
        let settings = titleSettings[titleID] ?? defaults

        var grantLevel: AccessLevel?
        var grantRule: CompiledRule?
        var capLevel = AccessLevel.full
        var capRule: CompiledRule?
        var matched: [CompiledRule] = []
        matched.reserveCapacity(8)
        var shadowMatches: [String] = []
        var traces: [RuleTrace] = []

        for rule in rules {
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
            matched.append(rule)
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
        search: for rule in matched where !rule.meteredGrants.isEmpty {
            for grant in rule.meteredGrants where min(grant.level, capLevel) > access {
                let definition = meters[grant.meter]
                let state = facts.pointee.meters.indices.contains(grant.meter) ? facts.pointee.meters[grant.meter] : MeterFacts()
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
        if names.isEmpty { names = [titleSettings[titleID] != nil ? "title \"\(titleID)\" settings" : "defaults"] }
        if let capRule, capLevel < uncapped { names.append(capRule.name) }

        var offers: [Offer] = []
        if access < .full {
            for rule in matched {
                for offer in rule.offers where !offers.contains(offer) { offers.append(offer) }
            }
        }
        let freeForAll = facts.pointee.article.free || (access == .full && meterOutcome?.consumed != true && meterOutcome?.reread != true
            && (deciding.first?.readerIndependent ?? false))

        return Decision(
            access: access, teaserParagraphs: settings.teaserParagraphs, offers: offers, meter: meterOutcome,
            decidingRules: names, shadowMatches: shadowMatches, revision: revision, accessibleForFree: freeForAll,
            explanation: explain ? traces : nil)
    }
}
