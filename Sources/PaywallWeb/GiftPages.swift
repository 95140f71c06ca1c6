import Foundation
import HTTPTypes
import Hummingbird
import PaywallCore
import PaywallService

/// "Gift this article": a member makes a link that opens one article in full for anyone.
///
/// The link is the article's own URL with the gift token in the query
/// (`/titles/t/articles/a?gift=…`). A query reaches the server's access log and, from this
/// page, same-origin `Referer`s; that is acceptable here: the token is a signed, short-lived
/// JWT that opens one article (not a credential to an account), the pages send no Referer
/// to other sites (`Referrer-Policy: same-origin`) and load nothing from them, so no third
/// party ever sees it. A fragment would need a script on every article page to read it.
extension WebSite {
    /// Gift tokens are JWTs: base64url parts and dots, at most this long.
    static let giftTokenLimit = 4_096

    /// The gift query parameter, if the URL has one: nil when absent; "" when it cannot be
    /// a gift token (the page then says the link is not valid).
    static func giftParameter(_ request: Request) -> String? {
        guard let raw = request.uri.queryParameters["gift"].map(String.init) else { return nil }
        guard (16...giftTokenLimit).contains(raw.utf8.count), Cookies.isBase64URL(raw, dots: true) else { return "" }
        return raw
    }

    /// The gift form of a full article page: only for a member whose plan covers the title
    /// (the service decides again when the link is made).
    func giftForm(_ visit: Visit, title: String, article: String) async throws -> [String: Any]? {
        guard let reader = visit.reader else { return nil }
        let id = reader.account.id
        guard let allowance = try await service.blocking({ service throws(ServiceError) in try service.giftAllowance(accountID: id, title: title) }),
              allowance.limit > 0
        else { return nil }
        let left = max(0, allowance.limit - allowance.used)
        return [
            "action": Self.path(title: title, article: article) + "/gift", "left": left, "limit": allowance.limit,
            "days": Int(service.configuration.giftLifetime / 86_400), "canGive": left > 0,
        ]
    }

    func createGift(_ visit: Visit, title titleID: String, article articleID: String) async throws -> Response {
        guard let reader = visit.reader else { return redirect("/signin?next=\(Self.path(title: titleID, article: articleID))") }
        guard let article = articles.article(title: titleID, id: articleID) else { return notFound(visit) }
        let id = reader.account.id
        let issued: IssuedGift
        do {
            issued = try await service.blocking { service throws(ServiceError) in
                try service.createGift(reader: .account(id), title: titleID, article: articleID)
            }
        } catch {
            switch error {
            case .notEntitled:
                return errorPage(visit, status: .forbidden, heading: "Only members can give this article",
                                 message: "Gift links are for members whose membership includes this title.", link: ("/account", "Your account"))
            case let .giftLimitReached(limit, resetsAt):
                return errorPage(visit, status: .forbidden, heading: "No gift links left this month",
                                 message: "You have made your \(limit) gift links this month. More from \(Self.longDate(resetsAt)).",
                                 link: (Self.path(title: titleID, article: articleID), "Back to the article"))
            case .store(.titleNotFound), .store(.titleRetired), .invalidInput: return notFound(visit)
            default: throw error
            }
        }
        let path = Self.path(title: titleID, article: articleID)
        let link = baseURL(visit.request) + path + "?gift=" + issued.token
        let left = max(0, issued.monthlyLimit - issued.usedThisMonth)
        return page("gift", visit, title: "Your gift link", values: [
            "headline": article.headline, "href": path, "link": link, "until": Self.dateTime(issued.gift.expiresAt),
            "left": left == 1 ? "1 gift link" : "\(left) gift links", "limit": issued.monthlyLimit,
        ])
    }
}
