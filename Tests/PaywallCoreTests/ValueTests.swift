import Foundation
import Testing
@testable import PaywallCore

@Suite("Identifiers, durations and dates")
struct ValueTests {
    @Test("slugs", arguments: ["euronews", "the-daily-1", "a", "9news"])
    func validSlug(_ text: String) throws {
        #expect(try TitleID(validating: text).rawValue == text)
    }

    @Test("bad slugs", arguments: ["", "Euronews", "-x", "a b", "a_b", "ü", String(repeating: "a", count: 65), "a/b"])
    func invalidSlug(_ text: String) {
        #expect(throws: DomainError.self) { try TitleID(validating: text) }
    }

    @Test("durations", arguments: [("90s", 90.0), ("15m", 900), ("12h", 43_200), ("14d", 1_209_600), ("2w", 1_209_600), (" 30D ", 2_592_000)])
    func durations(_ text: String, seconds: Double) throws {
        #expect(try TimeText.duration(text) == seconds)
    }

    @Test("durations printed as they are typed, in the largest unit that divides them", arguments: [
        (90.0, "90s"), (900, "15m"), (46_800, "13h"), (1_209_600, "2w"), (86_400, "1d"), (0, "0s"), (1.5, "1.5s"), (Double.nan, "nans"),
    ])
    func durationText(_ seconds: Double, text: String) throws {
        #expect(TimeText.format(duration: seconds) == text)
        if seconds >= 1, seconds.rounded() == seconds { #expect(try TimeText.duration(text) == seconds) }
    }

    @Test("a rejected value is shown cut to 64 characters, whatever its length")
    func longValuesCut() {
        let long = String(repeating: "x", count: 5_000)
        for error in [DomainError.invalidIdentifier(kind: "title id", value: long, reason: "too long"), .invalidValue(field: "article", value: long, expected: "1 to 256 bytes"),
                      .invalidDuration(long), .invalidDate(long)] {
            #expect(error.description.count < 200, "\(error.description.prefix(80))")
            #expect(error.description.contains(String(repeating: "x", count: 64) + "…(4936 more)"))
        }
        #expect(DomainError.invalidValue(field: "plan", value: "short", expected: "x").description == "invalid plan 'short': expected x")
        #expect(DomainError.invalidValue(field: "plan", value: "", expected: "one of a, b").description == "no plan given: expected one of a, b")
    }

    @Test("a rejected value is shown on one line: newlines, terminal escapes and bidirectional overrides escaped, and its quotes kept closed")
    func rejectedValuesEscaped() {
        let error = DomainError.invalidIdentifier(kind: "article id", value: "a\n2026-11-29 notice: forged\u{1B}[8m\u{202E}'x\\", reason: "bad")
        #expect(error.description == #"invalid article id 'a\n2026-11-29 notice: forged\u{1B}[8m\u{202E}\'x\\': bad"#)
        #expect(error.description.filter(\.isNewline).isEmpty)
    }

    @Test("a rejected email address is not echoed (a reader sometimes types a password there): the reason says what is wrong")
    func emailNotEchoed() throws {
        do {
            _ = try EmailAddress("Tr0ub4dor&3-my-real-password")
            Issue.record("a password taken for an email address")
        } catch {
            #expect(error.description == "invalid email address: it must contain exactly one '@'")
        }
        do {
            _ = try EmailAddress("a\u{1B}b@example.com")
            Issue.record("an escape character accepted in an email address")
        } catch {
            #expect(error.description == #"invalid email address: character '\u{1B}' is not allowed before the '@'"#)
        }
    }

    @Test("PrintableText: clean text comes back as it is; quoted text is cut at the limit and says how much more there was")
    func printableText() {
        #expect(PrintableText.oneLine("plain 'text' \\ é 日本") == "plain 'text' \\ é 日本")
        #expect(PrintableText.oneLine("a\tb\u{7F}c\u{85}d\u{2066}") == #"a\tb\u{7F}c\u{85}d\u{2066}"#)
        #expect(PrintableText.quoted("abcdef", limit: 3) == "abc…(3 more)")
        #expect(PrintableText.quoted("abc", limit: 3) == "abc")
        #expect(PrintableText.quoted("it's") == #"it\'s"#)
    }

    @Test("bad durations", arguments: ["", "d", "0d", "-1d", "1.5d", "10", "10y", "1 d", "99999999999999999999d", "+5d"])
    func badDurations(_ text: String) {
        #expect(throws: DomainError.invalidDuration(text)) { try TimeText.duration(text) }
    }

    @Test("instants")
    func instants() throws {
        #expect(try TimeText.instant("2026-12-31") == Date(timeIntervalSince1970: 1_798_675_200))
        #expect(try TimeText.instant("2026-12-31T23:59:59Z") == Date(timeIntervalSince1970: 1_798_761_599))
        #expect(try TimeText.instant("2026-12-31T23:59:59+01:00") == Date(timeIntervalSince1970: 1_798_757_999))
        #expect(try TimeText.instant("2026-12-31T23:59:59.500Z").timeIntervalSince1970 == 1_798_761_599.5)
        #expect(TimeText.format(Date(timeIntervalSince1970: 1_798_761_599)) == "2026-12-31T23:59:59Z")
    }

    @Test("malformed dates", arguments: ["", "tomorrow", "2026-13-01", "2026-02-30", "31/12/2026", "2026-12-31T25:00:00Z", "2026-12-31 10:00"])
    func badDates(_ text: String) {
        #expect(throws: DomainError.self) { try TimeText.instant(text) }
    }

    @Test("names are trimmed and bounded")
    func names() throws {
        #expect(try validatedName("  Euronews ", kind: "title") == "Euronews")
        #expect(throws: DomainError.self) { try validatedName("  ", kind: "title") }
        #expect(throws: DomainError.self) { try validatedName("a\u{0007}b", kind: "title") }
        #expect(throws: DomainError.self) { try validatedName(String(repeating: "n", count: 201), kind: "title") }
    }

    @Test("device ids and article ids")
    func meterIds() throws {
        #expect(try MeterSubject.device(validating: "dev-123").key == "device:dev-123")
        #expect(throws: DomainError.self) { try MeterSubject.device(validating: "has space") }
        #expect(throws: DomainError.self) { try MeterSubject.device(validating: String(repeating: "d", count: 129)) }
        #expect(try ArticleRead.validateArticleID(" zelenskyy-talks ") == "zelenskyy-talks")
        #expect(throws: DomainError.self) { try ArticleRead.validateArticleID("") }
        #expect(throws: DomainError.self) { try ArticleRead.validateArticleID("a\nb") }
    }
}

@Suite("Entitlement states over time")
struct EntitlementStateTests {
    let start = Date(timeIntervalSince1970: 1_767_225_600)

    func membership(_ status: MembershipStatus, grace: Date? = nil) -> Membership {
        Membership(id: 1, accountID: AccountID(rawValue: "a"), planID: PlanID(rawValue: "p"), status: status,
                   currentPeriodEnd: start.addingTimeInterval(30 * 86_400), gracePeriodEnd: grace,
                   cancelAtPeriodEnd: false, source: .admin, createdAt: start, updatedAt: start)
    }

    @Test("active and canceled last until the period ends; past due until the grace ends")
    func access() {
        let before = start.addingTimeInterval(29 * 86_400)
        let after = start.addingTimeInterval(31 * 86_400)
        #expect(membership(.active).grantsAccess(at: before))
        #expect(!membership(.active).grantsAccess(at: after))
        #expect(membership(.active).effectiveStatus(at: after) == .expired)
        #expect(membership(.canceled).grantsAccess(at: before))
        #expect(membership(.canceled).effectiveStatus(at: before) == .canceled)
        #expect(!membership(.canceled).grantsAccess(at: after))
        let grace = start.addingTimeInterval(35 * 86_400)
        #expect(membership(.pastDue, grace: grace).grantsAccess(at: after))
        #expect(!membership(.pastDue, grace: grace).grantsAccess(at: grace))
        #expect(!membership(.expired).grantsAccess(at: before))
    }

    @Test("a trial expires at its end")
    func trial() {
        let trial = Trial(id: 1, accountID: nil, personKey: "p", startedAt: start, endsAt: start.addingTimeInterval(100), storedStatus: .active)
        #expect(trial.status(at: start.addingTimeInterval(99)) == .active)
        #expect(trial.status(at: start.addingTimeInterval(100)) == .expired)
        var canceled = trial
        canceled.storedStatus = .canceled
        #expect(canceled.status(at: start) == .canceled)
    }

    @Test("the manual clock moves only when told")
    func clock() {
        let clock = ManualClock(start)
        #expect(clock.now() == start)
        clock.advance(by: 60)
        #expect(clock.now() == start.addingTimeInterval(60))
    }
}
