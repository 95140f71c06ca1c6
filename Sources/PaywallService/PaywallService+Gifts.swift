import Foundation
import PaywallCore
import PaywallPolicy
import PaywallStore
import PaywallTokens

/// A gift link just made: its token (the link carries it) and the member's monthly count.
public struct IssuedGift: Sendable {
    public var token: String
    public var gift: Gift
    /// Gift links the member has made this month, this one included.
    public var usedThisMonth: Int
    public var monthlyLimit: Int
}

extension PaywallService {
    // MARK: - Making gift links

    /// Makes a gift link: anyone holding its token may read `article` of `title` in full
    /// for ``ServiceConfiguration/giftLifetime``. Only a signed-in reader whose membership
    /// covers the title may give it (``ServiceError/notEntitled(title:)``), at most
    /// ``ServiceConfiguration/giftsPerMonth`` a calendar month, counted exactly
    /// (``Store/createGift(_:limit:)``). A durable write: run it on the blocking pool.
    public func createGift(reader: AccessReader, title: String, article: String) throws(ServiceError) -> IssuedGift {
        let accountID: AccountID
        switch reader {
        case .anonymous: throw .tokenRequired
        case .device: throw .notEntitled(title: title)
        case let .account(id, signOuts):
            accountID = id
            _ = try holdingAccount(id, signOuts: signOuts)
        }
        return try mapped {
            let titleID = try TitleID(validating: title)
            let articleID = try ArticleRead.validateArticleID(article)
            let at = now
            _ = try store.catalogTitle(id: titleID)
            // "Entitled" as the policy sees it (one definition): a trial is not a membership.
            guard try membershipFacts(accountID: accountID, title: titleID, at: at).entitled else {
                throw ServiceError.notEntitled(title: titleID.rawValue)
            }
            let limit = configuration.giftsPerMonth
            let month = Gift.month(of: at)
            guard limit > 0 else { throw ServiceError.giftLimitReached(limit: 0, resetsAt: month.end) }
            let (issuer, _) = try issuer()
            let (token, claims) = try issuer.giftToken(
                subject: accountID.rawValue, audience: giftAudience, title: titleID.rawValue, article: articleID,
                lifetime: configuration.giftLifetime)
            // The token's own times, so the stored gift and the link expire together.
            let gift = Gift(
                id: claims.registered.tokenID, accountID: accountID, titleID: titleID, articleID: articleID,
                createdAt: claims.registered.issuedAt, expiresAt: claims.registered.expiresAt)
            switch try store.createGift(gift, limit: limit) {
            case let .created(used): return IssuedGift(token: token, gift: gift, usedThisMonth: used, monthlyLimit: limit)
            case .limitReached: throw ServiceError.giftLimitReached(limit: limit, resetsAt: month.end)
            }
        }
    }

    // MARK: - Reading through a gift link

    /// Full access to a gift link's one article, for anyone holding it: the token must
    /// verify as a `paywall-gift+jwt`, name this title and article, and its gift must still
    /// be on record (deleting the giver's account withdraws their links). The read is
    /// recorded as a gift read (publishers are paid on it) and uses no meter. Anything
    /// wrong with the gift is ``ServiceError/giftRefused(_:)`` (403): the reader's own token,
    /// if any, is not what failed.
    public func checkGiftAccess(_ request: AccessRequest, gift token: String, reader: AccessReader) async throws(ServiceError) -> AccessAnswer {
        let gift = try await offCooperativePoolIfShared { service throws(ServiceError) in
            // The bearer's own token must hold (the read is recorded as theirs), as on the
            // policy's path.
            if case let .account(id, signOuts) = reader { _ = try service.holdingAccount(id, signOuts: signOuts) }
            let gift = try service.verifiedGift(token, title: request.title, article: request.article.id)
            // A link given before its title was retired opens nothing now (404 title_retired,
            // as the title's other articles).
            _ = try mapped { try service.store.catalogTitle(id: gift.titleID) }
            return gift
        }
        let revision = try policy().revision
        let at = now
        // The grant's key before the read is counted for the publisher.
        try requireSigningKey()
        _ = try await blocking { service throws(ServiceError) in
            try mapped { try service.store.recordGiftRead(gift, subject: reader.meterSubject, at: at) }
        }
        return try grantedApartFromPolicy(reader: reader, title: gift.titleID, article: gift.articleID, by: "gift", revision: revision)
    }

    /// Full access decided apart from the policy (a gift link, a comp grant): the answer,
    /// its article grant, and the decision log's entry.
    func grantedApartFromPolicy(reader: AccessReader, title: TitleID, article: String, by reason: String, revision: String) throws(ServiceError) -> AccessAnswer {
        var answer = AccessAnswer(reader: reader, title: title, articleID: article, decision: .granted(by: reason, revision: revision))
        answer.articleGrant = try mapped {
            try articleGrant(
                try issuer().0, subject: reader.meterSubject ?? .device("anonymous"), title: title, article: article,
                lifetime: configuration.articleGrantLifetime)
        }
        logDecision(answer)
        return answer
    }

    /// The audience of gift links: the service's own with `#gift`, never the article
    /// grants'. A gift link has a grant's shape (this article of this title, signed by the
    /// same keys) and differs only in its `typ`, which many JWT libraries ignore: a content
    /// server checking a grant's `iss`, `aud`, `exp`, `title` and `article` took a gift
    /// link, valid for a month, as a five-minute grant, and kept taking it after the gift
    /// was withdrawn (found in review; RFC 8725 §3.9 and §3.11). Links made before keep
    /// the old audience until they expire, and are still taken here.
    public var giftAudience: String { configuration.audience + "#gift" }

    /// A gift link's token verified as the routes take it: the gift audience, or the
    /// service's own for a link made before gift links had an audience of their own (at
    /// most `giftLifetime` ago). `paywall token verify --kind gift` asks the same, so that
    /// support sees what a reader's link gets.
    public func verifyGiftLink(_ token: String) throws(ServiceError) -> VerifiedToken {
        do {
            return try verifyToken(token, kinds: [.gift], audience: giftAudience)
        } catch .token(.wrongAudience) {
            return try verifyToken(token, kinds: [.gift])
        }
    }

    /// The stored gift a token proves, for this title and article.
    func verifiedGift(_ token: String, title: String, article: String) throws(ServiceError) -> Gift {
        let titleID = try mapped { try TitleID(validating: title) }
        let articleID = try mapped { try ArticleRead.validateArticleID(article) }
        let verified: VerifiedToken
        do throws(ServiceError) {
            verified = try verifyGiftLink(token)
        } catch {
            if case let .token(reason) = error { throw .giftRefused(reason.description) }
            throw error
        }
        guard case let .gift(claims) = verified else { throw .giftRefused("not a gift link") }
        guard claims.title == titleID.rawValue, claims.article == articleID else { throw .giftRefused("the link is for another article") }
        guard let gift = try mapped({ try store.gift(id: claims.registered.tokenID) }) else { throw .giftRefused("no such gift on record") }
        guard gift.titleID == titleID, gift.articleID == articleID else { throw .giftRefused("the link is for another article") }
        return gift
    }

    // MARK: - What a member may still give

    /// Gift links an account may still make this month: nil when its membership does not
    /// cover `title` (the page then offers no gift form), else how many it made and the
    /// limit. Reads only; ``createGift(reader:title:article:)`` decides again when it writes.
    public func giftAllowance(accountID: AccountID, title: String) throws(ServiceError) -> (used: Int, limit: Int)? {
        try mapped {
            guard let titleID = try? TitleID(validating: title) else { return nil }
            let at = now
            guard try membershipFacts(accountID: accountID, title: titleID, at: at).entitled else { return nil }
            let month = Gift.month(of: at)
            return (try store.giftCount(accountID: accountID, from: month.start, to: month.end), configuration.giftsPerMonth)
        }
    }
}
