import Foundation
import PaywallCore
import PaywallService
import PaywallTestSupport
import PaywallViews
import Testing

/// `AccessView.jsonBytes()` (written by hand for speed) against `JSONEncoder` (what every
/// other view uses): the same document for real answers and for hostile field values.
@Suite("The access answer's JSON")
struct AccessJSONTests {
    static func encoded(_ view: AccessView) throws -> Data {
        try ViewEncoding.encoder(pretty: false).encode(view)
    }

    static func parsed(_ bytes: some Sequence<UInt8>) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
    }

    /// Real answers: a member's full read with a grant, a metered read, an anonymous teaser
    /// with offers, a device's read: byte for byte what JSONEncoder writes.
    @Test("real answers: byte for byte what JSONEncoder writes")
    func realAnswers() async throws {
        let f = try seededFixture()
        let member = try f.service.account("member@example.com").id
        let reader = try f.service.account("reader@example.com").id
        let device = try f.service.accessReader(bearer: try f.service.issueDeviceToken(renewing: nil).token)
        var answers: [AccessAnswer] = []
        for (index, who) in [AccessReader.account(member), .account(reader), .anonymous, device].enumerated() {
            for title in ["euronews", "the-daily"] {
                var article = ArticleInput(id: "article-\(index)")
                article.free = index == 3
                answers.append(try await f.service.checkAccess(AccessRequest(title: title, article: article), reader: who))
            }
        }
        #expect(answers.contains { $0.articleGrant != nil } && answers.contains { $0.decision.meter != nil }
            && answers.contains { !$0.decision.offers.isEmpty }, "the answers cover grants, meters and offers")
        for answer in answers {
            let view = AccessView(answer)
            #expect(String(decoding: view.jsonBytes(), as: UTF8.self) == String(decoding: try Self.encoded(view), as: UTF8.self))
        }
    }

    /// Strings that need escaping, empty lists and dates on calendar edges: the same JSON
    /// value (escapes may be spelled differently, e.g. `\b` and `\u0008`).
    @Test("hostile strings and edge dates: the same JSON value", arguments: [
        "plain", "quote \" and backslash \\", "new\nline\ttab\r\u{8}\u{C}\u{1}\u{1F}", "ünïcödé — 日本 🧪", "/slash/", "",
    ])
    func hostile(text: String) async throws {
        let f = try seededFixture()
        let reader = try f.service.account("reader@example.com").id
        let answer = try await f.service.checkAccess(AccessRequest(title: "euronews", article: ArticleInput(id: "x")), reader: .account(reader))
        try #require(answer.decision.meter != nil, "a metered answer")
        let dates: [Double] = [0, 951_782_400 /* 2000-02-29 */, 4_107_542_399.75 /* 2100-02-28T23:59:59.75 */, 1_795_000_000.999, 253_402_300_799]
        for seconds in dates {
            var view = AccessView(answer)
            view.decidingRules = [text, "rule \(text)"]
            view.policyRevision = text
            view.articleGrant = text
            view.articleGrantExpiresAt = Date(timeIntervalSince1970: seconds)
            view.offers = [.init(.trial(days: 14)), .init(.signIn)]
            view.meter?.name = text
            view.meter?.used = -1
            view.meter?.limit = Int(Int32.max)
            view.meter?.resetsAt = Date(timeIntervalSince1970: seconds)
            view.jsonLd.hasPart?.cssSelector = text
            #expect(try Self.parsed(view.jsonBytes()) == Self.parsed(try Self.encoded(view)), "\(text.debugDescription) at \(seconds)")
            view.meter = nil
            view.offers = []
            view.decidingRules = []
            view.articleGrantExpiresAt = nil
            #expect(try Self.parsed(view.jsonBytes()) == Self.parsed(try Self.encoded(view)))
        }
    }
}
