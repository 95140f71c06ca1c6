import Foundation
import Testing
@testable import PaywallPolicy

/// Runs `body` on a thread with a 512 KiB stack (a small worker stack) and returns its
/// result: whatever it builds is also freed there.
func onSmallStack<Result: Sendable>(_ body: @escaping @Sendable () -> Result) async -> Result {
    await withCheckedContinuation { (continuation: CheckedContinuation<Result, Never>) in
        let thread = Thread {
            continuation.resume(returning: body())
        }
        thread.stackSize = 512 * 1024
        thread.start()
    }
}

@Suite("Limits: huge policies, long durations, missing facts")
struct LimitsTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// Compiles `sources`, decides every facts value, and frees it all: the failures.
    static func loadAndDecide(_ sources: [PolicySource], _ cases: [(DecisionFacts, AccessLevel)]) -> [String] {
        do {
            let policy = try PolicyLoader.compile(sources)
            var failures: [String] = []
            for (index, (facts, expected)) in cases.enumerated() {
                let decision = policy.decide(facts, explain: true)
                if decision.access != expected { failures.append("case \(index): \(decision.access), expected \(expected)") }
            }
            return failures
        } catch {
            return ["\(error)".prefix(500).description]
        }
    }

    @Test("50,000-term 'or', 'and' and '+' chains load, check, decide and free on a 512 KiB stack")
    func longChains() async {
        let terms = 50_000
        // `or`, one term a line (a condition continues with and/or on the next line).
        let or = "rule \"or\" {\n  when trial.active" + String(repeating: "\n or trial.active", count: terms - 2) + "\n or user.emailVerified\n  grant full\n}\n"
        // `and` at the top level: every operand is a conjunct of its own.
        let and = "rule \"and\" {\n  when trial.eligible" + String(repeating: "\n and trial.eligible", count: terms - 1) + "\n  grant full\n}\n"
        // `and` nested in parentheses: one conjunct, one flat chain.
        let nestedAnd = "rule \"nested and\" {\n  when (user.signedIn" + String(repeating: "\n and user.signedIn", count: terms - 1) + ") or request.verifiedCrawler\n  grant full\n}\n"
        // `+` and `-` on one line: +25,000 seconds in all.
        let sum = "rule \"sum\" { when article.publishedAt" + String(repeating: " + 2 seconds - 1 second", count: terms / 2) + " > now; grant full }\n"
        // Nesting with chains at every level (nesting itself recurses, bounded by
        // Parser.maximumDepth; 24 levels here).
        var deep = "trial.active"
        for _ in 0..<8 { deep = "not (not \(deep) and user.emailVerified or true)" }
        let nested = "rule \"nested\" { when article.free and (\(deep)); grant full }\n"
        for source in [or, and, nestedAnd, sum] { #expect(source.utf8.count <= Lexer.maximumSourceSize) }
        let sources = [or, and, nestedAnd, sum, nested].enumerated().map { PolicySource(name: "chain\($0.offset).policy", text: $0.element) }

        var base = DecisionFacts(now: now)
        base.article.publishedAt = now.addingTimeInterval(-30_000)  // the sum is 5,000 s short of now
        var trial = base
        trial.trial.active = true
        var eligible = base
        eligible.trial.eligible = true
        var signedIn = base
        signedIn.user.signedIn = true  // the nested `and` chain: every operand holds
        var verified = base
        verified.user.emailVerified = true  // the last operand of the `or` chain
        var crawler = base
        crawler.request.verifiedCrawler = true
        var recent = base
        recent.article.publishedAt = now.addingTimeInterval(-20_000)
        let cases = [(base, AccessLevel.teaser), (trial, .full), (eligible, .full), (signedIn, .full), (verified, .full), (crawler, .full), (recent, .full)]

        let failures = await onSmallStack { Self.loadAndDecide(sources, cases) }
        #expect(failures == [])
    }

    @Test("errors inside long chains point at the operator next to the bad operand")
    func chainErrors() throws {
        let or = diagnostics("rule \"a\" { when user.signedIn or trial.active or user.id or true; grant full }")
        let orError = try #require(or.first)
        #expect(orError.message == "'or' needs true or false on both sides, not a bool and a string")
        #expect(orError.location == SourceLocation(file: "test.policy", line: 1, column: 47))
        let sum = diagnostics("rule \"a\" { when now + 1 day + user.id > now; grant full }")
        let sumError = try #require(sum.first)
        #expect(sumError.message == "cannot add a time and a string")
        #expect(sumError.location == SourceLocation(file: "test.policy", line: 1, column: 29))
        #expect(diagnostics("rule \"a\" { when 1 day - now > 0 days; grant full }").first?.message == "cannot subtract a duration and a time")
        #expect(diagnostics("rule \"a\" { when user.signedIn + 1; grant full }").first?.message == "cannot add a bool and a number")
    }

    @Test("sums keep their types and order: time ± duration, time − time, duration + time, numbers")
    func sums() throws {
        let policy = try compile("""
            meter "m" { limit 5 per 1 day }
            rule "a" {
              when now - article.publishedAt - 1 hour == 1 day
                and 1 hour + article.publishedAt + 1 day == now
                and meter("m").limit - meter("m").used + 1 == 3
              grant full
            }
            """)
        var facts = DecisionFacts(now: now, meters: [MeterFacts(used: 3)])
        facts.article.publishedAt = now.addingTimeInterval(-25 * 3_600)
        #expect(policy.decide(facts).access == .full)
        facts.meters = [MeterFacts(used: 2)]
        let decision = policy.decide(facts, explain: true)
        #expect(decision.access == .teaser)
        #expect(decision.explanation?.first?.failedCondition == "meter(\"m\").limit - meter(\"m\").used + 1 == 3")
    }

    /// One line of `rules` rules, each with a 10,000-element set.
    static func longLine(rules: Int) -> String {
        let set = "[" + (0..<10_000).map { "\"t\($0)\"" }.joined(separator: ", ") + "]"
        var text = "defaults { access teaser; teaser 2 paragraphs }"
        for index in 0..<rules { text += " rule \"r\(index)\" { when title.id in \(set); grant full }" }
        return text
    }

    @Test("a 1 MiB policy on a single line loads in linear time")
    func longLine() throws {
        // Rules of 10,000-element sets: about 200,000 lexemes on one line at full size.
        let rule = Self.longLine(rules: 1).utf8.count - Self.longLine(rules: 0).utf8.count
        let rules = (Lexer.maximumSourceSize - 200) / rule
        let text = Self.longLine(rules: rules)
        #expect(!text.contains("\n"))
        #expect(text.utf8.count > 900_000)
        // Linear, not a speed target: a quarter of the text against all of it, in the same
        // run, in this thread's CPU time (tests run in parallel: wall time would count the
        // others'). Linear work gives about 4×; the quadratic column counting this guards
        // against gave 16× (0.4 s became 40 s).
        let quarter = Self.longLine(rules: rules / 4)
        func cpu(_ source: String) throws -> Double {
            func now() -> Double {
                var spec = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
                return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
            }
            return try (0..<2).map { _ in
                let start = now()
                _ = try compile(source)
                return now() - start
            }.min() ?? 0
        }
        let small = try cpu(quarter), large = try cpu(text)
        #expect(large < small * 8, "a quarter took \(small) s of CPU, all of it \(large) s")
        let policy = try compile(text)
        var facts = DecisionFacts(now: now)
        facts.title.id = "t9999"
        #expect(policy.decide(facts).access == .full)
        // Columns on a long line still count characters.
        let found = diagnostics("rule \"ééé\" { when user.nope; grant full }")
        #expect(found.first?.location == SourceLocation(file: "test.policy", line: 1, column: 19))
    }

    @Test("durations longer than 100 years are refused where they are written")
    func longDurations() throws {
        let meter = diagnostics("meter \"m\" { limit 3 per 20000000000 weeks }")
        let first = try #require(meter.first)
        #expect(first.location == SourceLocation(file: "test.policy", line: 1, column: 25))
        #expect(first.description.hasPrefix("test.policy:1:25: error: a duration may not be longer than 100 years (36600 days)"))
        #expect(diagnostics("rule \"a\" { when article.age < 999999999999 days; grant full }").first?.message.contains("longer than 100 years") == true)
        #expect(diagnostics("rule \"a\" { when user.signedIn; offer trial 99999999999999 weeks }").isEmpty == false)
        let longest = try compile("meter \"m\" { limit 3 per 36600 days }\nrule \"a\" { when article.age < 5227 weeks; grant full }")
        #expect(longest.meters.first?.window == Parser.maximumDuration)
        #expect(!diagnostics("meter \"m\" { limit 3 per 36601 days }").isEmpty)
    }

    @Test("facts with fewer meters than the policy fail closed: a missing meter is used up")
    func missingMeterFacts() throws {
        let policy = try compile("""
            meter "first" { limit 3 per 30 days }
            meter "second" { limit 5 per 30 days }
            rule "metered" { when user.signedIn; grant full using meter "second" }
            rule "left" { when meter("second").remaining > 0 and meter("second").used < 5; offer subscribe }
            """)
        var facts = DecisionFacts(now: now, meters: [MeterFacts()])
        facts.user.signedIn = true
        let decision = policy.decide(facts, explain: true)
        #expect(decision.access == .teaser)
        #expect(decision.meter == MeterOutcome(name: "second", consumed: false, reread: false, used: 5, limit: 5))
        #expect(decision.offers == [])
        facts.meters = []
        #expect(policy.decide(facts).access == .teaser)
        facts.meters = [MeterFacts(), MeterFacts(used: 1)]
        #expect(policy.decide(facts).access == .full)
        #expect(policy.decide(facts).offers == [])
    }

    @Test("impossible meter counts fail closed and never trap")
    func hostileMeterCounts() throws {
        let policy = try compile("""
            meter "m" { limit 3 per 30 days }
            rule "metered" { when user.signedIn; grant full using meter "m" }
            rule "left" { when meter("m").remaining > 0 or meter("m").used < 0; offer subscribe }
            """)
        for used in [Int.min, -1, Int.max] {
            var facts = DecisionFacts(now: now, meters: [MeterFacts(used: used)])
            facts.user.signedIn = true
            let decision = policy.decide(facts)
            #expect(decision.access == .teaser, "used \(used)")
            #expect(decision.meter?.remaining == 0, "used \(used)")
            #expect(decision.meter?.consumed == false, "used \(used)")
            #expect(decision.offers == [], "used \(used)")
        }
    }
}
