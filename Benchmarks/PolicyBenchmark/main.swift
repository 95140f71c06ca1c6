// paywall-policy-bench: decisions per second of the shipped policy on one core, with 200
// and with 10,000 title sections, beside the equivalent policy in Cedar (cedarpy).
//
//   swift run -c release paywall-policy-bench [--decisions 2000000] [--rounds 5] [--no-cedar]
import Foundation
import PaywallPolicy

var decisions = 2_000_000
var rounds = 5
var cedar = true
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let flag = arguments.next() {
    switch flag {
    case "--decisions": decisions = Int(arguments.next() ?? "") ?? decisions
    case "--rounds": rounds = max(1, Int(arguments.next() ?? "") ?? rounds)
    case "--no-cedar": cedar = false
    default:
        FileHandle.standardError.write(Data("usage: paywall-policy-bench [--decisions N] [--rounds N] [--no-cedar]\n".utf8))
        exit(64)
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("paywall-policy-bench: \(message)\n".utf8))
    exit(1)
}

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
guard let shipped = try? String(contentsOf: root.appendingPathComponent("Policies/paywall.policy"), encoding: .utf8) else {
    fail("cannot read Policies/paywall.policy (run from the repository)")
}

/// The shipped policy plus generated title sections (every tenth with a rule of its own).
func policy(titles: Int) throws -> Policy {
    var text = shipped
    for index in 0..<(titles - 2) {
        text += "\ntitle \"title-\(index)\" {\n  teaser \(1 + index % 4) paragraphs\n"
        if index % 10 == 0 {
            text += "  rule \"title-\(index) sports are free\" { when article.section == \"sports\"; grant full }\n"
        }
        text += "}\n"
    }
    return try PolicyLoader.compile([PolicySource(name: "bench.policy", text: text)])
}

/// 1,024 readers of every kind, over the titles.
func variants(titles: Int) -> [DecisionFacts] {
    let now = Date(timeIntervalSince1970: 1_790_000_000)
    var random = SystemRandomNumberGenerator()
    return (0..<1_024).map { index in
        var facts = DecisionFacts(now: now, meters: [MeterFacts(used: Int.random(in: 0...4, using: &random), alreadyRead: false)])
        let titleIndex = index % 7 == 0 ? -1 : Int.random(in: 0..<(titles - 2), using: &random)
        facts.title.id = titleIndex < 0 ? (index % 2 == 0 ? "euronews" : "le-monde") : "title-\(titleIndex)"
        facts.article.id = "a\(index)"
        facts.article.section = ["news", "opinion", "sports", "culture"][index % 4]
        facts.article.free = index % 23 == 0
        if index % 13 == 0 { facts.article.tags = ["embargo"] }
        switch index % 6 {
        case 0: break  // anonymous
        case 1: facts.user.signedIn = true  // metered
        case 2:
            facts.user.signedIn = true
            facts.membership.status = "active"
            facts.membership.active = true
            if index % 4 == 2 { facts.membership.allTitles = true } else { facts.membership.titles = ["euronews", "title-1", "title-2"] }
            facts.membership.periodEnds = now.addingTimeInterval(86_400)
        case 3:
            facts.user.signedIn = true
            facts.trial.active = true
        case 4:
            facts.user.signedIn = true
            facts.membership.status = "past_due"
            facts.membership.allTitles = true
            facts.membership.graceEnds = now.addingTimeInterval(index % 2 == 0 ? 3_600 : -3_600)
        default:
            facts.request.ip = IPAddress(index % 2 == 0 ? "203.0.113.\(index % 250)" : "198.51.100.7")
            facts.user.emailVerified = index % 3 == 0
            facts.user.emailDomain = "uni.example.edu"
            facts.user.signedIn = index % 3 == 0
        }
        return facts
    }
}

func measure(_ policy: Policy, _ facts: [DecisionFacts], decisions: Int, rounds: Int) -> Double {
    var rates: [Double] = []
    var sink = 0
    for _ in 0..<rounds {
        let start = DispatchTime.now().uptimeNanoseconds
        for index in 0..<decisions {
            sink &+= policy.decide(facts[index & 1_023]).access.rawValue
        }
        rates.append(Double(decisions) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
    }
    if sink == -1 { print(sink) }
    let sorted = rates.sorted()
    return sorted[sorted.count / 2]
}

let small = try policy(titles: 200)
let large = try policy(titles: 10_000)
let smallFacts = variants(titles: 200)
let largeFacts = variants(titles: 10_000)
let smallRate = measure(small, smallFacts, decisions: decisions, rounds: rounds)
let largeRate = measure(large, largeFacts, decisions: decisions, rounds: rounds)

print("paywall-policy-bench: \(rounds) rounds of \(decisions) decisions on one core; medians")
print("")
print("| policy | decisions/s | ns/decision |")
print("|---|---:|---:|")
print("| shipped policy, 200 titles | \(Int(smallRate)) | \(Int(1e9 / smallRate)) |")
print("| shipped policy, 10,000 titles | \(Int(largeRate)) | \(Int(1e9 / largeRate)) |")
print("")
print("10,000 titles vs 200: \(String(format: "%.2f×", smallRate / largeRate)) the time per decision")

if cedar {
    // The same 1,024 readers, as Cedar requests; Cedar answers "full or not".
    func json(_ facts: DecisionFacts) -> [String: Any] {
        [
            "signedIn": facts.user.signedIn, "emailVerified": facts.user.emailVerified, "emailDomain": facts.user.emailDomain,
            "membershipActive": facts.membership.active, "membershipStatus": facts.membership.status, "allTitles": facts.membership.allTitles,
            "titles": Array(facts.membership.titles), "trialActive": facts.trial.active,
            "periodEnds": Int(facts.membership.periodEnds.timeIntervalSince1970), "graceEnds": Int(facts.membership.graceEnds.timeIntervalSince1970),
            "title": facts.title.id, "free": facts.article.free, "section": facts.article.section, "tags": Array(facts.article.tags),
            "now": Int(facts.now.timeIntervalSince1970), "meterUsed": facts.meters[0].used, "alreadyRead": facts.meters[0].alreadyRead,
            "ip": facts.request.ip?.description ?? "",
        ]
    }
    let input = try JSONSerialization.data(withJSONObject: smallFacts.map(json))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    let sportsFree = (0..<198).filter { $0 % 10 == 0 }.map { "title-\($0)" }
    let sportsJSON = String(decoding: try JSONSerialization.data(withJSONObject: sportsFree), as: UTF8.self)
    process.arguments = ["python3", root.appendingPathComponent("Benchmarks/PolicyBenchmark/cedar_reference.py").path, String(rounds), sportsJSON]
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let result = try JSONSerialization.jsonObject(with: output) as? [String: Any],
          let batch = result["batchRate"] as? Double, let single = result["singleRate"] as? Double, let allowed = result["allowed"] as? [Bool]
    else { fail("the Cedar reference failed (pip install cedarpy)") }
    let ours = smallFacts.map { small.decide($0).access == .full }
    let agree = zip(ours, allowed).filter { $0 == $1 }.count
    print("")
    print("| engine (same 1,024 readers, 200 titles) | decisions/s | µs/decision | paywall ÷ engine |")
    print("|---|---:|---:|---:|")
    print("| paywall (full decision: access, teaser, offers, meter, rules) | \(Int(smallRate)) | \(String(format: "%.2f", 1e6 / smallRate)) | 1.0× |")
    print("| Cedar via cedarpy, is_authorized_batch (allow/deny of full access) | \(Int(batch)) | \(String(format: "%.2f", 1e6 / batch)) | \(String(format: "%.0f×", smallRate / batch)) |")
    print("| Cedar via cedarpy, is_authorized per request | \(Int(single)) | \(String(format: "%.2f", 1e6 / single)) | \(String(format: "%.0f×", smallRate / single)) |")
    print("")
    print("agreement on full access: \(agree) of \(ours.count) readers")
}
