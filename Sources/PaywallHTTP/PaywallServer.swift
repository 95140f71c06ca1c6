import Foundation
import Synchronization
import Hummingbird
import Logging
import NIOCore
import PaywallCore
import PaywallService
import ServiceLifecycle
import UnixSignals

/// Where and how the server listens and logs: from `PAYWALL_HOST`, `PAYWALL_PORT`,
/// `PAYWALL_LOG_LEVEL`, `PAYWALL_LOG_FORMAT`, overridden by flags. Invalid values are
/// refused with the setting's name, before anything binds.
public struct ServerSettings: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var logLevel: Logger.Level = .info
    public enum LogFormat: String, Sendable { case text, json }
    public var logFormat: LogFormat = .text
    /// The bearer token `/metrics` asks for (`PAYWALL_METRICS_TOKEN`: Prometheus's
    /// `authorization` credentials). Nil: `/metrics` answers anyone who reaches the port.
    public var metricsToken: String?
    /// Origins whose pages may call the reader-facing API from a browser
    /// (`PAYWALL_CORS_ORIGINS`, comma-separated, e.g. `https://news.example.com`); none by default.
    public var corsOrigins: Set<String> = []
    /// Seconds a connection may send nothing before it is closed (`PAYWALL_IDLE_TIMEOUT`, e.g.
    /// `60s`, 1 s to 1 h): an idle keep-alive, or headers never finished, held a server slot
    /// for good before. Behind a proxy, keep it longer than the proxy's own idle timeout.
    public var idleTimeout: Int64 = 60
    /// Seconds a route waits for a request's whole body (`PAYWALL_BODY_TIMEOUT`, 1 s to
    /// 10 min, default 30 s): a body sent a byte at a time restarts the idle timer each time.
    public var bodyTimeout: Int64 = 30

    public init() {}

    /// Flags given on the command line (nil: not given).
    public struct Flags: Sendable {
        public var host: String?
        public var port: Int?
        public var logLevel: String?
        public var logFormat: String?
        public init() {}
    }

    /// An IPv4 or IPv6 address (as `inet_pton` reads it) or a host name (letters, digits
    /// and inner hyphens in dot-separated labels). A dotted number that is no address
    /// (`999.1.1.1`) is refused here, as a usage error, not by a failed bind after start-up.
    static func isListenHost(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        var buffer = [UInt8](repeating: 0, count: 16)
        if host.contains(":") { return inet_pton(AF_INET6, host, &buffer) == 1 }
        if host.allSatisfy({ $0.isNumber || $0 == "." }) { return inet_pton(AF_INET, host, &buffer) == 1 }
        let labelCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && label.allSatisfy(labelCharacters.contains) && label.first != "-" && label.last != "-"
        }
    }

    /// Refuses a host that does not resolve here (a lookup: ``resolve(environment:flags:)``
    /// checks the form only), so that a server fails before it opens or loads anything, not
    /// at the bind after the demo data. `flags` says which setting to name.
    public func checkHostResolves(flags: Flags) throws(ServiceError) {
        var found: UnsafeMutablePointer<addrinfo>?
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let status = getaddrinfo(host, nil, &hints, &found)
        if let found { freeaddrinfo(found) }
        guard status != 0 else { return }
        throw .configuration(
            name: flags.host != nil ? "--host" : "PAYWALL_HOST", value: host,
            expected: "an address or a host name that resolves here (\(String(cString: gai_strerror(status))))")
    }

    /// The variables ``resolve(environment:flags:)`` reads.
    public static let environmentNames: Set<String> = [
        "PAYWALL_HOST", "PAYWALL_PORT", "PAYWALL_LOG_LEVEL", "PAYWALL_LOG_FORMAT", "PAYWALL_METRICS_TOKEN", "PAYWALL_IDLE_TIMEOUT", "PAYWALL_BODY_TIMEOUT",
        "PAYWALL_CORS_ORIGINS",
    ]

    public static func resolve(environment: [String: String], flags: Flags) throws(ServiceError) -> ServerSettings {
        var settings = ServerSettings()
        func invalid(_ name: String, _ value: String, _ expected: String) -> ServiceError {
            .configuration(name: name, value: value, expected: expected)
        }
        if let host = flags.host ?? environment["PAYWALL_HOST"] {
            guard Self.isListenHost(host) else {
                throw invalid(flags.host != nil ? "--host" : "PAYWALL_HOST", host, "an address or host name to listen on, e.g. 127.0.0.1 or ::1")
            }
            settings.host = host
        }
        if let port = flags.port {
            guard (0...65_535).contains(port) else { throw invalid("--port", String(port), "a port from 0 to 65535 (0: any free port)") }
            settings.port = port
        } else if let text = environment["PAYWALL_PORT"] {
            guard let port = Int(text), (0...65_535).contains(port) else {
                // `tcp://10.0.0.7:8080` is what Kubernetes sets for a Service named paywall.
                let expected = text.hasPrefix("tcp://")
                    ? "a port from 0 to 65535; this value is a Kubernetes service link (a Service named paywall): pass --port, or set enableServiceLinks: false on the pod"
                    : "a port from 0 to 65535"
                throw invalid("PAYWALL_PORT", text, expected)
            }
            settings.port = port
        }
        if let text = flags.logLevel ?? environment["PAYWALL_LOG_LEVEL"] {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw invalid(flags.logLevel != nil ? "--log-level" : "PAYWALL_LOG_LEVEL", text, "trace, debug, info, notice, warning, error or critical")
            }
            settings.logLevel = level
        }
        if let token = environment["PAYWALL_METRICS_TOKEN"] {
            // Never echoed back in the message: it is a secret.
            guard (16...256).contains(token.utf8.count), token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw invalid("PAYWALL_METRICS_TOKEN", "(\(token.utf8.count) characters, not shown)", "16 to 256 printable ASCII characters without spaces, e.g. from: openssl rand -hex 32")
            }
            settings.metricsToken = token
        }
        if let text = environment["PAYWALL_IDLE_TIMEOUT"] {
            guard let seconds = try? TimeText.duration(text), (1...3_600).contains(seconds) else {
                throw invalid("PAYWALL_IDLE_TIMEOUT", text, "a duration from 1s to 1h, e.g. 60s or 5m")
            }
            settings.idleTimeout = Int64(seconds)
        }
        if let text = environment["PAYWALL_BODY_TIMEOUT"] {
            guard let seconds = try? TimeText.duration(text), (1...600).contains(seconds) else {
                throw invalid("PAYWALL_BODY_TIMEOUT", text, "a duration from 1s to 10m, e.g. 30s")
            }
            settings.bodyTimeout = Int64(seconds)
        }
        if let text = environment["PAYWALL_CORS_ORIGINS"], !text.trimmingCharacters(in: .whitespaces).isEmpty {
            for item in text.split(separator: ",") {
                let origin = item.trimmingCharacters(in: .whitespaces)
                guard Self.isOrigin(origin) else {
                    throw invalid("PAYWALL_CORS_ORIGINS", origin, "origins as browsers send them, comma-separated: a scheme, a host and maybe a port, e.g. https://news.example.com or http://localhost:3000 (no path, no '*')")
                }
                settings.corsOrigins.insert(origin)
            }
        }
        if let text = flags.logFormat ?? environment["PAYWALL_LOG_FORMAT"] {
            guard let format = LogFormat(rawValue: text.lowercased()) else {
                throw invalid(flags.logFormat != nil ? "--log-format" : "PAYWALL_LOG_FORMAT", text, "text or json")
            }
            settings.logFormat = format
        }
        return settings
    }

    /// `https://host[:port]` or `http://host[:port]`, lower case, as a browser's `Origin`.
    static func isOrigin(_ text: String) -> Bool {
        let rest: Substring
        if text.hasPrefix("https://") { rest = text.dropFirst(8) } else if text.hasPrefix("http://") { rest = text.dropFirst(7) } else { return false }
        guard !rest.isEmpty, rest.count <= 253, rest == rest.lowercased() else { return false }
        let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let host = parts[0]
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }), host.allSatisfy(\.isASCII) else { return false }
        if parts.count == 2 { guard let port = Int(parts[1]), (1...65_535).contains(port), String(port) == parts[1] else { return false } }
        return true
    }
}

/// Runs the API until SIGTERM or SIGINT: stops accepting, lets requests in flight finish,
/// then returns (the caller closes the service). SIGHUP reloads the policy and the key
/// ring; a policy that does not check is refused and logged, and the old one stays.
public enum PaywallServer {
    public static func run(
        api: PaywallAPI, settings: ServerSettings, logger: Logger,
        onReady: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) async throws {
        let app = Application(
            router: api.router(),
            // A connection that sends nothing for a while (an idle keep-alive, or headers
            // never finished) is closed: without it one held a server slot for good.
            server: .http1(configuration: .init(idleTimeout: .seconds(settings.idleTimeout))),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "paywall"),
            onServerRunning: { channel in
                await onReady(settings.host, channel.localAddress?.port ?? settings.port)
            },
            logger: logger)
        // A group shuts its services down last first, each after the one before has
        // ended: the server is last so that it stops accepting the moment SIGTERM comes
        // (first in the list, it waited for the watchers' sleeps: new connections were
        // still answered for up to two seconds), while the watchers keep the policy and
        // keys current for the requests it drains.
        var configuration = ServiceGroupConfiguration(
            services: [
                ReloadOnHangup(service: api.service, logger: logger), PruneHourly(service: api.service, logger: logger),
                PolicyWatcher(service: api.service, logger: logger), KeyRingWatcher(service: api.service, logger: logger), app,
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // Requests in flight get this long to finish; a slow client cannot hold the
        // shutdown forever.
        configuration.maximumGracefulShutdownDuration = .seconds(20)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
    }
}

/// Reloads the policy and the key ring on SIGHUP.
struct ReloadOnHangup: Service {
    let service: PaywallService
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                let policy = try service.reloadPolicy()
                // Which one: once a revision is published to the store it wins over the
                // folder, and an operator who edited the folder must be told it was not read.
                let source = service.policyPublication.map { "publication #\($0) (the store's; the folder is not read once one is published)" }
                    ?? "folder \(service.configuration.policyDirectory.path)"
                logger.notice("policy reloaded", metadata: ["revision": .string(policy.revision), "source": .string(source)])
            } catch {
                logger.error("policy refused; the previous one stays", metadata: ["reason": .string(error.description)])
            }
            do {
                let ring = try service.reloadKeys()
                logger.notice("keys reloaded", metadata: ["keys": .string(String(ring.records.count))])
            } catch {
                logger.error("keys refused; the previous ring stays", metadata: ["reason": .string(error.description)])
            }
        }
    }
}

/// Loads the key ring again when its folder's manifest changes (``PaywallService/refreshKeysIfChanged()``):
/// a key rotated or retired by `paywall keys` in another process, or a new `Keys/` deployed,
/// is in force here within ``interval`` without a SIGHUP.
struct KeyRingWatcher: Service {
    let service: PaywallService
    let logger: Logger
    var interval: Duration = .seconds(2)

    func run() async throws {
        var lastRefusal: String?
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                if let ring = try await service.blocking({ service throws(ServiceError) in try service.refreshKeysIfChanged() }) {
                    logger.notice("keys reloaded: the key folder changed", metadata: ["keys": .string(String(ring.records.count))])
                }
                lastRefusal = nil
            } catch {
                // Said once per distinct failure, not every two seconds.
                let text = "\(error)"
                if text != lastRefusal { logger.error("keys refused; the previous ring stays", metadata: ["reason": .string(text)]) }
                lastRefusal = text
            }
            // Ends at once on shutdown, not after the interval.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// Deletes expired sessions, links and old mail every hour (``PaywallService/prune(actor:)``),
/// so the tables every refresh and every mail add do not grow for ever. Off the
/// cooperative pool (a write transaction).
struct PruneHourly: Service {
    let service: PaywallService
    let logger: Logger
    var interval: Duration = .seconds(3_600)

    func run() async throws {
        // Cancelled (the group ends because another service failed, e.g. the port is taken)
        // is not a graceful shutdown: without the second test the sleep below returns at
        // once, forever, and the process spins (seen: 100% CPU, no exit).
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let report = try await service.blocking { service throws(ServiceError) in try service.prune(actor: .system) }
                if report.total > 0 {
                    logger.info("pruned", metadata: Logger.Metadata(uniqueKeysWithValues: report.counts.map { ($0.name, .string(String($0.count))) }))
                }
            } catch {
                logger.warning("pruning failed; tried again next hour", metadata: ["reason": .string(error.description)])
            }
            // Ends at once on shutdown (cancelled), not after the hour.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// Puts policies published to the store (`paywall policy publish`, by any server or admin)
/// in force: at once on PostgreSQL's notification, and by polling every `interval` (the
/// only way on SQLite, and the backstop for a notification missed while disconnected).
/// A publication that does not compile here is logged once and the policy in force stays.
struct PolicyWatcher: Service {
    let service: PaywallService
    let logger: Logger
    var interval: Duration = .seconds(2)

    /// What the log says when looking for a publication failed. The database out of reach
    /// is not a refused policy: an operator must not go looking for a bad publication.
    static func message(for error: any Error) -> Logger.Message {
        let code = (error as? ServiceError)?.code
        if code == "database_unavailable" || code == "database_locked" {
            return "could not look for a published policy (the database is out of reach); the policy in force stays"
        }
        return "published policy refused; the policy in force stays"
    }

    func run() async throws {
        let refusals = Mutex<String?>(nil)
        let refresh: @Sendable () async -> Void = { [service, logger] in
            do {
                if let policy = try await service.blocking({ service throws(ServiceError) in try service.refreshPublishedPolicy() }) {
                    logger.notice("policy in force", metadata: [
                        "revision": .string(policy.revision), "publication": .string(service.policyPublication.map(String.init) ?? "folder"),
                    ])
                }
            } catch {
                // Said once per distinct failure, not every few seconds.
                let text = "\(error)"
                if refusals.withLock({ last in defer { last = text }; return last != text }) {
                    logger.error(Self.message(for: error), metadata: ["reason": .string(LogText.maskingEmails(text))])
                }
            }
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if let notifications = service.policyNotifications() {
                    group.addTask { for await _ in notifications { await refresh() } }
                }
                group.addTask {
                    while !Task.isCancelled {
                        await refresh()
                        try? await Task.sleep(for: interval)
                    }
                }
                await group.waitForAll()
            }
        }
    }
}
