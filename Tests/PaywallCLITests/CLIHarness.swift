import Foundation
import PaywallCore
import PaywallService
import PaywallStore
import PaywallTestSupport

/// Runs the built `paywall` executable against a database in a temporary folder.
struct CLIHarness {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    let folder: URL
    /// A schema of the test PostgreSQL database, when the commands run on one.
    let schema: PostgresTestSchema?
    /// The SQLite file, or the PostgreSQL URL.
    var database: String { schema?.url ?? folder.appendingPathComponent("paywall.sqlite").path }
    var keys: String { folder.appendingPathComponent("Keys").path }

    init(backend: TestBackend = .sqlite) throws {
        // A child that exits before reading its input must not kill the test runner.
        signal(SIGPIPE, SIG_IGN)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if backend == .postgres, let url = TestBackend.postgresURL {
            schema = try PostgresTestSchema(baseURL: url)
        } else {
            schema = nil
        }
    }

    /// The shipped policy folder.
    static let repositoryPolicies = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Policies").path

    /// The `paywall` binary built beside the test bundle.
    static let executable: URL = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("paywall"),
            Bundle.main.bundleURL.appendingPathComponent("paywall"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("paywall"),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/paywall"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }()

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["PAYWALL_DB"] = database
        env["PAYWALL_KEYS"] = keys
        env["PAYWALL_POLICIES"] = Self.repositoryPolicies
        env["PAYWALL_SCRYPT_LN"] = "10"  // cheap hashing in tests only
        env["PAYWALL_TESTING"] = "1"
        env["USER"] = "tester"
        return env
    }

    /// Runs `paywall ARGS`, feeding `input` on standard input.
    @discardableResult
    func run(_ arguments: [String], input: String = "", extraEnvironment: [String: String] = [:]) throws -> Result {
        // Both streams read at once (a command filling its error pipe while we read its
        // output would never end), never through Foundation's `Process` (``ChildProcess``).
        let run = try runProgram(
            Self.executable.path, arguments, directory: folder.path, environment: environment.merging(extraEnvironment) { $1 }, input: Data(input.utf8))
        return Result(status: run.status, stdout: run.stdout, stderr: run.stderr)
    }

    /// Row counts of the database, to prove a refused command changed nothing.
    func snapshot() throws -> [Int] {
        var configuration = StoreConfiguration()
        configuration.readOnly = true
        let store = try Store(location: database, configuration: configuration)
        defer { try? store.close() }
        return [try store.accountCount(), try store.auditCount(), try store.titles().count, try store.plans().count, try store.readCount()]
    }

    /// Decodes JSON output.
    func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }
}
