import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PaywallTestSupport
import Testing

@testable import PaywallHTTP

/// The OpenAPI document is the contract (`.ci/api-contract.sh` runs schemathesis against the
/// running server with it); these checks keep the served document and the routes in step.
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    /// Every route the router serves, as the document must list it.
    static let routes: Set<String> = [
        "POST /v1/access", "POST /v1/access/preview", "POST /v1/devices",
        "GET /.well-known/jwks.json", "GET /healthz", "GET /readyz", "GET /openapi.json", "GET /metrics",
        "POST /v1/gifts",
        "GET /admin/v1/titles", "POST /admin/v1/titles", "GET /admin/v1/titles/{title}", "PATCH /admin/v1/titles/{title}", "POST /admin/v1/titles/{title}/retire", "POST /admin/v1/titles/{title}/restore",
        "GET /admin/v1/plans", "POST /admin/v1/plans", "GET /admin/v1/plans/{plan}", "PATCH /admin/v1/plans/{plan}", "DELETE /admin/v1/plans/{plan}",
        "GET /admin/v1/accounts", "GET /admin/v1/accounts/{account}", "DELETE /admin/v1/accounts/{account}", "GET /admin/v1/accounts/{account}/export", "GET /admin/v1/accounts/{account}/memberships", "POST /admin/v1/accounts/{account}/memberships",
        "POST /admin/v1/accounts/{account}/memberships/cancel", "POST /admin/v1/accounts/{account}/memberships/past-due",
        "POST /admin/v1/accounts/{account}/comps", "GET /admin/v1/accounts/{account}/trial", "POST /admin/v1/accounts/{account}/trial",
        "POST /admin/v1/accounts/{account}/trial/end", "POST /admin/v1/accounts/{account}/sign-out",
        "GET /admin/v1/audit", "GET /admin/v1/reads", "GET /admin/v1/policy", "POST /admin/v1/policy/reload",
        "POST /v1/accounts", "POST /v1/sessions", "POST /v1/sessions/refresh", "POST /v1/sessions/sign-out",
        "POST /v1/sessions/sign-out-everywhere", "GET /v1/me", "DELETE /v1/me", "DELETE /v1/me/sessions/{id}", "POST /v1/me/password", "POST /v1/me/email", "POST /v1/me/export", "POST /v1/email/verification",
        "POST /v1/email/verify", "POST /v1/password/forgot", "POST /v1/password/reset", "POST /v1/email/revert", "POST /v1/trials",
        "POST /v1/billing/stripe", "POST /v1/billing/apple", "GET /v1/me/app-account-token",
        "GET /admin/v1/billing/products", "POST /admin/v1/billing/products", "POST /admin/v1/billing/links", "GET /admin/v1/billing/events", "POST /admin/v1/billing/events/retry", "POST /admin/v1/billing/events/dismiss", "GET /admin/v1/accounts/{account}/billing",
    ]

    @Test("the router's method table lists exactly the documented routes")
    func tableMatchesDocument() {
        #expect(Set(PaywallAPI.routes.map { "\($0.allowed.rawValue) \($0.path)" }) == Self.routes)
    }

    func document() throws -> [String: Any] {
        let data = try #require(PaywallAPI.openAPIDocument, "the bundled openapi.json is missing")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("is OpenAPI 3.1 and lists exactly the served routes")
    func listsTheRoutes() throws {
        let document = try document()
        #expect((document["openapi"] as? String)?.hasPrefix("3.1") == true)
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        var listed: Set<String> = []
        for (path, item) in paths {
            for method in item.keys where methods.contains(method) { listed.insert("\(method.uppercased()) \(path)") }
        }
        #expect(listed == Self.routes)
    }

    @Test("every operation documents its error responses with the error shape")
    func errorsAreDocumented() throws {
        let document = try document()
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        for route in Self.routes {
            let parts = route.split(separator: " ").map(String.init)
            let operation = try #require(paths[parts[1]]?[parts[0].lowercased()] as? [String: Any], "\(route)")
            let responses = try #require(operation["responses"] as? [String: Any], "\(route)")
            #expect(responses["200"] != nil || responses["201"] != nil || responses["204"] != nil, "\(route)")
            if parts[0] == "POST" {
                for status in ["400", "401", "413", "415", "500", "503"] { #expect(responses[status] != nil, "\(route) \(status)") }
            }
        }
    }

    @Test("GET /openapi.json serves the document in the repository")
    func servesTheRepositoryDocument() async throws {
        let fixture = try ServiceFixture()
        let app = Application(router: PaywallAPI(service: fixture.service).router())
        let file = try Data(contentsOf: repositoryRoot.appendingPathComponent("Sources/PaywallHTTP/openapi.json"))
        try await app.test(.router) { client in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect(Data(buffer: response.body) == file)
            }
        }
    }
}
