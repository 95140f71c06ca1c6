import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PaywallCore
import PaywallService
import PaywallViews

/// The payment providers' webhooks. Each route reads the body, calls one service method
/// on the blocking pool (the event is written durably before the answer: a 2xx means it
/// is applied, or kept, exactly once) and answers what became of the event. A refused
/// event (bad signature, broken chain) is 400 with nothing written; the log says why,
/// never with the body.
extension PaywallAPI {
    static let billingRoutes: [(path: String, allowed: HTTPRequest.Method)] = [
        ("/v1/billing/stripe", .post), ("/v1/billing/apple", .post), ("/v1/me/app-account-token", .get),
        ("/admin/v1/billing/products", .get), ("/admin/v1/billing/products", .post), ("/admin/v1/billing/links", .post),
        ("/admin/v1/billing/events", .get), ("/admin/v1/billing/events/retry", .post), ("/admin/v1/billing/events/dismiss", .post),
        ("/admin/v1/accounts/{account}/billing", .get),
    ]

    static let stripeSignature = HTTPField.Name("Stripe-Signature")!

    func addBillingRoutes(to router: Router<PaywallRequestContext>) {
        router.post("/v1/billing/stripe") { request, _ in
            var request = request
            // Stripe sends `application/json; charset=utf-8`; the signature covers the body's
            // exact bytes: read them, never re-encoded JSON.
            try service.requireBillingConfigured(.stripe)
            let type = request.headers[.contentType]?.lowercased() ?? ""
            guard type == "application/json" || type.hasPrefix("application/json;") else { throw APIError.unsupportedMediaType }
            let body = try await RequestBody.bytes(&request)
            let signature = request.headers[Self.stripeSignature]
            let result = try await service.blocking { service throws(ServiceError) in try service.receiveStripeEvent(body: body, signature: signature) }
            return try Self.json(BillingResultView(result))
        }
        router.post("/v1/billing/apple") { request, _ in
            var request = request
            try service.requireBillingConfigured(.apple)
            let body = try await RequestBody.object(&request).only(["signedPayload"])
            let payload = try body.requiredString("signedPayload")
            let result = try await service.blocking { service throws(ServiceError) in try service.receiveAppleNotification(signedPayload: payload) }
            return try Self.json(BillingResultView(result))
        }
        // The app sets this token on its purchases, so App Store notifications find the
        // account. Made on first ask (a write: on the blocking pool), then always the same.
        router.get("/v1/me/app-account-token") { request, _ in
            let account = try service.signedInAccount(bearer: try bearer(request))
            try Self.noQuery(request)
            let token = try await service.blocking { service throws(ServiceError) in
                try service.appAccountToken(account: account.rawValue, actor: .account(account))
            }
            struct Token: Encodable { var appAccountToken: String }
            return try Self.json(Token(appAccountToken: token.uuidString.lowercased()), private: true)
        }
        router.get("/admin/v1/billing/products") { request, _ in
            let admin = try await self.admin(request, .catalog)
            try Self.noQuery(request)
            let mappings = try await service.blocking { service throws(ServiceError) in try service.billingMappings(by: admin) }
            return try Self.json(["products": mappings.map(BillingProductView.init)])
        }
        router.post("/admin/v1/billing/products") { request, _ in
            let admin = try await self.admin(request, .catalog)
            var request = request
            let body = try await RequestBody.object(&request).only(["provider", "product", "plan"])
            guard let provider = BillingProvider(rawValue: try body.requiredString("provider")) else { throw body.invalid("provider", "stripe or apple") }
            let (product, plan) = (try body.requiredString("product"), try body.requiredString("plan"))
            let mapping = try await service.blocking { service throws(ServiceError) in
                try service.mapBillingProduct(provider: provider, externalID: product, plan: plan, actor: admin.actor)
            }
            return try Self.created(BillingProductView(mapping))
        }
        // Support gives a Stripe customer (made outside Checkout), or one subscription whose
        // events wait for an account (an App Store purchase without the app's token), to an
        // account; the events waiting for it are applied and answered.
        router.post("/admin/v1/billing/links") { request, _ in
            let admin = try await self.admin(request, .members)
            var request = request
            let body = try await RequestBody.object(&request).only(["provider", "account", "customer", "subscription"])
            guard let provider = BillingProvider(rawValue: try body.requiredString("provider")) else { throw body.invalid("provider", "stripe or apple") }
            let account = try body.requiredString("account")
            let (customer, subscription) = (try body.string("customer"), try body.string("subscription"))
            let results: [BillingResult]
            switch (customer, subscription) {
            case let (customer?, nil):
                guard provider == .stripe else { throw body.invalid("customer", "given with provider stripe only (an App Store purchase names its account by its appAccountToken)") }
                results = try await service.blocking { service throws(ServiceError) in try service.linkStripeCustomer(customer, account: account, actor: admin.actor) }
            case let (nil, subscription?):
                results = try await service.blocking { service throws(ServiceError) in
                    try service.linkBillingSubscription(subscription, provider: provider, account: account, actor: admin.actor)
                }
            default:
                throw APIError(status: .badRequest, code: "invalid_field", message: "give exactly one of 'customer' and 'subscription'")
            }
            return try Self.json(["results": results.map(BillingResultView.init)])
        }
        // The events that wait or failed, what `paywall billing failures` lists; applying
        // them again, and setting aside one that will never apply.
        router.get("/admin/v1/billing/events") { request, _ in
            let admin = try await self.admin(request, .members)
            let query = try Query(request, allowed: ["limit"])
            let limit = Int(try query.integer("limit", in: 1...1_000) ?? 100)
            let events = try await service.blocking { service throws(ServiceError) in try service.unappliedBillingEvents(limit: limit, by: admin) }
            return try Self.json(["events": events.map(BillingEventView.init)], private: true)
        }
        router.post("/admin/v1/billing/events/retry") { request, _ in
            let admin = try await self.admin(request, .members)
            var request = request
            _ = try await RequestBody.optionalObject(&request)?.only([])
            let results = try await service.blocking { service throws(ServiceError) in try service.retryBillingEvents(actor: admin.actor) }
            return try Self.json(["results": results.map(BillingResultView.init)])
        }
        router.post("/admin/v1/billing/events/dismiss") { request, _ in
            let admin = try await self.admin(request, .members)
            var request = request
            let body = try await RequestBody.object(&request).only(["provider", "event", "reason"])
            guard let provider = BillingProvider(rawValue: try body.requiredString("provider")) else { throw body.invalid("provider", "stripe or apple") }
            let (event, reason) = (try body.requiredString("event"), try body.requiredString("reason"))
            let record = try await service.blocking { service throws(ServiceError) in
                try service.dismissBillingEvent(event, provider: provider, reason: reason, actor: admin.actor)
            }
            return try Self.json(BillingEventView(record), private: true)
        }
        router.get("/admin/v1/accounts/{account}/billing") { request, context in
            let admin = try await self.admin(request, .members)
            try Self.noQuery(request)
            let reference = try Self.parameter(context, "account")
            let overview = try await service.blocking { service throws(ServiceError) in try service.billingOverview(account: reference, by: admin) }
            return try Self.json(BillingOverviewView(overview), private: true)
        }
    }
}


