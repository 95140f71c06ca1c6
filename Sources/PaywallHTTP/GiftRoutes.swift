import Foundation
import HTTPTypes
import Hummingbird
import PaywallService
import PaywallViews

/// Gift links: a member makes one (`POST /v1/gifts`); anyone opens its article with
/// `POST /v1/access` and the token in `gift`.
extension PaywallAPI {
    static let giftRoutes: [(path: String, allowed: HTTPRequest.Method)] = [("/v1/gifts", .post)]

    func addGiftRoutes(to router: Router<PaywallRequestContext>) {
        router.post("/v1/gifts") { request, _ in
            var request = request
            let reader = try readerOf(request)
            let body = try await RequestBody.object(&request).only(["title", "article"])
            let (title, article) = (try body.requiredString("title"), try body.requiredString("article"))
            let issued = try await service.blocking { service throws(ServiceError) in try service.createGift(reader: reader, title: title, article: article) }
            return try Self.created(GiftView(issued), private: true)
        }
    }
}
