import Foundation
import Testing
@testable import PaywallPolicy

func compile(_ text: String, file: String = "test.policy") throws(PolicyErrors) -> Policy {
    try PolicyLoader.compile([PolicySource(name: file, text: text)])
}

/// The diagnostics of a policy that must not compile.
func diagnostics(_ text: String) -> [PolicyDiagnostic] {
    do {
        _ = try compile(text)
        return []
    } catch {
        return error.diagnostics
    }
}

@Suite("Checking policies")
struct CheckerTests {
    @Test("syntax errors point at file:line:column with the line and a caret")
    func syntaxError() throws {
        let found = diagnostics("""
            rule "a" {
              when user.signedIn and
              grant full
            }
            """)
        let first = try #require(found.first)
        #expect(first.location == SourceLocation(file: "test.policy", line: 2, column: 25))
        #expect(first.description.hasPrefix("test.policy:2:25: error: expected a value or an attribute, found end of line"))
        #expect(first.description.contains("\n      when user.signedIn and\n                            ^"))
        // Indented with a tab: the caret's padding keeps the tab, so it lines up in any terminal.
        let tabbed = try #require(diagnostics("rule \"a\" {\n\twhen user.nope\n\tgrant full\n}").first)
        #expect(tabbed.description.contains("\n    \twhen user.nope\n    \t     ^"), "\(tabbed.description)")
    }

    @Test("errors and their messages", arguments: [
        ("rule \"a\" { when user.signedin; grant full }", "unknown attribute 'user.signedin'; did you mean 'user.signedIn'?"),
        ("rule \"a\" { when membership.staus == \"active\"; grant full }", "did you mean 'membership.status'?"),
        ("rule \"a\" { when user.id == 3; grant full }", "cannot compare a string and a number"),
        ("rule \"a\" { when now < 3; grant full }", "cannot order a time and a number"),
        ("rule \"a\" { when user.signedIn + 1; grant full }", "cannot add a bool and a number"),
        ("rule \"a\" { when user.id; grant full }", "a condition must be true or false, not a string"),
        ("rule \"a\" { when not user.id; grant full }", "'not' needs true or false"),
        ("rule \"a\" { when user.id in user.id; grant full }", "'in' takes a set"),
        ("rule \"a\" { when membership.status == \"activ\"; grant full }", "membership.status is never \"activ\"; did you mean \"active\"?"),
        ("rule \"a\" { when user.signedIn; grant full using meter \"free\" }", "unknown meter \"free\""),
        ("meter \"free-articles\" { limit 3 per 30 days }\nrule \"a\" { when user.signedIn; grant full using meter \"free-article\" }", "did you mean \"free-articles\"?"),
        ("rule \"a\" { when meter(\"nope\").used < 3; grant full }", "unknown meter \"nope\""),
        ("meter \"m\" { limit 3 per 30 days }\nrule \"a\" { when meter(\"m\").usd < 3; grant full }", "did you mean 'used'?"),
        ("rule \"a\" { when user.signedIn; grant full }\nrule \"a\" { when trial.active; grant full }", "duplicate rule name \"a\""),
        ("rule \"a\" { when false; grant full }", "can never match"),
        ("rule \"a\" { when 1 > 2; grant full }", "can never match"),
        ("rule \"a\" { when title.id == \"x\" and title.id == \"y\"; grant full }", "cannot be both \"x\" and \"y\""),
        ("rule \"a\" { when user.signedIn and not user.signedIn; grant full }", "both true and false"),
        ("rule \"a\" { when user.signedIn }", "has no effect"),
        ("rule \"a\" { when user.signedIn; grant everything }", "expected an access level"),
        ("rule \"a\" { when user.signedIn; offer trial 0 days }", "a trial lasts 1 to 366 whole days"),
        ("rule \"a\" { when user.signedIn; offer coffee }", "unknown offer 'coffee'"),
        ("rule \"a\" { when user.signedIn; grnt full }", "did you mean 'grant'?"),
        ("rul \"a\" { when user.signedIn; grant full }", "did you mean 'rule'?"),
        ("rule \"a\" { when user.id = \"x\"; grant full }", "compare with '=='"),
        ("rule \"a\" { when request.ip in cidr(\"10.0.0.0/33\"); grant full }", "is not an address range"),
        ("rule \"a\" { when now > time(\"yesterday\"); grant full }", "is not an ISO 8601 instant"),
        ("rule \"a\" { when \"x\" in [\"a\", 1]; grant full }", "a set holds one type of element"),
        ("rule \"a\" { when 1 < 2 < 3; grant full }", "comparisons do not chain"),
        ("rule \"a\" { when user.signedIn; grant full", "expected '}' to close the block"),
        ("rule \"a { when user.signedIn; grant full }", "unterminated string"),
        ("defaults { access full }", "never get the full text by accident"),
        ("defaults { teaser 3 }", "expected 'paragraphs'"),
        ("defaults { access teaser }\ndefaults { teaser 2 paragraphs }", "a second 'defaults' block"),
        ("title \"x\" { teaser 2 paragraphs }\ntitle \"x\" { teaser 1 paragraph }", "has a second section"),
        ("meter \"m\" { limit 3 per 30 days }\nmeter \"m\" { limit 5 per 1 day }", "declared twice"),
        ("meter \"m\" { limit 3 per 30 }", "expected a unit"),
        ("rule \"a\" { when user.signedIn; when trial.active; grant full }", "a rule has one 'when'"),
        ("rule \"a\" { when user.signedIn; grant full } junk", "expected 'rule', 'meter', 'defaults' or 'title'"),
        ("rule \"a\" { when @; grant full }", "unexpected character '@'"),
        ("rule \"a\" { when membership.status in [\"active\", \"activ\"]; grant full }", "membership.status is never \"activ\"; did you mean \"active\"?"),
        ("rule \"a\" { when request.channel in [\"emial\"]; grant full }", "request.channel is never \"emial\""),
        ("rule \"a\" { when true; offer trial 30 days }\nrule \"b\" { when user.signedIn; offer trial 7 days }", "a person has one free trial, of one length"),
        ("meter \"m\" { limit 1 per 0.0001 seconds }", "at least 1 second"),
        ("rule \"a\" { when \"Academic\" in title.tags; grant full }", "title.tags is stored lower-case: \"Academic\" never matches; write \"academic\""),
        ("rule \"a\" { when title.id == \"Le-Monde\"; grant full }", "write \"le-monde\""),
        ("rule \"a\" { when user.emailDomain in [\"Uni.edu\"]; grant full }", "write \"uni.edu\""),
        ("rule \"a\" { when request.country == \"fr\"; cap teaser }", "request.country is stored upper-case: \"fr\" never matches; write \"FR\""),
        ("rule \"a\" { when request.country in [\"DE\", \"at\"]; cap teaser }", "write \"AT\""),
        ("rule \"a\" { when membership.plan == \"Annual-All\"; grant full }", "write \"annual-all\""),
        ("rule \"a\" { when request.referrerHost == \"News.Example\"; grant full }", "write \"news.example\""),
        ("rule \"a\" { when request.device == \"iOS\"; grant full }", "write \"ios\""),
        ("title \"Le Monde\" { teaser 2 paragraphs }", "did you mean \"le-monde\"?"),
        ("title \"-daily\" { teaser 2 paragraphs }", "is not a title id"),
        ("rule \"a\" { when user.signedIn; grant ful }", "did you mean 'full'?"),
        ("rule \"a\" { when user.signedIn; grant none }", "'grant none' raises nothing; to take access away write 'cap none'"),
        ("rule \"a\" { when user.signedIn; cap full }", "'cap full' lowers nothing"),
        ("rule \"a\" { when user.id in []; grant full }", "'in []' is never true"),
    ])
    func errors(_ text: String, message: String) {
        let found = diagnostics(text)
        #expect(!found.isEmpty, "expected an error for: \(text)")
        #expect(found.contains { $0.message.contains(message) }, "got: \(found.map(\.message))")
        #expect(found.allSatisfy { $0.location.line >= 1 && $0.location.column >= 1 })
    }

    @Test("every error of a file set is reported, not just the first")
    func allErrors() {
        let found = diagnostics("""
            rule "a" { when user.nope; grant full }
            rule "b" { when trial.nope; grant full }
            """)
        #expect(found.count == 2)
        #expect(found.map(\.location.line) == [1, 2])
    }

    @Test("a line may also end with and/or; a negative duration says how to write it")
    func lineEndingOperators() throws {
        let policy = try compile("""
            rule "either" {
              when user.signedIn and
                trial.active or
                membership.active
              grant full
            }
            """)
        var facts = DecisionFacts(now: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(policy.decide(facts).access == .teaser)
        facts.membership.status = "active"
        facts.membership.active = true
        #expect(policy.decide(facts).access == .full)
        facts = DecisionFacts(now: Date(timeIntervalSince1970: 1_800_000_000))
        facts.user.signedIn = true
        #expect(policy.decide(facts).access == .teaser)
        facts.trial.active = true
        #expect(policy.decide(facts).access == .full)
        // An operator with nothing after it before the next statement or the end of the rule:
        // the error is at the end of its line, not about the next line's keyword.
        for next in ["grant full", "offer signUp", "cap teaser", "}"] {
            let text = "rule \"a\" {\n  when user.signedIn or\n  \(next)\n" + (next == "}" ? "" : "}")
            let first = try #require(diagnostics(text).first, "\(next)")
            #expect(first.location == SourceLocation(file: "test.policy", line: 2, column: 24), "\(next)")
            #expect(first.message.hasPrefix("expected a value or an attribute, found end of line"), "\(next)")
        }
        let negative = try #require(diagnostics("rule \"a\" { when now - user.createdAt > -7 days; grant full }").first)
        #expect(negative.message == "a duration cannot be negative ('-7 days'): subtract the other way round and flip the comparison")
        #expect(negative.location.column == 40)  // the sign
        // A negative number without a unit is still a number.
        #expect(diagnostics("meter \"m\" { limit 3 per 30 days }\nrule \"a\" { when meter(\"m\").remaining > -1; grant full }").isEmpty)
    }

    @Test("conditions may continue on the next line with and/or, and use every literal kind")
    func literals() throws {
        let policy = try compile("""
            meter "m" { limit 3 per 30 days }
            rule "all kinds" {
              when article.age < 2 days
                and now > time("2020-01-01T00:00:00Z")
                and (request.ip in cidr("10.0.0.0/8") or request.ip == ip("::1"))
                and title.id in ["euronews", "le-monde"]
                and meter("m").remaining > 0
                and not request.verifiedCrawler
                and article.publishedAt + 1 hour < now
              grant full
            }
            """)
        var facts = DecisionFacts(now: Date(timeIntervalSince1970: 1_800_000_000), meters: [MeterFacts(used: 1)])
        facts.article.publishedAt = facts.now.addingTimeInterval(-86_400)
        facts.title.id = "le-monde"
        facts.request.ip = IPAddress("10.1.2.3")
        #expect(policy.decide(facts).access == .full)
        facts.request.ip = IPAddress("::1")
        #expect(policy.decide(facts).access == .full)
        facts.request.ip = IPAddress("11.0.0.1")
        #expect(policy.decide(facts).access == .teaser)
        facts.request.ip = nil
        #expect(policy.decide(facts).access == .teaser)
    }

    @Test("huge, deep and hostile inputs give errors, never a crash or a hang")
    func hostile() {
        #expect(!diagnostics("rule \"a\" { when " + String(repeating: "(", count: 10_000) + "true" + String(repeating: ")", count: 10_000) + "; grant full }").isEmpty)
        #expect(!diagnostics("rule \"a\" { when " + String(repeating: "not ", count: 10_000) + "true; grant full }").isEmpty)
        #expect(diagnostics(String(repeating: "# comment\n", count: 120_000)).first?.message.contains("larger than") == true)
        #expect(!diagnostics("rule \"" + String(repeating: "x", count: 5_000) + "\" { when true; grant full }").isEmpty)
        #expect(!diagnostics("\u{0}\u{1}\u{2}").isEmpty)
        #expect(!diagnostics("rule \"a\" { when \"\u{FFFF}\" in article.tags; grant full").isEmpty)
    }
}
