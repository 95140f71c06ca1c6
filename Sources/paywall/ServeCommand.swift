import ArgumentParser
import Foundation
import NIOCore
import Logging
import Metrics
import Prometheus
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallWeb

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API: access checks, device tokens, the JWKS.",
        discussion: """
            With --demo (a newcomer's first command): listens on 127.0.0.1:8080, creates and \
            migrates ./paywall.sqlite (or the --db given; never one PAYWALL_DB alone names, which \
            may be a real one), makes a development key in Keys/ if there is none, loads \
            the shipped Policies/ and a sample catalog with three readers, and prints how to try it. \
            Without --demo it refuses to start without a signing key or on a database file that does not \
            exist (make one with 'paywall db migrate'), and never invents data. \
            SIGTERM or SIGINT: stops accepting, finishes requests in flight, closes the database, \
            exits 0. SIGHUP: reloads the policy and the key ring (a policy that does not check is \
            refused and the old one stays; after 'paywall policy publish' the latest publication is \
            the policy, not the folder). Settings: flags, else PAYWALL_HOST, PAYWALL_PORT, \
            PAYWALL_DB, PAYWALL_KEYS, PAYWALL_POLICIES, PAYWALL_ISSUER, PAYWALL_AUDIENCE, \
            PAYWALL_ACCESS_TTL, PAYWALL_GRANT_TTL, PAYWALL_DEVICE_TTL, PAYWALL_LOG_LEVEL, \
            PAYWALL_LOG_FORMAT, PAYWALL_TRUSTED_PROXIES. Environment only: PAYWALL_STRIPE_MODE (live or test; unset: both), PAYWALL_SECURE_COOKIES \
            (1 when served over TLS), PAYWALL_METRICS_TOKEN (the bearer token GET /metrics asks \
            for; unset: none), PAYWALL_LINK_BASE (the site's public address), PAYWALL_CORS_ORIGINS \
            (origins whose pages may call the API), PAYWALL_IDLE_TIMEOUT (default 60s), PAYWALL_BODY_TIMEOUT (default 30s), PAYWALL_SENDMAIL and \
            PAYWALL_MAIL_FROM (mail), PAYWALL_MAX_SESSIONS, PAYWALL_SIGNUPS_PER_ADDRESS, \
            PAYWALL_TRIAL_NEEDS_VERIFIED_EMAIL, PAYWALL_DEV_KEYS (refused as 1 without --demo: a \
            server signs with a key made with 'paywall keys generate'), PAYWALL_GIFT_TTL, PAYWALL_GIFT_MONTHLY_LIMIT, PAYWALL_ADMIN_TTL, PAYWALL_SCRYPT_LN, \
            PAYWALL_BUSY_TIMEOUT, PAYWALL_METER_COMMITTERS (PostgreSQL: metered-read transactions in flight, \
            default 1), PAYWALL_METER_STATE (SQLite: metered readers whose counted articles the writer keeps \
            in memory, default 50000, about 1.5 KB each; 0: none), PAYWALL_STRIPE_WEBHOOK_SECRETS, PAYWALL_STRIPE_GRACE, \
            PAYWALL_APPLE_ROOT_CERT, PAYWALL_APPLE_BUNDLE_ID, PAYWALL_APPLE_ENVIRONMENT; the README \
            says what each does. The API: GET /openapi.json; the reader's web pages: GET /.
            """
    )

    @Flag(help: "Demo mode: a development key and a sample catalog and readers.") var demo = false
    @Option(help: ArgumentHelp("Address to listen on (default 127.0.0.1).", valueName: "host")) var host: String?
    @Option(help: ArgumentHelp("Port (default 8080; 0: any free port).", valueName: "port")) var port: Int?
    @Option(help: ArgumentHelp("The SQLite database file, or a postgres:// URL shared by several servers (default ./paywall.sqlite; prefer PAYWALL_DB for a URL with a password).", valueName: "path-or-url")) var db: String?
    @Option(help: ArgumentHelp("The signing key folder (default ./Keys).", valueName: "dir")) var keys: String?
    @Option(help: ArgumentHelp("The policy folder (default ./Policies).", valueName: "dir")) var policies: String?
    @Option(help: ArgumentHelp("The tokens' iss (default paywall).", valueName: "name")) var issuer: String?
    @Option(help: ArgumentHelp("The tokens' aud (default paywall-api).", valueName: "name")) var audience: String?
    @Option(name: .customLong("access-ttl"), parsing: .unconditional, help: ArgumentHelp("Access token lifetime (default 15m, at most 24h).", valueName: "duration")) var accessTTL: String?
    @Option(name: .customLong("grant-ttl"), parsing: .unconditional, help: ArgumentHelp("Article grant lifetime (default 5m, at most 1h).", valueName: "duration")) var grantTTL: String?
    @Option(name: .customLong("device-ttl"), parsing: .unconditional, help: ArgumentHelp("Device token lifetime (default 30d, at most 31d).", valueName: "duration")) var deviceTTL: String?
    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default info).", valueName: "level")) var logLevel: String?
    @Option(name: .customLong("log-format"), help: ArgumentHelp("text or json (default text).", valueName: "format")) var logFormat: String?
    @Option(name: .customLong("trusted-proxies"), help: ArgumentHelp("Proxies whose X-Forwarded-For names the client, e.g. 10.0.0.0/8,192.0.2.7 (default: none; the peer is the client).", valueName: "ranges")) var trustedProxies: String?

    /// Every setting, checked before anything opens or binds: invalid ones are usage errors (exit 64).
    func settings() throws -> (ServiceConfiguration, ServerSettings) {
        let environment = ProcessInfo.processInfo.environment
        // The demo adds readers with known passwords and year-long memberships: never
        // into a database only the environment names, which may be production's
        // (`export PAYWALL_DB=postgres://…` as the README shows; found in review).
        if demo, db == nil, let named = environment["PAYWALL_DB"], !named.isEmpty {
            throw ValidationError(
                "--demo adds sample readers with known passwords: it does not use the database PAYWALL_DB names; give it one with --db (e.g. --db demo.sqlite), or unset PAYWALL_DB for ./paywall.sqlite")
        }
        do {
            var overrides = ServiceConfiguration.Overrides()
            overrides.databaseLocation = db
            overrides.keysDirectory = keys
            overrides.policyDirectory = policies
            // Without --demo a server never invents a key: one made on the spot, published by
            // no rotation, would sign every reader's tokens (PAYWALL_DEV_KEYS=1 is refused).
            overrides.developmentKeys = demo
            // A server started on a mistyped path must not come up on a new, empty database
            // (every reader a stranger, every title unknown): only the demo makes one.
            overrides.createDatabase = demo
            overrides.issuer = issuer
            overrides.audience = audience
            overrides.accessTokenLifetime = accessTTL
            overrides.articleGrantLifetime = grantTTL
            overrides.deviceTokenLifetime = deviceTTL
            overrides.trustedProxies = trustedProxies
            overrides.knownEnvironment = knownSettings
            let configuration = try ServiceConfiguration.resolve(environment: environment, overrides: overrides)
            var flags = ServerSettings.Flags()
            flags.host = host
            flags.port = port
            flags.logLevel = logLevel
            flags.logFormat = logFormat
            let server = try ServerSettings.resolve(environment: environment, flags: flags)
            try server.checkHostResolves(flags: flags)
            return (configuration, server)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        // A SIGHUP before the server's handler is in place (a config-management tool
        // reloading every service at once) must not end it with status 129: ignored until
        // then, as the handler takes it over (it traps the signal itself).
        signal(SIGHUP, SIG_IGN)
        let (configuration, server) = try settings()
        if demo {
            // The demo runs on the policy folder (the shipped one from the repository): it is
            // checked before a database is made, with the loader's own message when missing.
            // So is the key folder: one that can be neither opened nor made must not leave
            // a new database behind.
            do {
                _ = try PaywallService.checkPolicy(directory: configuration.policyDirectory)
                try PaywallService.checkKeyFolder(configuration.keysDirectory)
            } catch { throw fail(error) }
        }
        let webSettings: WebSettings
        do { webSettings = try WebSettings.resolve(environment: ProcessInfo.processInfo.environment) } catch { throw ValidationError(error.description) }
        LoggingSystem.bootstrap { label in
            var handler = StandardErrorLogHandler(label: label, format: server.logFormat)
            handler.logLevel = server.logLevel
            return handler
        }
        let logger = Logger(label: "paywall")
        // Prometheus over swift-metrics: what /metrics shows.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let service: PaywallService
        do {
            service = try PaywallService(configuration: configuration)
            if let created = try service.prepareToServe() {
                announce(created, in: configuration.keysDirectory)
            }
        } catch {
            throw fail(error)
        }
        if let unknown = try? service.titleSectionsNotInCatalog(try service.policy()), !unknown.isEmpty {
            logger.warning("the policy has sections for titles not in the catalog, whose rules apply to nothing until they are added (a mistyped id?)", metadata: ["titles": .string(unknown.joined(separator: ","))])
        }
        if service.databaseReadableByOthers {
            logger.warning("the database file is readable by other users; it holds password hashes and sessions: chmod 600 it and its -wal and -shm files", metadata: ["path": .string(service.databaseLocation)])
        }
        // /metrics shows decisions, rules, errors and timings by route: on an address other
        // machines reach, without a token, to anyone who asks (found in review).
        if server.metricsToken == nil, !["127.0.0.1", "::1", "localhost"].contains(server.host) {
            logger.warning("/metrics answers anyone who reaches \(server.host): set PAYWALL_METRICS_TOKEN (Prometheus's bearer credentials), or keep the port private")
        }
        var demoReaders: [DemoReader] = []
        if demo {
            do {
                let load = try service.loadDemoData()
                demoReaders = load.readers
                logger.notice("demo data", metadata: ["titles": .string(String(load.titlesAdded)), "plans": .string(String(load.plansAdded)), "accounts": .string(String(load.accountsAdded.count))])
            } catch {
                throw fail(error)
            }
        }
        var api = PaywallAPI(
            service: service, metrics: registry, metricsToken: server.metricsToken, corsOrigins: server.corsOrigins, bodyTimeout: .seconds(server.bodyTimeout))
        do {
            // The reader's pages on the same server; article texts only with --demo (in
            // production they are the publisher's CMS's, never invented here).
            api.web = try WebSite(service: service, articles: demo ? ArticleLibrary.demo() : .empty, settings: webSettings)
        } catch {
            try? service.close()
            throw fail(error)
        }
        let isDemo = demo
        let readers = demoReaders
        do {
            try await PaywallServer.run(api: api, settings: server, logger: logger) { host, port in
                Self.printWelcome(host: host, port: port, database: service.databaseLocation, demo: isDemo, readers: readers)
            }
        } catch let error as IOError {
            // Binding failed (the port is taken, or not ours to use): say where and why.
            try? service.close()
            printError("cannot listen on \(server.host):\(server.port): \(String(cString: strerror(error.errnoCode))); choose another --port or stop what holds it")
            throw ExitStatus.refused
        } catch let error as SocketAddressError.UnknownHost {
            // A host name that does not resolve, or an address that is no address.
            try? service.close()
            printError("cannot listen on \(error.host):\(error.port): no such address or host name; give --host an address of this machine (127.0.0.1, ::1, 0.0.0.0) or a name it resolves")
            throw ExitStatus.refused
        } catch {
            try? service.close()
            throw fail(error)
        }
        do { try service.close() } catch { throw fail(error) }
    }

    static func printWelcome(host: String, port: Int, database: String, demo: Bool, readers: [DemoReader]) {
        let base = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        var lines = ["paywall: listening on \(base) (database \(database)); the API is described at \(base)/openapi.json"]
        if demo {
            lines += [
                "",
                "Open \(base)/ in a browser: the demo catalog, the seed's Euronews article behind the paywall, sign up, the trial.",
                "",
                "Try it (an anonymous reader gets a device token, then asks for the seed's Euronews article):",
                "  DEVICE=$(curl -s -X POST \(base)/v1/devices | sed -E 's/.*\"deviceToken\":\"([^\"]+)\".*/\\1/')",
                "  curl -s -X POST \(base)/v1/access -H \"Authorization: Bearer $DEVICE\" -H 'Content-Type: application/json' \\",
                "       -d '{\"title\":\"euronews\",\"article\":{\"id\":\"zelenskyy-talks\"}}'",
                "",
                "Sample readers (demo passwords; tokens for them: paywall token issue --account EMAIL):",
            ]
            for reader in readers {
                lines.append("  \(reader.email)  password \"\(reader.password)\"  \(reader.plan.map { "plan \($0)" } ?? "no membership")")
            }
        }
        // Unbuffered: a script (or a test) waits for this line to know the port.
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
