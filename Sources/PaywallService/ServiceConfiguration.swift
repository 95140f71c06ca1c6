import Foundation
import PaywallCore
import PaywallCrypto
import PaywallStore

/// Settings of the service; the defaults are the production ones. Adapters build it with
/// ``resolve(environment:overrides:)`` (the one place that reads `PAYWALL_*` variables) and
/// never read the environment themselves.
public struct ServiceConfiguration: Sendable {
    /// Where the data is: a SQLite file (default `./paywall.sqlite`), or a PostgreSQL
    /// database shared by several servers (`postgres://user:password@host:port/database`).
    public var databaseLocation = "paywall.sqlite"
    /// Scrypt cost for new password hashes (OWASP's N = 2^17, r = 8, p = 1). Hashes made
    /// with weaker parameters are upgraded at the next sign-in.
    public var passwordHashing: ScryptParameters = .owasp
    /// The cheapest scrypt cost accepted for new hashes: OWASP's, unless ``testing``.
    public static let minimumPasswordHashing: ScryptParameters = .owasp
    /// At most this many password hashes computed at once (each takes 128·r·N bytes:
    /// 128 MiB at OWASP's cost), so a burst of sign-ins cannot take the memory, nor more
    /// than half the cores: access checks keep the rest (one core on a 2-core machine).
    public var concurrentPasswordHashes = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
    /// Threads that run blocking work (fsync'd writes, scrypt) for the async API.
    /// Most of their time is spent waiting (fsync, locks), not computing: enough of them
    /// lets concurrent metered reads share a commit (`GroupCommit`); scrypt is bounded
    /// separately by `concurrentPasswordHashes`.
    public var blockingThreads = max(32, 8 * ProcessInfo.processInfo.activeProcessorCount)
    /// Rules for new passwords.
    public var passwordPolicy: PasswordPolicy = .standard
    /// How long a refresh token lives (30 days).
    public var sessionLifetime: TimeInterval = 30 * 86_400
    /// The default length of a free trial (14 days).
    public var trialLength: TimeInterval = 14 * 86_400
    /// How the database is opened.
    public var store = StoreConfiguration()
    /// The source of "now" for every decision, token and stored time.
    public var clock: any PaywallClock = SystemClock()
    /// The key ring's folder (default `./Keys`).
    public var keysDirectory = URL(fileURLWithPath: "Keys")
    /// Whether a development signing key may be created when the ring has none. Off by
    /// default: a production server refuses to start without a key instead.
    public var developmentKeys = false
    /// The policy folder (default `./Policies`).
    public var policyDirectory = URL(fileURLWithPath: "Policies")
    /// The folder's policy even when one was published to the store: for an admin who
    /// names a folder to decide or compare with (`policy decide --policies`, `policy diff
    /// --policies`); a server always takes the newest publication.
    public var policyFolderFirst = false
    /// The `iss` of every token we issue and the only one we accept.
    public var issuer = "paywall"
    /// The default `aud` of tokens (the HTTP API).
    public var audience = "paywall-api"
    /// Lifetime of an access token (15 minutes; at most a day).
    public var accessTokenLifetime: TimeInterval = 15 * 60
    /// Lifetime of an article grant (5 minutes; at most an hour).
    public var articleGrantLifetime: TimeInterval = 5 * 60
    /// Clock skew tolerated when verifying (30 s).
    public var tokenLeeway: TimeInterval = 30
    /// Lifetime of an anonymous reader's device token (30 days; renewed by presenting it,
    /// and never longer than a superseded key keeps verifying).
    public var deviceTokenLifetime: TimeInterval = 30 * 86_400
    /// Default lifetime of an admin token (15 minutes; at most ``TokenLimits/maximumAdminLifetime``).
    public var adminTokenLifetime: TimeInterval = 15 * 60
    /// How long a gift link opens its article (7 days; at most 31, so a superseded key
    /// still verifies every link it signed).
    public var giftLifetime: TimeInterval = 7 * 86_400
    /// Gift links a member may create per calendar month (UTC); 0 turns gifts off.
    public var giftsPerMonth = 10
    /// How long verifiers may cache the JWKS (`Cache-Control: max-age` of
    /// `/.well-known/jwks.json`, 5 minutes): a rotated key is published at least this long
    /// before it signs (``PaywallService/rotateKey(_:publishAhead:actor:)``).
    public var jwksMaxAge: TimeInterval = 300
    /// Verified tokens kept in memory (0 turns the cache off).
    public var tokenCacheCapacity = 100_000
    /// Proxies whose `X-Forwarded-For` names the client (``TrustedProxies``).
    public var trustedProxies = TrustedProxies()
    /// Test mode: allows scrypt below OWASP's cost. Never set in production.
    public var testing = false
    /// At most this many sessions per account (default 5): signing in past it ends the
    /// least recently used one (`PAYWALL_MAX_SESSIONS`).
    public var maximumSessions = 5
    /// Sign-ups a client address may make at once; then one a minute.
    public var signUpsPerAddress = 10
    /// The policy's offered trial only for a confirmed email address
    /// (`PAYWALL_TRIAL_NEEDS_VERIFIED_EMAIL=1`). Off by default: the seed page's "Fourteen
    /// days free" follows the sign-up at once. On, a throwaway address buys no trial, and no
    /// one can spend a stranger's one trial by signing up with their address first.
    public var trialNeedsVerifiedEmail = false
    /// The sendmail-compatible command that delivers mail, as program and arguments
    /// (`PAYWALL_SENDMAIL="/usr/sbin/sendmail -t"`): the message goes to its standard
    /// input with its `To:` header. Nil: mail waits in the outbox.
    public var sendmailCommand: [String]?
    /// The `From:` of mail we send (`PAYWALL_MAIL_FROM`).
    public var mailFrom = "paywall@localhost"
    /// The site's public address (`PAYWALL_LINK_BASE`, no trailing slash): links in mail
    /// (the reader's app's page, which posts the token to the API; the token goes in the
    /// fragment, which browsers never send to a server, so it stays out of web servers'
    /// logs), and the absolute links of the feed, the sitemap and gift links. Nil: mail links
    /// to the demo's address (``mailLinkBase``) and the pages link to the address each
    /// request was sent to (its `Host`), which behind a proxy that rewrites `Host` is the
    /// proxy's upstream, not the public site: set it in production.
    public var linkBase: String?

    /// Where links in mail point: ``linkBase``, or the demo's address.
    public var mailLinkBase: String { linkBase ?? "http://localhost:8080" }
    /// How long an email verification link works (2 days).
    public var verificationLinkLifetime: TimeInterval = 2 * 86_400
    /// How long a password reset link works (1 hour).
    public var resetLinkLifetime: TimeInterval = 3_600
    /// At most this many messages to one address per hour (a reset form must not be a way
    /// to flood someone's mailbox).
    public var mailsPerAddressPerHour = 5
    /// How failed sign-ins are slowed and refused.
    public var signInThrottle = SignInThrottle()
    /// The Stripe webhook endpoint's signing secrets (`whsec_…`); several while one is
    /// rolled (`PAYWALL_STRIPE_WEBHOOK_SECRETS`, comma-separated). Empty: the Stripe route
    /// refuses every event (404 `billing_not_configured`).
    public var stripeWebhookSecrets: [String] = []
    /// How long a Stripe subscription whose payment failed keeps access while Stripe
    /// retries (7 days; `PAYWALL_STRIPE_GRACE`).
    public var stripeGracePeriod: TimeInterval = 7 * 86_400
    /// Which Stripe events are taken (`PAYWALL_STRIPE_MODE`): `true` live only, `false` test
    /// only, nil both. Production sets `live`: a test-mode endpoint secret configured there
    /// by mistake (say while rolling secrets) would otherwise let test cards buy access.
    public var stripeLivemode: Bool?
    /// The root certificate App Store signed data must chain up to (Apple Root CA - G3),
    /// DER (`PAYWALL_APPLE_ROOT_CERT`: a DER or PEM file). Nil: the App Store route
    /// refuses every notification (404 `billing_not_configured`).
    public var appleRootCertificate: [UInt8]?
    /// The app's bundle id notifications must be for (`PAYWALL_APPLE_BUNDLE_ID`).
    public var appleBundleID: String?
    /// `Production` or `Sandbox` (`PAYWALL_APPLE_ENVIRONMENT`, default Production).
    public var appleEnvironment = "Production"

    public init() {}

    /// Whether `value` may be a token's `iss` or `aud`: 1 to 256 bytes, no control
    /// characters (the settings, and an audience a CLI caller names).
    static func isTokenLabel(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 256 && !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
    }

    /// Values an adapter's flags give; each wins over its environment variable.
    public struct Overrides: Sendable {
        public var databaseLocation: String?
        public var keysDirectory: String?
        public var policyDirectory: String?
        public var readOnly = false
        /// Whether a SQLite file that does not exist is created (the CLI's first change; not
        /// `serve` without `--demo`, nor `db backup`: ``StoreConfiguration/createIfMissing``).
        public var createDatabase = true
        public var developmentKeys: Bool?
        /// Whether development keys are allowed when neither the flag nor
        /// `PAYWALL_DEV_KEYS` says (the CLI's first-use convenience; off for servers).
        public var developmentKeysByDefault = false
        public var issuer: String?
        public var audience: String?
        /// Token lifetimes as written (`15m`, `30d`).
        public var accessTokenLifetime: String?
        public var articleGrantLifetime: String?
        public var deviceTokenLifetime: String?
        /// As written (`10.0.0.0/8,192.0.2.7`).
        public var trustedProxies: String?
        /// Every setting the adapter reads from the environment (these of the service's and
        /// its own): when set, a `PAYWALL_*` variable not among them is refused
        /// (``ServiceError/unknownSetting(name:meant:)``).
        public var knownEnvironment: Set<String>?
        public init() {}
    }

    /// The variables ``resolve(environment:overrides:)`` reads.
    public static let environmentNames: Set<String> = [
        "PAYWALL_DB", "PAYWALL_KEYS", "PAYWALL_POLICIES", "PAYWALL_ISSUER", "PAYWALL_AUDIENCE", "PAYWALL_BUSY_TIMEOUT", "PAYWALL_METER_COMMITTERS", "PAYWALL_METER_STATE", "PAYWALL_SCRYPT_LN",
        "PAYWALL_TESTING", "PAYWALL_DEV_KEYS", "PAYWALL_ACCESS_TTL", "PAYWALL_GRANT_TTL", "PAYWALL_DEVICE_TTL", "PAYWALL_ADMIN_TTL",
        "PAYWALL_GIFT_TTL", "PAYWALL_GIFT_MONTHLY_LIMIT", "PAYWALL_MAX_SESSIONS", "PAYWALL_SIGNUPS_PER_ADDRESS",
        "PAYWALL_TRIAL_NEEDS_VERIFIED_EMAIL", "PAYWALL_SENDMAIL", "PAYWALL_MAIL_FROM", "PAYWALL_LINK_BASE", "PAYWALL_TRUSTED_PROXIES",
        "PAYWALL_TEST_CLOCK_FILE", "PAYWALL_STRIPE_WEBHOOK_SECRETS", "PAYWALL_STRIPE_MODE", "PAYWALL_STRIPE_GRACE",
        "PAYWALL_APPLE_ROOT_CERT", "PAYWALL_APPLE_BUNDLE_ID", "PAYWALL_APPLE_ENVIRONMENT",
    ]

    /// Variables of these prefixes belong to the tests, benchmarks and CI scripts (a
    /// database URL for the PostgreSQL tests, say), never to a setting: left alone.
    public static let reservedEnvironmentPrefixes = ["PAYWALL_TEST_", "PAYWALL_BENCH_", "PAYWALL_CI_"]

    /// The first `PAYWALL_*` variable of `environment` that names no setting in `known`
    /// (a typo: `PAYWALL_PORTT` would otherwise be ignored and the default taken), with the
    /// setting it was most likely meant to be, if one is close.
    public static func unknownSetting(in environment: [String: String], known: Set<String>) -> (name: String, meant: String?)? {
        func isUnknown(_ name: String) -> Bool {
            guard name.hasPrefix("PAYWALL_"), !known.contains(name), !isServiceLink(name) else { return false }
            return !reservedEnvironmentPrefixes.contains { (prefix: String) -> Bool in name.hasPrefix(prefix) }
        }
        guard let name = environment.keys.filter(isUnknown).sorted().first else { return nil }
        var meant: String?
        var best = 4  // at most 3 edits away
        for candidate in known.sorted() {
            let distance = editDistance(name, candidate)
            if distance < best { (best, meant) = (distance, candidate) }
        }
        return (name, meant)
    }

    /// Whether `name` has the shape of the variables Kubernetes gives every pod for a
    /// Service named `paywall` (`PAYWALL_SERVICE_HOST`, `PAYWALL_SERVICE_PORT_HTTP`,
    /// `PAYWALL_PORT_8080_TCP_ADDR`…): not settings, and not ours to refuse.
    public static func isServiceLink(_ name: String) -> Bool {
        if name == "PAYWALL_SERVICE_HOST" || name == "PAYWALL_SERVICE_PORT" || name.hasPrefix("PAYWALL_SERVICE_PORT_") { return true }
        guard name.hasPrefix("PAYWALL_PORT_") else { return false }
        let parts = name.dropFirst("PAYWALL_PORT_".count).split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].allSatisfy(\.isNumber), !parts[0].isEmpty, ["TCP", "UDP", "SCTP"].contains(String(parts[1])) else { return false }
        return parts.count == 2 || (parts.count == 3 && ["PROTO", "PORT", "ADDR"].contains(String(parts[2])))
    }

    /// Levenshtein distance (short names only).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a: [UInt8] = Array(a.utf8), b: [UInt8] = Array(b.utf8)
        var previous: [Int] = Array(0...b.count)
        for i in a.indices {
            var current: [Int] = [i + 1] + [Int](repeating: 0, count: b.count)
            for j in b.indices {
                let substitution: Int = previous[j] + (a[i] == b[j] ? 0 : 1)
                let deletion: Int = previous[j + 1] + 1
                let insertion: Int = current[j] + 1
                current[j + 1] = Swift.min(substitution, deletion, insertion)
            }
            previous = current
        }
        return previous[b.count]
    }

    /// The configuration from `PAYWALL_*` environment variables and the adapter's flags:
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `PAYWALL_DB` | database file, or `postgres://…` URL |
    /// | `PAYWALL_KEYS` | key folder |
    /// | `PAYWALL_POLICIES` | policy folder |
    /// | `PAYWALL_ISSUER`, `PAYWALL_AUDIENCE` | token `iss` and default `aud` |
    /// | `PAYWALL_BUSY_TIMEOUT` | seconds a write waits for a lock |
    /// | `PAYWALL_METER_COMMITTERS` | PostgreSQL: transactions of metered reads in flight at once (1 to 8, default 1) |
    /// | `PAYWALL_METER_STATE` | SQLite: metered readers whose counted articles the writer keeps in memory (0 to 10,000,000, default 50,000; 0: none) |
    /// | `PAYWALL_SCRYPT_LN` | log2 of scrypt's N (at least 17 unless testing) |
    /// | `PAYWALL_TESTING=1` | test mode |
    /// | `PAYWALL_DEV_KEYS=0/1` | create a development key when none exists |
    /// | `PAYWALL_ADMIN_TTL` | default lifetime of admin tokens (e.g. 15m, at most 12h) |
    /// | `PAYWALL_GIFT_TTL` | how long a gift link opens its article (e.g. 7d, at most 31d) |
    /// | `PAYWALL_GIFT_MONTHLY_LIMIT` | gift links per member per calendar month (0 to 1000; 0: off) |
    /// | `PAYWALL_MAX_SESSIONS` | sessions per account (1 to 100, default 5) |
    /// | `PAYWALL_SIGNUPS_PER_ADDRESS` | sign-ups a client address may make at once, then one a minute (default 10) |
    /// | `PAYWALL_TRIAL_NEEDS_VERIFIED_EMAIL` | 1: the offered trial only once the email address is confirmed |
    /// | `PAYWALL_SENDMAIL` | sendmail-compatible command (absolute path, arguments) |
    /// | `PAYWALL_MAIL_FROM` | `From:` of mail |
    /// | `PAYWALL_LINK_BASE` | the site's public http(s) URL: links in mail, the feed, the sitemap and gift links start with it |
    /// | `PAYWALL_TRUSTED_PROXIES` | proxies whose `X-Forwarded-For` names the client (ranges or addresses, comma-separated) |
    /// | `PAYWALL_TEST_CLOCK_FILE` | tests only (with `PAYWALL_TESTING=1`): "now" is the instant in this file (``FileClock``) |
    /// | `PAYWALL_STRIPE_WEBHOOK_SECRETS` | Stripe endpoint signing secrets, comma-separated (several while rolling) |
    /// | `PAYWALL_STRIPE_MODE` | `live` or `test`: take only Stripe events of that mode (unset: both) |
    /// | `PAYWALL_STRIPE_GRACE` | access kept after a failed Stripe payment (e.g. 7d, at most 60d) |
    /// | `PAYWALL_APPLE_ROOT_CERT` | path of the Apple root certificate (DER or PEM) App Store data must chain to |
    /// | `PAYWALL_APPLE_BUNDLE_ID` | the app's bundle id (required with the root) |
    /// | `PAYWALL_APPLE_ENVIRONMENT` | `Production` (default) or `Sandbox` |
    ///
    /// Invalid values are refused with the variable's name and what it takes.
    public static func resolve(environment: [String: String], overrides: Overrides = Overrides()) throws(ServiceError) -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        func invalid(_ name: String, _ value: String, _ expected: String) -> ServiceError {
            .configuration(name: name, value: value, expected: expected)
        }
        if let known = overrides.knownEnvironment, let (name, meant) = unknownSetting(in: environment, known: known.union(environmentNames)) {
            throw .unknownSetting(name: name, meant: meant)
        }
        func flag(_ name: String) throws(ServiceError) -> Bool? {
            guard let text = environment[name] else { return nil }
            switch text.lowercased() {
            case "1", "true", "yes": return true
            case "0", "false", "no", "": return false
            default: throw invalid(name, text, "1 or 0")
            }
        }
        configuration.testing = try flag("PAYWALL_TESTING") ?? false
        configuration.databaseLocation = overrides.databaseLocation ?? environment["PAYWALL_DB"] ?? configuration.databaseLocation
        if let problem = Store.urlProblem(configuration.databaseLocation) {
            throw invalid(overrides.databaseLocation == nil ? "PAYWALL_DB" : "--db", Store.redacted(configuration.databaseLocation), "a PostgreSQL URL paywall can use (\(problem))")
        }
        if let keys = overrides.keysDirectory ?? environment["PAYWALL_KEYS"] { configuration.keysDirectory = URL(fileURLWithPath: keys) }
        if let policies = overrides.policyDirectory ?? environment["PAYWALL_POLICIES"] {
            configuration.policyDirectory = URL(fileURLWithPath: policies)
        }
        if let developmentKeys = overrides.developmentKeys {
            // The caller decided (`serve` makes a key only with --demo): an environment that
            // asks otherwise is refused, not ignored (found in review: `serve` made a
            // development key with PAYWALL_DEV_KEYS=1, though its help said it never does).
            if !developmentKeys, try flag("PAYWALL_DEV_KEYS") == true {
                throw invalid("PAYWALL_DEV_KEYS", environment["PAYWALL_DEV_KEYS"] ?? "", "0 or unset: serve makes no development key without --demo (make a signing key with 'paywall keys generate')")
            }
            configuration.developmentKeys = developmentKeys
        } else {
            configuration.developmentKeys = try flag("PAYWALL_DEV_KEYS") ?? overrides.developmentKeysByDefault
        }
        let labels: [(String, String, String?, WritableKeyPath<ServiceConfiguration, String>)] = [
            ("PAYWALL_ISSUER", "--issuer", overrides.issuer, \.issuer), ("PAYWALL_AUDIENCE", "--audience", overrides.audience, \.audience),
        ]
        for (name, flagName, flag, path) in labels {
            guard let value = flag ?? environment[name] else { continue }
            guard Self.isTokenLabel(value) else { throw invalid(flag != nil ? flagName : name, value, "1 to 256 printable characters") }
            configuration[keyPath: path] = value
        }
        let lifetimes: [(String, String, String?, WritableKeyPath<ServiceConfiguration, TimeInterval>, TimeInterval)] = [
            ("PAYWALL_ACCESS_TTL", "--access-ttl", overrides.accessTokenLifetime, \.accessTokenLifetime, 86_400),
            ("PAYWALL_GRANT_TTL", "--grant-ttl", overrides.articleGrantLifetime, \.articleGrantLifetime, 3_600),
            ("PAYWALL_DEVICE_TTL", "--device-ttl", overrides.deviceTokenLifetime, \.deviceTokenLifetime, 31 * 86_400),
            ("PAYWALL_ADMIN_TTL", "--admin-ttl", nil, \.adminTokenLifetime, TokenLimits.maximumAdminLifetime),
            ("PAYWALL_GIFT_TTL", "--gift-ttl", nil, \.giftLifetime, TokenLimits.maximumGiftLifetime),
        ]
        for (variable, flagName, flag, path, maximum) in lifetimes {
            guard let text = flag ?? environment[variable] else { continue }
            guard let seconds = try? TimeText.duration(text), seconds <= maximum else {
                throw invalid(flag != nil ? flagName : variable, text, "a duration such as 15m, at most \(TimeText.format(duration: maximum))")
            }
            configuration[keyPath: path] = seconds
        }
        if let text = environment["PAYWALL_GIFT_MONTHLY_LIMIT"] {
            guard let limit = Int(text), (0...1000).contains(limit) else { throw invalid("PAYWALL_GIFT_MONTHLY_LIMIT", text, "a whole number from 0 to 1000") }
            configuration.giftsPerMonth = limit
        }
        if let text = environment["PAYWALL_BUSY_TIMEOUT"] {
            guard let seconds = Double(text), seconds >= 0, seconds <= 600 else { throw invalid("PAYWALL_BUSY_TIMEOUT", text, "seconds from 0 to 600") }
            configuration.store.busyTimeout = seconds
        }
        if let text = environment["PAYWALL_METER_COMMITTERS"] {
            guard let count = Int(text), (1...8).contains(count) else { throw invalid("PAYWALL_METER_COMMITTERS", text, "a whole number from 1 to 8") }
            guard count == 1 || Store.isPostgres(configuration.databaseLocation) else {
                throw invalid("PAYWALL_METER_COMMITTERS", text, "1 with a SQLite file, which has one writer (more apply to a postgres:// database)")
            }
            configuration.store.meterCommitters = count
        }
        if let text = environment["PAYWALL_METER_STATE"] {
            guard let readers = Int(text), (0...10_000_000).contains(readers) else {
                throw invalid("PAYWALL_METER_STATE", text, "a whole number of readers from 0 to 10000000 (0: count every metered read with queries)")
            }
            configuration.store.meterStateCapacity = readers
        }
        if let text = environment["PAYWALL_SCRYPT_LN"] {
            // With r = 8 the hasher's 256 MiB bound allows N up to 2^18.
            let lowest = configuration.testing ? 1 : minimumPasswordHashing.logN
            guard let logN = Int(text), logN >= 1, logN <= 30 else { throw invalid("PAYWALL_SCRYPT_LN", text, "a whole number from \(lowest) to 18") }
            let parameters = ScryptParameters(logN: logN, r: 8, p: 1)
            if !parameters.isAtLeast(minimumPasswordHashing), !configuration.testing {
                throw invalid("PAYWALL_SCRYPT_LN", text, "at least \(minimumPasswordHashing.logN): lower is below OWASP's minimum, which only tests may use (PAYWALL_TESTING=1)")
            }
            do { try parameters.validate() } catch { throw invalid("PAYWALL_SCRYPT_LN", text, "a whole number from \(lowest) to 18 (\(error))") }
            configuration.passwordHashing = parameters
        }
        if let text = environment["PAYWALL_MAX_SESSIONS"] {
            guard let count = Int(text), (1...100).contains(count) else { throw invalid("PAYWALL_MAX_SESSIONS", text, "a whole number from 1 to 100") }
            configuration.maximumSessions = count
        }
        configuration.trialNeedsVerifiedEmail = try flag("PAYWALL_TRIAL_NEEDS_VERIFIED_EMAIL") ?? false
        if let text = environment["PAYWALL_SIGNUPS_PER_ADDRESS"] {
            guard let count = Int(text), (1...1_000_000).contains(count) else {
                throw invalid("PAYWALL_SIGNUPS_PER_ADDRESS", text, "a whole number from 1 to 1000000")
            }
            configuration.signUpsPerAddress = count
        }
        if let text = environment["PAYWALL_SENDMAIL"], !text.trimmingCharacters(in: .whitespaces).isEmpty {
            // Split on spaces, never through a shell: nothing in the setting is interpreted.
            let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let program = words.first, program.hasPrefix("/"), FileManager.default.isExecutableFile(atPath: program) else {
                throw invalid("PAYWALL_SENDMAIL", text, "the absolute path of an executable sendmail-compatible program, then its arguments")
            }
            configuration.sendmailCommand = words
        }
        if let text = environment["PAYWALL_MAIL_FROM"] {
            guard (try? EmailAddress(text)) != nil else { throw invalid("PAYWALL_MAIL_FROM", text, "an email address") }
            configuration.mailFrom = text
        }
        if let text = environment["PAYWALL_LINK_BASE"] {
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil, url.query == nil,
                  url.fragment == nil, url.user == nil, url.password == nil, text.utf8.count <= 512
            else {
                // Published in every feed and mail: credentials in it would be too (and are not echoed here).
                let shown = URL(string: text).map { $0.user != nil || $0.password != nil } == true ? "(a URL with credentials, not shown)" : text
                throw invalid("PAYWALL_LINK_BASE", shown, "an http or https URL without credentials, query or fragment, such as https://app.example.com")
            }
            configuration.linkBase = text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        if let path = environment["PAYWALL_TEST_CLOCK_FILE"], !path.isEmpty {
            // A server whose time anyone who can write a file moves would void every
            // expiry: only a test process may have one.
            guard configuration.testing else {
                throw invalid("PAYWALL_TEST_CLOCK_FILE", path, "no value outside tests: a clock read from a file is for tests only (it moves every expiry), with PAYWALL_TESTING=1")
            }
            do {
                configuration.clock = try FileClock(path: path)
            } catch {
                throw invalid("PAYWALL_TEST_CLOCK_FILE", path, "a readable file holding an ISO 8601 instant or seconds since 1970 (\(error))")
            }
        }
        try resolveBilling(environment, into: &configuration)
        configuration.store.readOnly = overrides.readOnly
        configuration.store.createIfMissing = overrides.createDatabase
        if let text = overrides.trustedProxies ?? environment["PAYWALL_TRUSTED_PROXIES"] {
            guard let proxies = TrustedProxies(parsing: text) else {
                throw invalid(overrides.trustedProxies != nil ? "--trusted-proxies" : "PAYWALL_TRUSTED_PROXIES", text,
                              "a comma-separated list of at most 256 addresses or ranges, e.g. 10.0.0.0/8,2001:db8::/32")
            }
            configuration.trustedProxies = proxies
        }
        return configuration
    }
}

extension ServiceConfiguration {
    /// The payment providers' settings (see ``resolve(environment:overrides:)``).
    static func resolveBilling(_ environment: [String: String], into configuration: inout ServiceConfiguration) throws(ServiceError) {
        if let text = environment["PAYWALL_STRIPE_WEBHOOK_SECRETS"] {
            let secrets = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            // Never echo a secret in the error: only its position.
            for (index, secret) in secrets.enumerated() where secret.utf8.count < 16 || secret.utf8.count > 256 || secret.contains(" ") {
                throw ServiceError.configuration(
                    name: "PAYWALL_STRIPE_WEBHOOK_SECRETS", value: "(secret \(index + 1))", expected: "secrets of 16 to 256 characters without spaces, such as whsec_…")
            }
            configuration.stripeWebhookSecrets = secrets
        }
        if let text = environment["PAYWALL_STRIPE_MODE"] {
            switch text {
            case "live": configuration.stripeLivemode = true
            case "test": configuration.stripeLivemode = false
            default: throw ServiceError.configuration(name: "PAYWALL_STRIPE_MODE", value: text, expected: "live or test (unset: both)")
            }
        }
        if let text = environment["PAYWALL_STRIPE_GRACE"] {
            guard let seconds = try? TimeText.duration(text), seconds >= 0, seconds <= 60 * 86_400 else {
                throw ServiceError.configuration(name: "PAYWALL_STRIPE_GRACE", value: text, expected: "a duration such as 7d, at most 60d")
            }
            configuration.stripeGracePeriod = seconds
        }
        if let path = environment["PAYWALL_APPLE_ROOT_CERT"], !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path), let root = try? X509Certificate(pemOrDER: Array(data)) else {
                throw ServiceError.configuration(name: "PAYWALL_APPLE_ROOT_CERT", value: path, expected: "a readable DER or PEM certificate file (Apple Root CA - G3)")
            }
            configuration.appleRootCertificate = root.der
        }
        if let bundle = environment["PAYWALL_APPLE_BUNDLE_ID"], !bundle.isEmpty {
            guard bundle.utf8.count <= 255, !bundle.contains(" ") else {
                throw ServiceError.configuration(name: "PAYWALL_APPLE_BUNDLE_ID", value: bundle, expected: "a bundle id such as com.example.app")
            }
            configuration.appleBundleID = bundle
        }
        if let text = environment["PAYWALL_APPLE_ENVIRONMENT"] {
            guard ["Production", "Sandbox"].contains(text) else {
                throw ServiceError.configuration(name: "PAYWALL_APPLE_ENVIRONMENT", value: text, expected: "Production or Sandbox")
            }
            configuration.appleEnvironment = text
        }
        if (configuration.appleRootCertificate == nil) != (configuration.appleBundleID == nil) {
            throw ServiceError.configuration(
                name: configuration.appleBundleID == nil ? "PAYWALL_APPLE_BUNDLE_ID" : "PAYWALL_APPLE_ROOT_CERT", value: "",
                expected: "both PAYWALL_APPLE_ROOT_CERT and PAYWALL_APPLE_BUNDLE_ID, or neither")
        }
    }
}

/// How failed sign-ins are slowed, then refused, per account (the email asked for, known
/// or not, so the answer says nothing about whether it has an account) and per client
/// address. Within `window` from a key's first failure: the first `free` failures cost
/// nothing; each further one makes the next attempt wait twice as long (1 s, 2 s, 4 s…);
/// from `refuseAfter` failures on, the key is refused for a whole `window`.
public struct SignInThrottle: Sendable, Equatable {
    public var window: TimeInterval = 15 * 60
    public var accountFree = 5
    public var accountRefuseAfter = 10
    public var clientFree = 20
    public var clientRefuseAfter = 100

    public init() {}

    /// How long a key with `failures` failures waits before its next attempt.
    public func wait(failures: Int, free: Int, refuseAfter: Int) -> TimeInterval {
        if failures >= refuseAfter { return window }
        guard failures > free else { return 0 }
        return min(window, Double(1 << min(20, failures - free - 1)))
    }
}
