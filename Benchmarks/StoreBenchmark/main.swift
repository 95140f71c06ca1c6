// paywall-bench: the account store beside the same SQL in a plain C loop over libsqlite3.
//
//   swift run -c release paywall-bench [--sizes 1000,10000,100000,1000000] [--ops 20000]
//                                      [--write-ops 2000] [--rounds 5] [--durability full|normal]
//
// Every figure is the median of --rounds rounds; in each round the store and the C loop
// run the same operations on the same file, one after the other.
import CSQLiteLoop
import Foundation
import PaywallCore
import PaywallStore

struct Options {
    var sizes = [1_000, 10_000, 100_000, 1_000_000]
    var ops = 20_000
    var writeOps = 2_000
    var rounds = 5
    var durable = true
    /// For profiling one side alone: "store" or "c".
    var only: String?

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { Self.usage("missing value for \(flag)") }
            switch flag {
            case "--sizes": sizes = value.split(separator: ",").compactMap { Int($0) }.sorted()
            case "--ops": ops = Int(value) ?? ops
            case "--write-ops": writeOps = Int(value) ?? writeOps
            case "--rounds": rounds = max(1, Int(value) ?? rounds)
            case "--only": only = value
            case "--durability":
                guard value == "full" || value == "normal" else { Self.usage("--durability is full or normal") }
                durable = value == "full"
            default: Self.usage("unknown option \(flag)")
            }
        }
        if sizes.isEmpty { Self.usage("--sizes needs at least one number") }
    }

    static func usage(_ message: String) -> Never {
        FileHandle.standardError.write(Data("paywall-bench: \(message)\nusage: paywall-bench [--sizes N,N] [--ops N] [--write-ops N] [--rounds N] [--durability full|normal]\n".utf8))
        exit(64)
    }
}

/// C strings that live as long as the array.
final class CStrings {
    let pointers: [UnsafePointer<CChar>?]
    init(_ strings: [String]) { pointers = strings.map { UnsafePointer(strdup($0)) } }
    deinit { for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) } }
}

func median(_ values: [Double]) -> Double {
    if values.isEmpty { return .nan }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = csl_now_ns()
    try body()
    return Double(csl_now_ns() - start) / 1e9
}

struct ResultRow {
    var operation: String
    var size: String
    var store: Double
    var c: Double
    var storeMicros: Double { 1e6 / store }
    var ratio: Double { c / store }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("paywall-bench: \(message)\n".utf8))
    exit(1)
}

let options = Options(CommandLine.arguments)
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: folder) }
let path = folder.appendingPathComponent("bench.sqlite").path

var configuration = StoreConfiguration()
configuration.durableCommits = options.durable
let store = try Store(path: path, configuration: configuration)
guard let c = csl_open(path, options.durable ? 1 : 0) else { fail("cannot open \(path) from C") }
defer { csl_close(c) }

var rows: [ResultRow] = []
var generator = SystemRandomNumberGenerator()
var populated = 0
let now = Date().millis

print("paywall-bench: \(options.rounds) rounds, \(options.ops) lookups/counts and \(options.writeOps) writes per round, synchronous=\(options.durable ? "FULL" : "NORMAL")")

// 1. Point lookup of an account by email, as the table grows.
for size in options.sizes {
    if csl_populate_accounts(c, Int64(populated), Int64(size - populated), now) != 0 { fail("populating failed") }
    populated = size
    var storeRates: [Double] = [], cRates: [Double] = []
    for _ in 0..<options.rounds {
        let keys = (0..<options.ops).map { _ in "reader\(Int.random(in: 0..<size, using: &generator))@example.com" }
        let cKeys = CStrings(keys)
        var found = options.ops
        if options.only != "c" {
            found = 0
            storeRates.append(Double(options.ops) / (try seconds {
                for key in keys where try store.account(emailKey: key) != nil { found += 1 }
            }))
        }
        var cFound = Int64(options.ops)
        if options.only != "store" {
            cRates.append(Double(options.ops) / seconds { cFound = cKeys.pointers.withUnsafeBufferPointer { csl_lookup_accounts(c, $0.baseAddress, Int64(options.ops)) } })
        }
        if found != options.ops || cFound != Int64(options.ops) { fail("lookup found \(found) / \(cFound) of \(options.ops)") }
    }
    rows.append(ResultRow(operation: "account by email", size: "\(size) accounts", store: median(storeRates), c: median(cRates)))
    FileHandle.standardError.write(Data("  lookups at \(size) done\n".utf8))
}

// 2. Meter count in a 30-day window: 10,000 devices with 20 reads each (half re-reads).
_ = try store.addTitle(id: TitleID(rawValue: "euronews"), name: "Euronews", publisher: "Euronews SA", actor: .system)
let devices = 10_000
var reads: [ArticleRead] = []
reads.reserveCapacity(devices * 20)
let start = Date()
for device in 0..<devices {
    for index in 0..<20 {
        reads.append(ArticleRead(subject: .device("dev-\(device)"), titleID: TitleID(rawValue: "euronews"),
                                 articleID: "a\(index / 2)", at: start.addingTimeInterval(-Double(index) * 3_600)))
    }
}
try store.recordReads(reads)
reads = []
do {
    let window: TimeInterval = 30 * 86_400
    var storeRates: [Double] = [], cRates: [Double] = []
    for _ in 0..<options.rounds {
        let subjects = (0..<options.ops).map { _ in MeterSubject.device("dev-\(Int.random(in: 0..<devices, using: &generator))") }
        let cSubjects = CStrings(subjects.map(\.key))
        var total = 0
        storeRates.append(Double(options.ops) / (try seconds {
            for subject in subjects { total += try store.meterUsage(subject: subject, window: window).used }
        }))
        // The same window the store computes from its clock.
        let end = Date().millis
        var cTotal: Int64 = 0
        cRates.append(Double(options.ops) / seconds {
            cTotal = cSubjects.pointers.withUnsafeBufferPointer { csl_meter_counts(c, $0.baseAddress, Int64(options.ops), end - Int64(window * 1000), end) }
        })
        if total != options.ops * 10 || cTotal != Int64(options.ops * 10) { fail("meter counts \(total) / \(cTotal)") }
    }
    rows.append(ResultRow(operation: "meter count, 30-day window", size: "\(devices * 20) reads", store: median(storeRates), c: median(cRates)))
    FileHandle.standardError.write(Data("  meter counts done\n".utf8))
}

// 3. Recording a read: one durable transaction each.
do {
    var storeRates: [Double] = [], cRates: [Double] = []
    for round in 0..<options.rounds {
        let subjects = (0..<options.writeOps).map { _ in MeterSubject.device("dev-\(Int.random(in: 0..<devices, using: &generator))") }
        let cSubjects = CStrings(subjects.map(\.key))
        let title = TitleID(rawValue: "euronews")
        let at = Date()
        storeRates.append(Double(options.writeOps) / (try seconds {
            for (index, subject) in subjects.enumerated() {
                try store.recordRead(ArticleRead(subject: subject, titleID: title, articleID: "w\(round)-\(index)", at: at))
            }
        }))
        var written: Int64 = 0
        cRates.append(Double(options.writeOps) / seconds {
            written = cSubjects.pointers.withUnsafeBufferPointer { csl_record_reads(c, $0.baseAddress, Int64(options.writeOps), "euronews", at.millis) }
        })
        if written != Int64(options.writeOps) { fail("C wrote \(written)") }
    }
    rows.append(ResultRow(operation: "record a read (1 transaction)", size: "synchronous=\(options.durable ? "FULL" : "NORMAL")", store: median(storeRates), c: median(cRates)))
}

func format(_ value: Double) -> String { String(format: value >= 100 ? "%.0f" : "%.2f", value) }

print("")
print("| operation | data | paywall store (ops/s) | µs/op | plain C loop (ops/s) | C ÷ store |")
print("|---|---|---:|---:|---:|---:|")
for row in rows {
    print("| \(row.operation) | \(row.size) | \(format(row.store)) | \(String(format: "%.2f", row.storeMicros)) | \(format(row.c)) | \(String(format: "%.2f×", row.ratio)) |")
}
let lookups = rows.filter { $0.operation == "account by email" }
if let first = lookups.first, let last = lookups.last, lookups.count > 1 {
    print("")
    print("lookup time growth \(first.size) → \(last.size): \(String(format: "%.2f×", first.store / last.store)) (store), \(String(format: "%.2f×", first.c / last.c)) (C)")
}

extension Date {
    /// Milliseconds since 1970, as the store keeps instants.
    var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}
