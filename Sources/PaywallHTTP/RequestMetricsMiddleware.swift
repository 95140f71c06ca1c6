import Dispatch
import HTTPTypes
import Hummingbird
import Metrics

/// Requests and their latency by route, method and status, for `/metrics`: the series
/// Hummingbird's `MetricsMiddleware` records (`hb_requests`, `http_server_request_duration`,
/// `hb_request_errors`), at a fraction of its cost.
///
/// Why not Hummingbird's: it cost a member check about 6 µs of its 46 (alternating 5 s runs
/// of `POST /v1/access` with each, 46-50 µs against 40-44: BENCHMARKS.md, sixth session),
/// more than our whole policy decision. It wraps every response body in a closure that
/// runs after the write, and keeps an in-flight gauge that every request changes twice
/// from every core. Here the latency
/// ends when the handler returns its response (our bodies are small and written at once),
/// is recorded for errors too (Hummingbird's records none for them), and there is no
/// in-flight gauge (the request rate and latency give it: Little's law).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = PaywallRequestContext

    let made = MetricCache<RouteSeries.Key, RouteSeries>()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            let response = try await next(request, context)
            series(context.endpointPath ?? "Unknown", request.method, response.status).record(since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            series(context.endpointPath ?? "NotFound", request.method, status).record(since: start, failed: true)
            throw error
        }
    }

    /// The series of a route (the router's path, not the request's: a bounded set; unknown
    /// paths are one "NotFound"), method and status.
    func series(_ route: String, _ method: HTTPRequest.Method, _ status: HTTPResponse.Status) -> RouteSeries {
        made.metric(RouteSeries.Key(route: route, method: method, status: status.code)) {
            RouteSeries(route: route, method: method, status: status)
        }
    }
}

/// The metrics of one route, method and status, made once (each `Counter(label:…)` is a
/// registry lookup under its lock).
struct RouteSeries: Sendable {
    struct Key: Hashable, Sendable {
        var route: String
        var method: HTTPRequest.Method
        var status: Int
    }

    let requests: Counter
    let duration: Metrics.Timer
    /// Requests that ended in an error (thrown, not answered): only for error statuses, so
    /// `/metrics` shows no error series for a success.
    let errors: Counter?

    init(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status) {
        let dimensions = [("http.route", route), ("http.request.method", method.rawValue), ("http.response.status_code", String(status.code))]
        requests = Counter(label: "hb.requests", dimensions: dimensions)
        duration = Metrics.Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
        errors = status.code >= 400
            ? Counter(label: "hb.request.errors", dimensions: [("http.route", route), ("http.request.method", method.rawValue), ("error.type", String(status.code))])
            : nil
    }

    func record(since start: UInt64, failed: Bool = false) {
        requests.increment()
        duration.recordNanoseconds(Int64(clamping: DispatchTime.now().uptimeNanoseconds &- start))
        if failed { errors?.increment() }
    }
}
