import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PaywallCore
import PaywallService

/// The payment providers' webhooks. Each route reads the body, calls one service method
/// on the blocking pool (the event is written durably before the answer: a 2xx means it
/// is applied, or kept, exactly once) and answers what became of the event. A refused
/// event (bad signature, broken chain) is 400 with nothing written; the log says why,
/// never with the body.
extension PaywallAPI {
    static let billingRoutes: [(path: String, allowed: HTTPRequest.Method)] = [
        ("/v1/billing/stripe", .post), ("/v1/billing/apple", .post),
    ]

    static let stripeSignature = HTTPField.Name("Stripe-Signature")!

    func addBillingRoutes(to router: Router<PaywallRequestContext>) {
        router.post("/v1/billing/stripe") { request, _ in
            var request = request
            // The signature covers the body's exact bytes: read them, never re-encoded JSON.
            let body = try await RequestBody.bytes(&request)
            let signature = request.headers[Self.stripeSignature]
            let result = try await service.blocking { service throws(ServiceError) in try service.receiveStripeEvent(body: body, signature: signature) }
            return try Self.json(BillingResultView(result))
        }
        router.post("/v1/billing/apple") { request, _ in
            var request = request
            let body = try await RequestBody.object(&request).only(["signedPayload"])
            let payload = try body.requiredString("signedPayload")
            let result = try await service.blocking { service throws(ServiceError) in try service.receiveAppleNotification(signedPayload: payload) }
            return try Self.json(BillingResultView(result))
        }
    }
}

/// What became of a provider's event.
struct BillingResultView: Encodable {
    var provider: String
    var event: String
    var type: String
    var outcome: String
    var detail: String?

    init(_ result: BillingResult) {
        provider = result.provider.rawValue
        event = result.eventID
        type = result.type
        outcome = result.outcome.rawValue
        detail = result.detail
    }
}
