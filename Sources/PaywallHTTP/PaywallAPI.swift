import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Prometheus
import Synchronization
import NIOCore
import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallService
import PaywallTokens
import PaywallViews
import PaywallWeb

/// The request context of the API: Hummingbird's, plus the client's address.
public struct PaywallRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection, whose body reads keep a deadline (``BodyReading``, set by
    /// ``ErrorMiddleware``).
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

/// The HTTP API over a ``PaywallService``: routes only; every decision, token and write
/// is the service's. `paywall serve` and the tests build the same router.
public struct PaywallAPI: Sendable {
    public let service: PaywallService
    /// Device tokens minted per client address (a burst, then one per interval).
    public let deviceMinting: RateLimiter
    /// How long verifiers may cache the JWKS: shorter than the key ring's publish-ahead
    /// time, so a new key is seen before it signs.
    public let jwksMaxAge: Int

    /// The registry `/metrics` shows (the server bootstraps swift-metrics with it); nil: no route.
    public let metrics: PrometheusCollectorRegistry?

    /// The SHA-256 of the bearer token `/metrics` asks for (``ServerSettings/metricsToken``);
    /// nil: it asks for none. A digest so the comparison takes the same time whatever the
    /// length and content of what a client sends.
    let metricsTokenDigest: [UInt8]?

    /// The origins whose pages may call the reader-facing API (``CORSMiddleware``); empty: none.
    let corsOrigins: Set<String>

    /// The reader's web pages (PaywallWeb), mounted on this router when set (`paywall serve`).
    public var web: WebSite?

    /// How long a route waits for a request's whole body (`PAYWALL_BODY_TIMEOUT`): 408
    /// `request_timeout` past it, and the connection's input closed.
    public let bodyTimeout: Duration

    public init(
        service: PaywallService, deviceMinting: RateLimiter = RateLimiter(burst: 20, interval: 6), jwksMaxAge: Int? = nil,
        metrics: PrometheusCollectorRegistry? = nil, metricsToken: String? = nil, corsOrigins: Set<String> = [], bodyTimeout: Duration = .seconds(30)
    ) {
        self.bodyTimeout = bodyTimeout
        self.corsOrigins = corsOrigins
        self.service = service
        self.deviceMinting = deviceMinting
        self.jwksMaxAge = jwksMaxAge ?? Int(service.configuration.jwksMaxAge)
        self.metrics = metrics
        self.metricsTokenDigest = metricsToken.map { SHA256.hash($0) }
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// The client's address: the peer's, or the one a trusted proxy forwarded
    /// (``TrustedProxies``, from the service's configuration).
    func clientAddress(_ request: Request, _ context: PaywallRequestContext) -> String? {
        service.configuration.trustedProxies.client(peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[values: Self.forwardedFor])
    }

    /// Every route, with the error and request-id middleware.
    public func router() -> Router<PaywallRequestContext> {
        // HEAD answers wherever GET does (as HTTP requires).
        let router = Router(context: PaywallRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.middlewares.add(RequestMetricsMiddleware())
        router.middlewares.add(RequestIDMiddleware())
        // Outside the error middleware, so error responses carry the CORS headers too.
        if !corsOrigins.isEmpty { router.middlewares.add(CORSMiddleware(origins: corsOrigins)) }
        router.middlewares.add(ErrorMiddleware(web: web, bodyTimeout: bodyTimeout, service: service))
        router.post("/v1/access") { request, context in try await self.access(request, context) }
        router.post("/v1/access/preview") { request, context in try await self.preview(request, context) }
        router.post("/v1/devices") { request, context in try await self.devices(request, context) }
        router.get("/.well-known/jwks.json") { request, _ in try self.jwks(request) }
        router.get("/healthz") { _, _ in Self.json(#"{"status":"ok"}"#) }
        router.get("/readyz") { _, _ in try await self.ready() }
        router.get("/openapi.json") { _, _ in try Self.openAPI() }
        addAdminRoutes(to: router)
        addGiftRoutes(to: router)
        web?.addRoutes(to: router)
        addBillingRoutes(to: router)
        // Registered whatever the registry (`paywall serve` always has one): the path is in
        // the route table and the document, so other methods get 405 and a server built
        // without metrics (tests) answers 404 here, as for no route.
        router.get("/metrics") { request, _ in
            guard let metrics else { throw APIError.notFound }
            if let expected = metricsTokenDigest {
                let given = try bearer(request).map { SHA256.hash($0) } ?? []
                guard ConstantTime.equal(given, expected) else { throw APIError.metricsTokenRequired }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
        addAccountRoutes(router)
        Self.refuseOtherMethods(router)
        return router
    }

    /// Each route's path and a method it takes (a path taking several is listed once per method).
    static let routes: [(path: String, allowed: HTTPRequest.Method)] = [
        ("/v1/access", .post), ("/v1/access/preview", .post), ("/v1/devices", .post),
        ("/.well-known/jwks.json", .get), ("/healthz", .get), ("/readyz", .get), ("/openapi.json", .get), ("/metrics", .get),
    ] + adminRoutes + giftRoutes + accountRoutes + billingRoutes

    /// The methods each path takes, in the table's order.
    static let allowedMethods: [String: [HTTPRequest.Method]] = routes.reduce(into: [:]) { $0[$1.path, default: []].append($1.allowed) }

    /// The methods each path takes, as `Allow` lists them (HEAD wherever GET).
    static let methods: [String: String] = allowedMethods.mapValues { allowed in
        allowed.flatMap { $0 == .get ? ["GET", "HEAD"] : [$0.rawValue] }.joined(separator: ", ")
    }

    /// The `Allow` list of the route `path` (a request's path) belongs to: literal paths
    /// first, then patterns whose `{name}` segments match any one segment. Nil: no route.
    static func allowHeader(forPath path: String) -> String? {
        if let allowed = methods[path] { return allowed }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return patterns.first { pattern in
            pattern.segments.count == segments.count
                && zip(pattern.segments, segments).allSatisfy { $0.hasPrefix("{") ? !$1.isEmpty : $0 == $1 }
        }?.allow
    }

    /// The paths with `{name}` segments, split once.
    static let patterns: [(segments: [Substring], allow: String)] = methods.keys.sorted().filter { $0.contains("{") }.compactMap { path in
        methods[path].map { (path.split(separator: "/", omittingEmptySubsequences: false), $0) }
    }

    /// Hummingbird answers a known path asked with a method it has no route for as an
    /// unknown route (404): every other method of each path is answered 405 here instead,
    /// with the `Allow` header (the error middleware does the same for any other method).
    static func refuseOtherMethods(_ router: Router<PaywallRequestContext>) {
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]
        for (path, allowed) in allowedMethods {
            let error = APIError.methodNotAllowed(allow: Self.methods[path])
            for method in methods where !allowed.contains(method) && !(method == .head && allowed.contains(.get)) {
                router.on(RouterPath(path), method: method) { _, _ -> Response in throw error }
            }
        }
    }

    // MARK: - Access

    func access(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let reader = try readerOf(request)
        let input = try AccessRequest(try await RequestBody.object(&request), request: requestFacts(request, context), single: true)
        let answer = try await service.checkAccess(input, reader: reader)
        Self.count(answer.decision)
        return Self.json(bytes: AccessView(answer).jsonBytes(), private: true)
    }

    func preview(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let reader = try readerOf(request)
        let body = try await RequestBody.object(&request).only(["articles"])
        guard let items = try body.list("articles") else { throw body.missing("articles") }
        guard (1...PaywallService.maximumPreview).contains(items.count) else {
            throw body.invalid("articles", "a list of 1 to \(PaywallService.maximumPreview) articles")
        }
        let facts = requestFacts(request, context)
        let inputs = try items.enumerated().map { index, item in
            guard let object = item.objectValue else { throw body.invalid("articles[\(index)]", "an object") }
            return try AccessRequest(RequestBody.Fields(object: object, path: "articles[\(index)]"), request: facts)
        }
        let answers = try await service.blocking { service throws(ServiceError) in try service.previewAnswers(inputs, reader: reader) }
        struct Preview: Encodable { var articles: [PreviewItemView] }
        let views = zip(inputs, answers).map { PreviewItemView(title: $0.title, article: $0.article.id, answer: $1) }
        return try Self.json(Preview(articles: views), private: true)
    }

    // MARK: - Devices

    func devices(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        // An empty body (whatever the headers say) or an empty object: a new device. A
        // device token in the Authorization header: the same device, renewed. Any other
        // body is read as strictly as everywhere (415 without a JSON content type).
        _ = try await RequestBody.optionalObject(&request)?.only([])
        let renewing = try bearer(request)
        if renewing == nil {
            let client = clientRateLimitKey(clientAddress(request, context))
            if let wait = deviceMinting.take(client, at: service.now) { throw APIError.rateLimited(retryAfter: wait) }
        }
        let issued = try await service.blocking { service throws(ServiceError) in try service.issueDeviceToken(renewing: renewing) }
        var response = try Self.json(DeviceTokenView(issued), private: true)
        response.status = renewing == nil ? .created : .ok
        return response
    }

    // MARK: - Keys and operations

    func jwks(_ request: Request) throws -> Response {
        let body = Data(try service.jwks().json.serialized())
        let tag = "\"" + Base64URL.encode(Array(SHA256.hash(body).prefix(16))) + "\""
        var headers: HTTPFields = [
            .contentType: "application/json", .cacheControl: "public, max-age=\(jwksMaxAge)", .eTag: tag,
        ]
        if Self.matches(ifNoneMatch: request.headers[.ifNoneMatch], tag: tag) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// `If-None-Match` as RFC 9110 §13.1.2 compares it: weakly (`W/"x"` matches `"x"`), any
    /// of a list, or `*`.
    static func matches(ifNoneMatch header: String?, tag: String) -> Bool {
        guard let header else { return false }
        return header.split(separator: ",").contains { item in
            let candidate = item.trimmingCharacters(in: .whitespaces)
            return candidate == "*" || (candidate.hasPrefix("W/") ? String(candidate.dropFirst(2)) : candidate) == tag
        }
    }

    func ready() async throws -> Response {
        // A write transaction, off the cooperative pool; answered within the probe deadline
        // however long the database takes (a stalled one: not ready, at once).
        let report = try await service.readiness(within: Self.readinessDeadline)
        struct Ready: Encodable { var status: String; var database: Bool; var policyRevision: String; var signingKey: String }
        return try Self.json(Ready(status: "ready", database: true, policyRevision: report.policyRevision, signingKey: report.signingKey))
    }

    /// How long `/readyz` waits for its check: below the usual load-balancer probe timeout
    /// (5 s), so the probe gets a 503 that says why rather than a timeout.
    static let readinessDeadline: Duration = .seconds(3)

    static let openAPIDocument: Data? = Bundle.module.url(forResource: "openapi", withExtension: "json").flatMap { try? Data(contentsOf: $0) }

    static func openAPI() throws -> Response {
        guard let document = openAPIDocument else { throw APIError(status: .internalServerError, code: "internal", message: "the API document is missing") }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: document)))
    }

    // MARK: - Helpers

    /// Decisions by access and deciding rule (names from the policy: a bounded set), and
    /// meter units consumed.
    static func count(_ decision: Decision) {
        decisionCounters.metric("\(decision.access)|\(decision.decidingRules.first ?? "none")") {
            Counter(label: "paywall_decisions_total", dimensions: [
                ("access", decision.access.description), ("rule", decision.decidingRules.first ?? "none"),
            ])
        }.increment()
        if let meter = decision.meter, meter.consumed {
            decisionCounters.metric("meter|" + meter.name) {
                Counter(label: "paywall_meter_units_consumed_total", dimensions: [("meter", meter.name)])
            }.increment()
        }
    }

    /// The counters `count(_:)` increments, made once per key (each `Counter(label:…)` is a
    /// registry lookup under its lock); the keys are the policy's access levels, rule and
    /// meter names: a bounded set.
    static let decisionCounters = MetricCache<String, Metrics.Counter>()

    /// The token scheme `bearerToken(_:)` matches, made once.
    static let bearerScheme = Array("bearer".utf8)

    /// The bearer token, if any; a malformed Authorization header is refused.
    func bearer(_ request: Request) throws -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        guard let token = Self.bearerToken(header) else { throw APIError.badAuthorization }
        return token
    }

    /// The token of `Bearer <token>` (scheme case-insensitive, spaces or tabs around the
    /// token ignored); nil for anything else. Byte by byte: on every check, and
    /// Foundation's `trimmingCharacters` alone cost 5% of a member check (measured).
    static func bearerToken(_ header: String) -> String? {
        var header = header
        return header.withUTF8 { bytes -> String? in
            func blank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
            let scheme = Self.bearerScheme
            guard bytes.count > scheme.count, blank(bytes[scheme.count]) else { return nil }
            for index in 0..<scheme.count where bytes[index] | 0x20 != scheme[index] { return nil }
            var start = scheme.count + 1, end = bytes.count
            while start < end, blank(bytes[start]) { start += 1 }
            while end > start, blank(bytes[end - 1]) { end -= 1 }
            guard start < end, end - start <= 8192 else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
    }

    func readerOf(_ request: Request) throws -> AccessReader {
        try service.accessReader(bearer: try bearer(request))
    }

    /// What the request itself tells the policy: the client's address, and from a trusted
    /// proxy whether it verified the client as a crawler. (The body may add the caller's
    /// word for the country, referrer and device.)
    func requestFacts(_ request: Request, _ context: PaywallRequestContext) -> RequestFacts {
        service.configuration.trustedProxies.requestFacts(
            client: clientAddress(request, context), peer: context.remoteAddress?.ipAddress,
            verifiedCrawlerHeader: request.headers[Self.verifiedCrawlerField], channel: "api")
    }

    static let verifiedCrawlerField = HTTPField.Name(TrustedProxies.verifiedCrawlerHeader)!

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json<T: Encodable>(_ value: T, private isPrivate: Bool = false) throws -> Response {
        json(bytes: try ViewEncoding.encoder(pretty: false).encode(value), private: isPrivate)
    }

    static func json(bytes: some Sequence<UInt8>, private isPrivate: Bool = false) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: isPrivate ? "private, no-store" : "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// Turns every error into the API's JSON error, and logs the full reason (never the
/// request's tokens or body).
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = PaywallRequestContext
    /// The reader's pages, when mounted: a browser's page request for an unknown path gets
    /// their 404 page rather than the API's JSON.
    var web: WebSite?
    /// ``PaywallAPI/bodyTimeout``, given to the routes' body reading.
    var bodyTimeout: Duration = .seconds(30)
    /// Told when a request meets the database unavailable (`/readyz` then checks again).
    var service: PaywallService?
    /// The refusals' log lines, per router (one a server; each test its own).
    let logLimits = LogLimits()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await BodyReading.$current.withValue(BodyReading.Reading(channel: context.channel, deadline: bodyTimeout)) {
            let outcome: Result<Response, any Error>
            do {
                outcome = .success(try await answer(request, context: context, next: next))
            } catch {
                outcome = .failure(error)
            }
            // Settled after the catch, not in it: the same calls awaited inside the catch
            // blocks (`catch var error as APIError`) made every live-server test crash on a
            // null pointer in the debug build (not pinned down further than that).
            let closed = await BodyReading.settleUnread(request)
            switch outcome {
            case var .success(response):
                if closed { response.headers[.connection] = "close" }
                return response
            case let .failure(error):
                guard closed, var answer = error as? APIError else { throw error }
                answer.headers[.connection] = "close"
                throw answer
            }
        }
    }

    private func answer(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw Self.counted(error)
        } catch let error as ServiceError {
            if error.category == .unavailable { service?.databaseUnavailableSeen() }
            let level: Logger.Level = error.category == .internal || error.category == .unavailable ? .error : .info
            logLimits.log(context.logger, level, "refused", code: error.code, outage: error.category == .unavailable, metadata: [
                "code": .string(error.code), "reason": .string(LogText.maskingEmails(error.description)),
            ])
            throw Self.counted(APIError(error))
        } catch let error as HTTPError {
            let answer: APIError
            switch error.status {
            case .notFound:
                // The router answers 404 for a known path with another method: that is 405.
                if let allowed = PaywallAPI.allowHeader(forPath: request.uri.path) {
                    answer = .methodNotAllowed(allow: allowed)
                } else {
                    if let page = await web?.notFoundPage(request, context) { return page }
                    answer = .notFound
                }
            case .methodNotAllowed: answer = .methodNotAllowed(allow: PaywallAPI.allowHeader(forPath: request.uri.path))
            default: answer = APIError(status: error.status, code: "http_error", message: error.body ?? error.status.reasonPhrase)
            }
            throw Self.counted(answer)
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw Self.counted(.tooLarge(RequestBody.limit))
        } catch {
            context.logger.error("unexpected error", metadata: ["error": .string(LogText.maskingEmails(String(describing: error)))])
            throw Self.counted(APIError(status: .internalServerError, code: "internal", message: "an internal error occurred"))
        }
    }


    /// Every error answered is counted by its code (`paywall_errors_total`), the router's
    /// own (an unknown route, a wrong method) and the unexpected (500) included.
    static func counted(_ error: APIError) -> APIError {
        Counter(label: "paywall_errors_total", dimensions: [("code", error.code)]).increment()
        return error
    }
}

/// Every log line of a request carries its id: the client's `X-Request-Id` (when it is a
/// sane token: 1 to 64 of A-Z a-z 0-9 . _ -) or a new one, echoed back.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = PaywallRequestContext
    static let header = HTTPField.Name("X-Request-Id")!

    /// Ids made here: a random prefix per process and a counter, unique across restarts
    /// and servers without a UUID per request (`UUID().uuidString` was 2% of a check).
    static let prefix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
    static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        prefix + "-" + String(counter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 16)
    }

    static func isSane(_ id: String) -> Bool {
        id.utf8.count >= 1 && id.utf8.count <= 64 && id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): true
            default: false
            }
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[Self.header].flatMap { Self.isSane($0) ? $0 : nil } ?? Self.next()
        context.logger[metadataKey: "request"] = .string(id)
        do {
            var response = try await next(request, context)
            response.headers[Self.header] = id
            return response
        } catch let error as APIError {
            var error = error
            error.headers[Self.header] = id
            throw error
        }
    }
}

/// Metric handles by a key, each made on first use (each `Counter(label:…)` is a registry
/// lookup under its lock): the decision counters, the request series.
final class MetricCache<Key: Hashable & Sendable, Metric: Sendable>: Sendable {
    private let metrics = Mutex<[Key: Metric]>([:])

    func metric(_ key: Key, make: () -> Metric) -> Metric {
        metrics.withLock { metrics in
            if let metric = metrics[key] { return metric }
            let metric = make()
            metrics[key] = metric
            return metric
        }
    }
}

