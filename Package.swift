// swift-tools-version:6.0
// Paywall: paywall and subscription entitlement service.
//
// Dependency direction (one way):
//   PaywallCore (pure domain types) <- PaywallPolicy (pure: the policy language)
//   PaywallCrypto (the only module that calls OpenSSL, via COpenSSL) <- PaywallTokens (JWS, key ring)
//   PaywallCore <- PaywallStore (SQLite via GRDB, PostgreSQL via postgres-nio) -> PaywallCrypto (refresh tokens: random bytes, SHA-256, sealing)
//   PaywallCore, PaywallCrypto, PaywallTokens <- PaywallBilling (provider events: verification, parsing)
//   PaywallService (orchestrates; owns configuration, the policy and the key ring)
//       -> PaywallStore, PaywallTokens, PaywallCrypto, PaywallPolicy, PaywallBilling
//   PaywallViews (the JSON shapes every adapter shows) -> PaywallService
//   PaywallWeb (the reader's HTML pages, thin adapter) -> PaywallService, PaywallViews (PaywallTokens for admin scopes)
//   paywall (CLI, thin adapter) -> PaywallService, PaywallViews, PaywallHTTP, PaywallWeb
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Paywall",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "paywall", targets: ["paywall"]),
        .executable(name: "paywall-bench", targets: ["StoreBenchmark"]),
        .executable(name: "paywall-token-bench", targets: ["TokenBenchmark"]),
        .executable(name: "paywall-policy-bench", targets: ["PolicyBenchmark"]),
        .executable(name: "paywall-http-bench", targets: ["HTTPBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // Pure domain types: no I/O, no C.
        .target(name: "PaywallCore", swiftSettings: strict),

        // OpenSSL libcrypto, reached only through PaywallCrypto.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "PaywallCrypto", dependencies: ["COpenSSL"], swiftSettings: strict),

        // Payment providers' events (Stripe webhooks, App Store Server Notifications):
        // signature and certificate-chain verification and parsing into changes of
        // memberships, without storage. A module of its own: the service stays about
        // orchestration, and verification is tested without a database.
        .target(name: "PaywallBilling", dependencies: ["PaywallCore", "PaywallCrypto", "PaywallTokens"], swiftSettings: strict),

        // The policy language: parser, checker and evaluator (pure).
        .target(name: "PaywallPolicy", dependencies: ["PaywallCore"], swiftSettings: strict),

        // Signed access tokens (JWS/JWT), the key ring in Keys/ and the JWKS.
        .target(name: "PaywallTokens", dependencies: ["PaywallCore", "PaywallCrypto"], swiftSettings: strict),

        // The SQLite account store over GRDB (system libsqlite3). It makes and checks
        // refresh tokens itself (PaywallCrypto), since it keeps only their hashes.
        .target(
            name: "PaywallStore",
            dependencies: [
                "PaywallCore",
                "PaywallCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Orchestration: the one way in for every adapter (accounts, catalog, trials,
        // memberships, sessions, decisions, tokens); holds the policy and the key ring.
        .target(
            name: "PaywallService",
            dependencies: [
                "PaywallCore", "PaywallStore", "PaywallCrypto", "PaywallTokens", "PaywallPolicy", "PaywallBilling",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            resources: [.copy("Resources/demo.json")],
            swiftSettings: strict
        ),

        // The JSON shapes adapters print and serve (CLI --json, HTTP bodies).
        .target(
            name: "PaywallViews",
            dependencies: ["PaywallService", "PaywallCore", "PaywallPolicy", "PaywallTokens", "PaywallStore"],
            swiftSettings: strict
        ),

        // The HTTP API (Hummingbird 2): routes over the service, shared by `paywall serve`
        // and the tests; the reader's web pages (PaywallWeb) are mounted on its router.
        .target(
            name: "PaywallHTTP",
            dependencies: [
                "PaywallWeb", "PaywallService", "PaywallViews", "PaywallCore", "PaywallPolicy", "PaywallTokens", "PaywallCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: strict
        ),

        // The reader's web pages (server-rendered HTML from Mustache templates): a thin
        // adapter over the service, mounted on the API's router by `paywall serve`.
        .target(
            name: "PaywallWeb",
            dependencies: [
                "PaywallService", "PaywallViews", "PaywallCore", "PaywallPolicy", "PaywallCrypto", "PaywallTokens",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // The pages' templates and stylesheet, and the demo articles `--demo` loads (the
            // texts are the publisher's content, which the service never holds: see Articles.swift).
            resources: [.copy("Templates"), .copy("Static"), .copy("Content")],
            swiftSettings: strict
        ),

        // The `paywall` command-line tool: a thin adapter over the service.
        .executableTarget(
            name: "paywall",
            dependencies: [
                "PaywallService",
                "PaywallViews",
                "PaywallHTTP",
                "PaywallWeb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // Benchmarks: our store beside the same SQL in a plain C loop over libsqlite3.
        .target(
            name: "CSQLiteLoop",
            path: "Benchmarks/CSQLiteLoop",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        .executableTarget(
            name: "StoreBenchmark",
            dependencies: ["PaywallStore", "PaywallCore", "CSQLiteLoop"],
            path: "Benchmarks/StoreBenchmark",
            swiftSettings: strict
        ),

        // Benchmarks: tokens beside raw OpenSSL EVP calls in a C loop (and PyJWT).
        .target(
            name: "CEVPLoop",
            path: "Benchmarks/CEVPLoop",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        .executableTarget(
            name: "TokenBenchmark",
            dependencies: ["PaywallTokens", "PaywallCrypto", "PaywallCore", "CEVPLoop"],
            path: "Benchmarks/TokenBenchmark",
            swiftSettings: strict
        ),

        // Benchmark: decisions per second, beside Cedar (cedarpy).
        .executableTarget(
            name: "PolicyBenchmark",
            dependencies: ["PaywallPolicy"],
            path: "Benchmarks/PolicyBenchmark",
            exclude: ["cedar_reference.py"],
            swiftSettings: strict
        ),

        // Benchmark: the HTTP API under wrk beside a bare Hummingbird route (run.sh).
        .executableTarget(
            name: "HTTPBenchmark",
            dependencies: [
                "PaywallService", "PaywallStore", "PaywallCore", "PaywallCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Benchmarks/HTTPBenchmark",
            exclude: ["run.sh", "postgres.sh", "common.sh", "per-thread.sh", "bounds.sh", "bounds.patch", "wrk.lua"],
            swiftSettings: strict
        ),

        .testTarget(name: "PaywallCoreTests", dependencies: ["PaywallCore"]),
        .testTarget(name: "PaywallCryptoTests", dependencies: ["PaywallCrypto"]),
        .testTarget(name: "PaywallBillingTests", dependencies: ["PaywallBilling", "PaywallCrypto", "PaywallCore", "PaywallTokens", "PaywallTestSupport"]),
        .testTarget(name: "PaywallPolicyTests", dependencies: ["PaywallPolicy", "PaywallCore", "PaywallTestSupport"]),
        .testTarget(name: "PaywallTokensTests", dependencies: ["PaywallTokens", "PaywallCrypto", "PaywallCore", "PaywallTestSupport"]),
        // Helpers shared by test targets: store and service fixtures, temporary folders,
        // another process holding a database lock, programs run to their end.
        .target(
            name: "PaywallTestSupport",
            dependencies: [
                "PaywallService", "PaywallStore", "PaywallCore", "PaywallCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/PaywallTestSupport"
        ),
        .testTarget(name: "PaywallStoreTests", dependencies: ["PaywallStore", "PaywallCore", "PaywallTestSupport"]),
        .testTarget(
            name: "PaywallServiceTests",
            dependencies: ["PaywallService", "PaywallViews", "PaywallStore", "PaywallCore", "PaywallCrypto", "PaywallPolicy", "PaywallTokens", "PaywallTestSupport"]
        ),
        .testTarget(
            name: "PaywallHTTPTests",
            dependencies: [
                "PaywallHTTP", "PaywallService", "PaywallTokens", "PaywallCore", "PaywallTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "PaywallWebTests",
            dependencies: [
                "PaywallWeb", "PaywallHTTP", "PaywallService", "PaywallCore", "PaywallTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "PaywallCLITests", dependencies: ["paywall", "PaywallService", "PaywallTokens", "PaywallStore", "PaywallCore", "PaywallTestSupport"]),
    ]
)
