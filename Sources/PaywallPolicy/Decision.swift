import Foundation

/// What happened to a meter in a decision.
public struct MeterOutcome: Hashable, Sendable {
    public var name: String
    /// Whether this read uses one unit (false for a re-read or when not needed).
    public var consumed: Bool
    /// Whether the article was already counted in the window (free re-read).
    public var reread: Bool
    /// Articles used in the window, counting this one if consumed.
    public var used: Int
    public var limit: Int
    /// Never negative, and never traps whatever the counts.
    public var remaining: Int { used >= limit ? 0 : limit - max(used, 0) }
}

/// One rule in an explanation.
public struct RuleTrace: Hashable, Sendable {
    public var rule: String
    public var matched: Bool
    public var shadow: Bool
    /// The first part of the condition that was false, quoted from the source.
    public var failedCondition: String?
    public var location: SourceLocation
}

/// The answer for one reader, title and article.
public struct Decision: Hashable, Sendable {
    public var access: AccessLevel
    /// Paragraphs of teaser to show when access is `teaser`.
    public var teaserParagraphs: Int
    /// Offers to show, in policy order (only when access is below full).
    public var offers: [Offer]
    /// The meter the decision used, if any.
    public var meter: MeterOutcome?
    /// The rules that decided the access (or "defaults").
    public var decidingRules: [String]
    /// Shadow rules that matched: reported, not enforced.
    public var shadowMatches: [String]
    /// The policy revision (a hash of the files) that decided.
    public var revision: String
    /// Whether the article is free for everyone (schema.org `isAccessibleForFree`).
    public var accessibleForFree: Bool
    /// Every rule, matched or not, and why not (on request).
    public var explanation: [RuleTrace]?

    /// The response depends on the reader: caches must keep it private (`Cache-Control: private`).
    public var isPrivate: Bool { true }
}

extension Decision {
    /// Full access granted outside the rules (a gift link, named by `reason`): no meter,
    /// no offers, and not free for everyone (the page stays marked paywalled for search
    /// engines: only the link's holders read it).
    public static func granted(by reason: String, revision: String) -> Decision {
        Decision(
            access: .full, teaserParagraphs: 0, offers: [], meter: nil, decidingRules: [reason], shadowMatches: [],
            revision: revision, accessibleForFree: false, explanation: nil)
    }
}
