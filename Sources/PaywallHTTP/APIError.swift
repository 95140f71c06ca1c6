import Foundation
import HTTPTypes
import Hummingbird
import PaywallService
import PaywallViews

/// An error as the API answers it: `{"error": {"code": "...", "message": "..."}}` with a
/// status from the error's category. Messages are the ones an outsider may see
/// (``ServiceError/publicMessage``); the full reason goes to the log only.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields = [:]

    public init(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The API error for a service error.
    public init(_ error: ServiceError) {
        self.init(status: Self.status(for: error.category), code: error.code, message: error.publicMessage)
        if error.category == .unavailable, error.invitesRetry { headers[.retryAfter] = "1" }
        if let wait = error.retryAfter { headers[.retryAfter] = String(ServiceError.seconds(wait)) }
    }

    static func status(for category: ServiceErrorCategory) -> HTTPResponse.Status {
        switch category {
        case .invalid: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .rateLimited: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    private struct Body: Encodable {
        var error: Inner
        struct Inner: Encodable {
            var code: String
            var message: String
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = (try? ViewEncoding.encoder(pretty: false).encode(Body(error: .init(code: code, message: message)))) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        if status == .unauthorized { fields[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // Errors of the API itself, with stable codes.
    static func badJSON(_ detail: String) -> APIError { APIError(status: .badRequest, code: "invalid_json", message: detail) }
    static let unsupportedMediaType = APIError(
        status: .unsupportedMediaType, code: "unsupported_media_type", message: "send the body as application/json")
    static let encodedBody = APIError(
        status: .unsupportedMediaType, code: "unsupported_media_type", message: "send the body without a Content-Encoding (gzip and the others are not read)")
    static func bodyTimeout(_ deadline: Duration) -> APIError {
        APIError(status: .requestTimeout, code: "request_timeout", message: "the body did not arrive within \(deadline.components.seconds) s")
    }
    static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: .contentTooLarge, code: "body_too_large", message: "the body is larger than \(limit) bytes")
    }
    static let notFound = APIError(status: .notFound, code: "not_found", message: "no such route")
    static func methodNotAllowed(allow: String?) -> APIError {
        APIError(
            status: .methodNotAllowed, code: "method_not_allowed", message: "this route does not take that method",
            headers: allow.map { [.allow: $0] } ?? [:])
    }
    static let badAuthorization = APIError(
        status: .unauthorized, code: "invalid_token", message: "send the token as 'Authorization: Bearer <token>'")
    static let metricsTokenRequired = APIError(
        status: .unauthorized, code: "invalid_token", message: "send the metrics token (PAYWALL_METRICS_TOKEN) as 'Authorization: Bearer <token>'")
    static func rateLimited(retryAfter: TimeInterval) -> APIError {
        APIError(
            status: .tooManyRequests, code: "rate_limited", message: "too many requests from this address; try again later",
            headers: [.retryAfter: String(Int(min(86_400, max(1, retryAfter.rounded(.up)))))])
    }
}
