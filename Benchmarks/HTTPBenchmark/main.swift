// paywall-http-bench: the fixtures and the reference server of Benchmarks/HTTPBenchmark/run.sh.
//
//   paywall-http-bench prepare DIR [--members 200] [--tokens 10000] [--readers 2000] [--store-readers 20000] [--cold 150000] [--signins 8]
//       a database, a key ring, a benchmark policy, token files and the sign-in accounts'
//       emails and passwords (signin-accounts.txt) in DIR (see run.sh). READERS metered
//       readers have tokens (the HTTP scenario's); STORE-READERS readers are accounts in
//       all (store-metered's larger shape)
//   paywall-http-bench bare PORT
//       the reference: a bare Hummingbird route returning a small JSON body
//   paywall-http-bench store-metered DATABASE [--seconds 10] [--callers 64] [--readers 2000] [--committers 1] [--meter-state N]
//       metered reads recorded through the store alone (no HTTP, no tokens, no policy):
//       CALLERS concurrent callers each recording a new article's read for one of the
//       prepared readers, exactly as an access check does (`Store.recordCountedRead`: the
//       meter's count, the insert, group commit, durable). The figure to set beside
//       pgbench's one-INSERT rate on the same database (postgres.sh). The meter's count
//       scans the reader's reads in the window, so READERS decides what a read costs:
//       2,000 readers end a 10 s run with 70–100 counted articles each, 20,000 with 10–15
//       (printed: a generous monthly meter holds ten, the shipped policy's three).
//       COMMITTERS: transactions in flight at once (PostgreSQL; PAYWALL_METER_COMMITTERS).
//       --meter-state N: readers whose counted articles the SQLite writer keeps (default
//       the store's; 0 counts every read with queries, as before the seventeenth session)
import Foundation
import Hummingbird
import PaywallCore
import PaywallCrypto
import PaywallService
import PaywallStore

/// Every signed-in reader has a large meter (so each metered check records a read);
/// members read in full without it; anonymous devices get the teaser.
let benchmarkPolicy = """
    meter "bench" { limit 1000000 per 30 days }
    defaults { access teaser; teaser 2 paragraphs }
    rule "members" { when membership.entitled; grant full }
    rule "metered" { when user.signedIn; grant full using meter "bench" }
    rule "offers" { when not user.signedIn; offer signUp, signIn, trial 14 days }
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("paywall-http-bench: \(message)\n".utf8))
    exit(64)
}

func option(_ name: String, _ arguments: [String], default value: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return value }
    guard let number = Int(arguments[index + 1]), number > 0 else { fail("\(name) takes a positive number") }
    return number
}

func write(_ lines: [String], to url: URL) throws {
    try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
}

func prepare(_ folder: URL, _ arguments: [String]) throws {
    let members = option("--members", arguments, default: 200)
    let tokens = option("--tokens", arguments, default: 10_000)
    let readers = option("--readers", arguments, default: 2_000)
    let storeReaders = max(readers, option("--store-readers", arguments, default: 20_000))
    let cold = option("--cold", arguments, default: 150_000)
    let signIns = option("--signins", arguments, default: 8)
    try FileManager.default.createDirectory(at: folder.appendingPathComponent("policies"), withIntermediateDirectories: true)
    try Data(benchmarkPolicy.utf8).write(to: folder.appendingPathComponent("policies/bench.policy"))
    var configuration = ServiceConfiguration()
    configuration.databaseLocation = folder.appendingPathComponent("paywall.sqlite").path
    configuration.keysDirectory = folder.appendingPathComponent("Keys")
    configuration.policyDirectory = folder.appendingPathComponent("policies")
    configuration.developmentKeys = true
    configuration.testing = true  // cheap scrypt: these accounts are fixtures, never signed in to
    configuration.passwordHashing = ScryptParameters(logN: 4, r: 8, p: 1)
    configuration.accessTokenLifetime = 86_400
    let service = try PaywallService(configuration: configuration)
    _ = try service.prepareToServe()
    let actor = AuditActor.system
    for id in ["euronews", "le-monde", "the-daily"] {
        _ = try service.addTitle(id: id, name: id, publisher: "P", actor: actor)
    }
    _ = try service.addPlan(id: "all", name: "All titles", period: "month", titles: nil, actor: actor)
    var memberEmails: [String] = []
    for index in 0..<members {
        let email = "member\(index)@bench.example"
        _ = try service.signUp(email: email, password: "benchmark passphrase \(index)", displayName: nil, actor: actor)
        _ = try service.grantMembership(account: email, plan: "all", until: nil, source: .comp, actor: actor)
        memberEmails.append(email)
    }
    var readerEmails: [String] = []
    for index in 0..<storeReaders {
        let email = "reader\(index)@bench.example"
        _ = try service.signUp(email: email, password: "benchmark passphrase \(index)", displayName: nil, actor: actor)
        if index < readers { readerEmails.append(email) }
    }
    func accessTokens(_ emails: [String], _ count: Int) throws -> [String] {
        try (0..<count).map { try service.issueAccessToken(account: emails[$0 % emails.count], lifetime: nil, audience: nil).token }
    }
    try write(try accessTokens(memberEmails, tokens), to: folder.appendingPathComponent("member-tokens.txt"))
    try write(try accessTokens(memberEmails, cold), to: folder.appendingPathComponent("cold-tokens.txt"))
    try write(try accessTokens(readerEmails, readers), to: folder.appendingPathComponent("reader-tokens.txt"))
    try write(try (0..<2_000).map { _ in try service.issueDeviceToken(renewing: nil).token }, to: folder.appendingPathComponent("device-tokens.txt"))
    try service.close()

    // The accounts the sign-in scenario signs in to, hashed at the cost a production server
    // uses (OWASP's scrypt, the default the benchmark server runs with): a sign-in then
    // costs what it costs in production, and no hash is upgraded (rehashed) on the way.
    var production = configuration
    production.testing = false
    production.passwordHashing = .owasp
    let signInService = try PaywallService(configuration: production)
    var signInLines: [String] = []
    for index in 0..<signIns {
        let email = "signin\(index)@bench.example", password = "sign-in benchmark passphrase \(index)"
        _ = try signInService.signUp(email: email, password: password, displayName: nil, actor: actor)
        signInLines.append("\(email)\t\(password)")
    }
    try signInService.close()
    try write(signInLines, to: folder.appendingPathComponent("signin-accounts.txt"))
    print("prepared \(folder.path): \(members) members, \(tokens) member tokens, \(readers) metered readers with tokens (\(storeReaders) in all), \(cold) cold tokens, 2000 devices, \(signIns) sign-in accounts (OWASP scrypt)")
}

func bare(port: Int) async throws {
    let router = Router()
    let body = ByteBuffer(string: #"{"access":"full","ok":true}"#)
    router.post("/bare") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
    // The same, after reading the request body in full (what every POST route pays).
    router.post("/bare-body") { request, _ in
        var request = request
        _ = try await request.collectBody(upTo: 65_536)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
    try await app.runService()
}

/// Counts what the callers recorded (each caller adds its own tally once, at its end).
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded = 0
    private var other = 0
    func add(recorded: Int, other: Int) {
        lock.lock()
        self.recorded += recorded
        self.other += other
        lock.unlock()
    }
    var totals: (recorded: Int, other: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (recorded, other)
    }
}

func storeMetered(_ location: String, _ arguments: [String]) async throws {
    let seconds = option("--seconds", arguments, default: 10)
    let callers = option("--callers", arguments, default: 64)
    let readerCount = option("--readers", arguments, default: 2_000)
    var configuration = StoreConfiguration()
    configuration.createIfMissing = false
    configuration.meterCommitters = option("--committers", arguments, default: 1)
    if let index = arguments.firstIndex(of: "--meter-state"), index + 1 < arguments.count {
        guard let capacity = Int(arguments[index + 1]), capacity >= 0 else { fail("--meter-state takes a number of readers (0: none)") }
        configuration.meterStateCapacity = capacity
    }
    let store = try Store(location: location, configuration: configuration)
    let readers = try (0..<readerCount).map { try store.account(matching: "reader\($0)@bench.example").id }
    let title = TitleID(rawValue: "euronews")
    let window: TimeInterval = 30 * 86_400
    let before = try store.readCount()
    // One caller's loop: a new article each time (every read is counted and inserted, as
    // in wrk.lua's metered scenario, with ids as short), readers taken in turn.
    func run(_ caller: Int, until deadline: Date, tally: Tally?) async throws {
        let prefix = tally == nil ? "w" : "s"
        var recorded = 0, other = 0, index = 0
        while Date() < deadline {
            let reader = readers[(caller + index * callers) % readers.count]
            let read = ArticleRead(subject: .account(reader), titleID: title, articleID: "\(prefix)\(caller)-\(index)", at: Date())
            switch try await store.recordCountedRead(read, window: window, limit: 1_000_000).outcome {
            case .recorded: recorded += 1
            default: other += 1
            }
            index += 1
        }
        tally?.add(recorded: recorded, other: other)
    }
    func round(seconds: Int, tally: Tally?) async throws -> Double {
        let start = Date()
        let deadline = start.addingTimeInterval(TimeInterval(seconds))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers { group.addTask { try await run(caller, until: deadline, tally: tally) } }
            try await group.waitForAll()
        }
        return Date().timeIntervalSince(start)
    }
    _ = try await round(seconds: 1, tally: nil)  // warm-up: connections, statements, the committer thread
    let tally = Tally()
    let elapsed = try await round(seconds: seconds, tally: tally)
    let (recorded, other) = tally.totals
    let stored = try store.readCount() - before
    try store.close()
    print(String(format: "store-metered: %d reads recorded in %.2f s by %d callers = %.0f/s (%d not counted; %d rows added, warm-up included: %.0f counted articles per reader at the end)",
                 recorded, elapsed, callers, Double(recorded) / elapsed, other, stored, Double(stored) / Double(readers.count)))
    if other > 0 { fail("\(other) reads were not counted: the figure is not what it says") }
}

let arguments = CommandLine.arguments
switch arguments.dropFirst().first {
case "prepare":
    guard arguments.count >= 3 else { fail("usage: paywall-http-bench prepare DIR [--members N] [--tokens N] [--readers N] [--store-readers N] [--cold N] [--signins N]") }
    try prepare(URL(fileURLWithPath: arguments[2]), arguments)
case "bare":
    guard arguments.count >= 3, let port = Int(arguments[2]) else { fail("usage: paywall-http-bench bare PORT") }
    try await bare(port: port)
case "store-metered":
    guard arguments.count >= 3 else { fail("usage: paywall-http-bench store-metered DATABASE [--seconds N] [--callers N] [--readers N] [--committers N] [--meter-state N]") }
    try await storeMetered(arguments[2], arguments)
default:
    fail("usage: paywall-http-bench prepare DIR … | bare PORT | store-metered DATABASE …")
}
