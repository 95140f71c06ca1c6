import Foundation
import Testing
@testable import PaywallPolicy

@Suite("Decision semantics")
struct SemanticsTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func facts(signedIn: Bool = false, used: Int = 0, reread: Bool = false, title: String = "t") -> DecisionFacts {
        var facts = DecisionFacts(now: now, meters: [MeterFacts(used: used, alreadyRead: reread)])
        facts.user.signedIn = signedIn
        facts.title.id = title
        return facts
    }

    @Test("with no grant the defaults apply; a grant raises, the strictest cap lowers")
    func levels() throws {
        let policy = try compile("""
            meter "m" { limit 1 per 1 day }
            defaults { access none; teaser 4 paragraphs }
            rule "teaser for signed in" { when user.signedIn; grant teaser }
            rule "full for signed in" { when user.signedIn; grant full }
            rule "cap a" { when title.id == "capped"; cap teaser }
            rule "cap b" { when title.id == "capped"; cap none }
            """)
        #expect(policy.decide(facts()).access == .none)
        #expect(policy.decide(facts()).decidingRules == ["defaults"])
        let signed = policy.decide(facts(signedIn: true))
        #expect(signed.access == .full)
        #expect(signed.decidingRules == ["full for signed in"])
        let capped = policy.decide(facts(signedIn: true, title: "capped"))
        #expect(capped.access == .none)
        #expect(capped.decidingRules == ["full for signed in", "cap b"])
    }

    @Test("rule order does not change the access (files compose)")
    func orderIndependent() throws {
        let rules = [
            "rule \"a\" { when user.signedIn; grant full }",
            "rule \"b\" { when title.id == \"t\"; cap teaser }",
            "rule \"c\" { when not user.signedIn; offer signIn }",
            "rule \"d\" { when user.signedIn; offer subscribe }",
        ]
        let forward = try compile(rules.joined(separator: "\n"))
        let backward = try compile(rules.reversed().joined(separator: "\n"))
        for f in [facts(), facts(signedIn: true), facts(signedIn: true, title: "u")] {
            #expect(forward.decide(f).access == backward.decide(f).access)
            #expect(Set(forward.decide(f).offers) == Set(backward.decide(f).offers))
        }
    }

    @Test("a metered grant is used only when needed, consumes one unit, and re-reads are free")
    func metering() throws {
        let policy = try compile("""
            meter "m" { limit 3 per 30 days }
            rule "metered" { when user.signedIn; grant full using meter "m" }
            rule "members" { when membership.active; grant full }
            rule "teaser members" { when membership.plan == "basic"; grant teaser }
            """)
        let fresh = policy.decide(facts(signedIn: true, used: 0))
        #expect(fresh.access == .full)
        #expect(fresh.meter == MeterOutcome(name: "m", consumed: true, reread: false, used: 1, limit: 3))
        let exhausted = policy.decide(facts(signedIn: true, used: 3))
        #expect(exhausted.access == .teaser)
        #expect(exhausted.meter?.consumed == false)
        #expect(exhausted.meter?.remaining == 0)
        let reread = policy.decide(facts(signedIn: true, used: 3, reread: true))
        #expect(reread.access == .full)
        #expect(reread.meter?.reread == true && reread.meter?.consumed == false)
        var member = facts(signedIn: true, used: 0)
        member.membership.active = true
        let decided = policy.decide(member)
        #expect(decided.access == .full)
        #expect(decided.meter == nil, "an unmetered full grant leaves the meter alone")
        #expect(decided.decidingRules == ["members"])
    }

    @Test("a missing client address compares false with == and with != (a request without one is no proof of being elsewhere)")
    func missingAddress() throws {
        let policy = try compile("""
            rule "outside the office" { when request.ip != ip("192.0.2.7"); grant full }
            """)
        #expect(policy.decide(facts()).access != .full, "no address: not 'outside'")
        var outside = facts()
        outside.request.ip = IPAddress("198.51.100.1")
        #expect(policy.decide(outside).access == .full)
        var office = facts()
        office.request.ip = IPAddress("192.0.2.7")
        #expect(policy.decide(office).access != .full)
    }

    @Test("past 64 rules a metered grant is still found among the matched ones (and the one that did not match is not)")
    func manyRules() throws {
        var text = "meter \"m\" { limit 5 per 30 days }\n"
        for index in 0..<200 { text += "rule \"r\(index)\" { when title.id == \"t\(index)\"; offer signIn }\n" }
        text += "rule \"metered\" { when user.signedIn; grant full using meter \"m\" }\n"
        text += "rule \"never\" { when title.id == \"nowhere\"; grant full using meter \"m\" }\n"
        let policy = try compile(text)
        let decided = policy.decide(facts(signedIn: true, used: 1, title: "t150"))
        #expect(decided.access == .full && decided.decidingRules == ["metered"])
        #expect(policy.decide(facts(signedIn: false, used: 1, title: "t150")).access != .full)
    }

    @Test("offers come from every matching rule, in policy order, only below full")
    func offers() throws {
        let policy = try compile("""
            rule "one" { when not user.signedIn; offer signUp, signIn }
            rule "two" { when true; offer trial 14 days, signIn }
            rule "full for crawlers" { when request.verifiedCrawler; grant full }
            """)
        #expect(policy.decide(facts()).offers == [.signUp, .signIn, .trial(days: 14)])
        var crawler = facts()
        crawler.request.verifiedCrawler = true
        #expect(policy.decide(crawler).offers == [])
    }

    @Test("title sections scope settings and rules to one title")
    func titleSections() throws {
        let policy = try compile("""
            defaults { teaser 3 paragraphs }
            title "short" {
              teaser 1 paragraph
              rule "free on short" { when true; grant full }
            }
            """)
        #expect(policy.decide(facts(title: "short")).access == .full)
        #expect(policy.decide(facts(title: "short")).teaserParagraphs == 1)
        #expect(policy.decide(facts(title: "other")).access == .teaser)
        #expect(policy.decide(facts(title: "other")).teaserParagraphs == 3)
    }

    @Test("shadow rules are reported, never enforced; explanations say which part failed")
    func shadowAndExplain() throws {
        let policy = try compile("""
            rule "try this" shadow { when true; grant full }
            rule "signed and trial" { when user.signedIn and trial.active; grant full }
            """)
        let decision = policy.decide(facts(signedIn: true), explain: true)
        #expect(decision.access == .teaser)
        #expect(decision.shadowMatches == ["try this"])
        let trace = try #require(decision.explanation?.first { $0.rule == "signed and trial" })
        #expect(!trace.matched)
        #expect(trace.failedCondition == "trial.active")
        #expect(decision.explanation?.first { $0.rule == "try this" }?.matched == true)
    }

    @Test("decisions are private and carry the revision; free-for-all only for reader-independent grants")
    func metadata() throws {
        let policy = try compile("""
            rule "free section" { when article.section == "free"; grant full }
            rule "signed" { when user.signedIn; grant full }
            """)
        var free = facts()
        free.article.section = "free"
        #expect(policy.decide(free).accessibleForFree)
        #expect(!policy.decide(facts(signedIn: true)).accessibleForFree)
        #expect(policy.decide(free).isPrivate)
        #expect(policy.decide(free).revision.count == 16)
        let other = try compile("rule \"free section\" { when article.section == \"gratis\"; grant full }")
        #expect(other.revision != policy.revision)
    }

    @Test("free for all only when everyone reads in full: a cap that may hold for some reader says not free")
    func freeForAll() throws {
        let policy = try compile("""
            rule "publisher-marked free articles" { when article.free; grant full }
            rule "members" { when membership.active; grant full }
            rule "embargoed articles are for members only" { when "embargo" in article.tags and not membership.active; cap teaser }
            rule "no archive" { when article.section == "archive"; cap teaser }
            """)
        var free = facts()
        free.article.free = true
        let open = policy.decide(free)
        #expect(open.access == .full && open.accessibleForFree)
        // An embargo cap on a publisher-marked free article: a teaser, so not free.
        var embargoed = free
        embargoed.article.tags = ["embargo"]
        let capped = policy.decide(embargoed)
        #expect(capped.access == .teaser)
        #expect(!capped.accessibleForFree)
        // A member reads it in full, but others do not: still not free for all.
        embargoed.membership.active = true
        let member = policy.decide(embargoed)
        #expect(member.access == .full)
        #expect(!member.accessibleForFree)
        // A cap that reads nothing about the reader and holds: not free either.
        var archived = free
        archived.article.section = "archive"
        #expect(!policy.decide(archived).accessibleForFree)
        // A publisher mark the policy does not honour is not free.
        let strict = try compile("rule \"members\" { when membership.active; grant full }")
        #expect(strict.decide(free).access == .teaser)
        #expect(!strict.decide(free).accessibleForFree)
    }

    @Test("an IPv4-mapped IPv6 address is its IPv4 address: in the same ranges, under the same caps")
    func mappedAddresses() throws {
        let mapped = try #require(IPAddress("::ffff:203.0.113.5"))
        #expect(mapped == IPAddress("203.0.113.5"))
        #expect(mapped.isIPv4)
        #expect(mapped.description == "203.0.113.5")
        #expect(IPAddress("::ffff:cb00:7105") == IPAddress("203.0.113.5"))
        #expect(CIDR("203.0.113.0/24")?.contains(mapped) == true)
        #expect(CIDR("203.0.114.0/24")?.contains(mapped) == false)
        #expect(CIDR("::ffff:203.0.113.0/120")?.contains(IPAddress("203.0.113.9")!) == true)
        #expect(CIDR("::ffff:203.0.113.0/120")?.description == "203.0.113.0/24")
        #expect(CIDR("2001:db8::/32")?.contains(mapped) == false)
        #expect(CIDR("203.0.113.0/24")?.contains(IPAddress("::203.0.113.5")!) == false, "IPv4-compatible (deprecated) is not mapped")

        let policy = try compile("""
            rule "office" { when request.ip in cidr("203.0.113.0/24"); grant full }
            rule "campus" { when request.ip in [cidr("198.51.100.0/24"), cidr("2001:db8:42::/48")]; grant full }
            rule "members" { when membership.active; grant full }
            rule "blocked network" { when request.ip in cidr("192.0.2.0/24") or request.ip == ip("192.0.2.200"); cap none }
            """)
        var reader = facts()
        reader.request.ip = mapped
        #expect(policy.decide(reader).access == .full)
        reader.request.ip = IPAddress("::ffff:198.51.100.7")
        #expect(policy.decide(reader).access == .full)
        var member = facts()
        member.membership.active = true
        member.request.ip = IPAddress("::ffff:192.0.2.7")
        #expect(policy.decide(member).access == .none)
        member.request.ip = IPAddress("::FFFF:192.0.2.200")
        #expect(policy.decide(member).access == .none)
        member.request.ip = IPAddress("192.0.3.1")
        #expect(policy.decide(member).access == .full)
    }

    @Test("IP addresses and ranges")
    func addresses() {
        #expect(CIDR("203.0.113.0/24")?.contains(IPAddress("203.0.113.255")!) == true)
        #expect(CIDR("203.0.113.0/24")?.contains(IPAddress("203.0.114.0")!) == false)
        #expect(CIDR("2001:db8::/32")?.contains(IPAddress("2001:db8:ffff::1")!) == true)
        #expect(CIDR("2001:db8::/32")?.contains(IPAddress("2001:db9::1")!) == false)
        #expect(CIDR("0.0.0.0/0")?.contains(IPAddress("8.8.8.8")!) == true)
        #expect(CIDR("0.0.0.0/0")?.contains(IPAddress("::1")!) == false)
        #expect(IPAddress("::ffff:1.2.3.4") != nil)
        for good in ["0.0.0.0", "255.255.255.255", "192.0.2.7", "10.200.30.4", "100.0.10.0"] {
            #expect(IPAddress(good)?.description == good)
        }
        for bad in ["", "1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "12345::", "g::1", "1.2.3.4.5",
                    "1..2.3", "1.2.3.", ".1.2.3", "1.2.3.4 ", " 1.2.3.4", "1.2.3.0004", "00.1.2.3", "1.2.3.00",
                    "1.2.3.-4", "1.2.3.+4", "\u{0661}.2.3.4", "999.1.1.1", "1.2.3.4\0"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        for bad in ["1.2.3.4", "1.2.3.4/33", "::/129", "1.2.3.4/-1", "x/8"] {
            #expect(CIDR(bad) == nil, "\(bad)")
        }
    }
}
