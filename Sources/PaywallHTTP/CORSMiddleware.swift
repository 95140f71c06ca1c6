import HTTPTypes
import Hummingbird

/// Cross-origin access for a publisher's web front end on another origin
/// (`PAYWALL_CORS_ORIGINS`): requests whose `Origin` is one of `origins`, exactly, get
/// `Access-Control-Allow-Origin` with that origin, and their preflight (`OPTIONS` with
/// `Access-Control-Request-Method`) a 204 naming the methods and headers the API takes.
/// Any other origin gets no CORS header, and its preflight goes on to the router (405), so
/// browsers refuse the call. No credentials: the API takes bearer tokens, not cookies, and
/// the reader's pages and the admin area are same-origin only (never listed here).
///
/// Hummingbird's own CORSMiddleware allows one origin, every origin, or echoes any origin;
/// a list of exact origins is what a publisher with several front ends needs.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = PaywallRequestContext

    let origins: Set<String>

    static let origin = HTTPField.Name("Origin")!
    static let allowOrigin = HTTPField.Name("Access-Control-Allow-Origin")!
    static let requestMethod = HTTPField.Name("Access-Control-Request-Method")!
    static let allowMethods = HTTPField.Name("Access-Control-Allow-Methods")!
    static let allowHeaders = HTTPField.Name("Access-Control-Allow-Headers")!
    static let exposeHeaders = HTTPField.Name("Access-Control-Expose-Headers")!
    static let maxAge = HTTPField.Name("Access-Control-Max-Age")!

    /// Only the reader-facing API: the admin API is for tools and servers, not browsers,
    /// and so are the payment providers' webhooks.
    static func covers(_ path: String) -> Bool {
        (path.hasPrefix("/v1/") && !path.hasPrefix("/v1/billing/")) || path == "/.well-known/jwks.json"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.covers(request.uri.path) else { return try await next(request, context) }
        guard let origin = request.headers[Self.origin], origins.contains(origin) else {
            // Every answer on a covered path varies by Origin, with the header or without it:
            // a shared cache (the JWKS is public for five minutes) must not hand a copy made
            // for no origin to the front end's browser.
            var response = try await next(request, context)
            response.headers.append(HTTPField(name: .vary, value: "Origin"))
            return response
        }
        if request.method == .options, request.headers[Self.requestMethod] != nil {
            return Response(status: .noContent, headers: [
                Self.allowOrigin: origin, .vary: "Origin",
                Self.allowMethods: "GET, POST, DELETE",
                Self.allowHeaders: "Authorization, Content-Type, X-Request-Id",
                Self.maxAge: "600",
            ])
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            // An error's body must reach the page too, or it sees only a network failure.
            response = try error.response(from: request, context: context)
        }
        response.headers[Self.allowOrigin] = origin
        response.headers.append(HTTPField(name: .vary, value: "Origin"))
        response.headers[Self.exposeHeaders] = "X-Request-Id, Retry-After, ETag"
        return response
    }
}
