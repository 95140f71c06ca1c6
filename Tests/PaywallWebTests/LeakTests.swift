import Foundation
import HTTPTypes
import HummingbirdTesting
import PaywallCore
import PaywallPolicy
import PaywallService
import PaywallTestSupport
import PaywallWeb
import Testing

/// Text a reader is not entitled to never reaches them: every URL the site links or serves
/// (pages, feed, sitemap, JSON, stylesheet, error pages) is fetched as the reader, and no
/// paragraph past what the service allows that reader, of any article, appears anywhere.
@Suite("No gated text leaves the server")
struct LeakTests {
    enum Who: String, CaseIterable, Sendable {
        case anonymous
        /// Signed in, no membership or trial, the month's free articles spent.
        case meterSpent
    }

    @Test("crawl every linked URL and look for gated paragraphs", arguments: Who.allCases)
    func crawl(who: Who) async throws {
        let f = try demoFixture()
        let library = try ArticleLibrary.demo()
        try await withSite(f) { client in
            let browser = Browser(client)
            var reader = AccessReader.anonymous
            if who == .meterSpent {
                _ = try await browser.get("/signin")
                #expect(try await browser.post("/signin", [("email", "reader@example.com"), ("password", "demo reader passphrase")]).status == .seeOther)
                reader = .account(try f.service.account("reader@example.com").id)
                // Spend the meter on the first three gated articles.
                var spent = 0
                for article in library.articles where article.free != true && spent < 3 {
                    let html = try await browser.get("/titles/\(article.title)/articles/\(article.id)").text
                    if contains(html, paragraph: article.paragraphs[article.paragraphs.count - 1]) { spent += 1 }
                }
                #expect(spent == 3)
            }

            // What the service allows this reader now (nothing consumed): the oracle.
            let requests = library.articles.map { AccessRequest(title: $0.title, article: articleInput($0)) }
            let decisions = try f.service.previewAccess(requests, reader: reader)
            var forbidden: [(Article, String)] = []
            for (article, decision) in zip(library.articles, decisions) {
                let allowed = switch decision.access {
                case .full: article.paragraphs.count
                case .teaser: min(decision.teaserParagraphs, article.paragraphs.count)
                case .none: 0
                }
                forbidden += article.paragraphs[allowed...].map { (article, $0) }
            }
            #expect(forbidden.count > 30, "the demo should gate most of its text")

            // A member's gift link for one gated article: it opens that article (checked
            // apart below) and nothing else; on every other article's URL it is refused.
            let member = AccessReader.account(try f.service.account("member@example.com").id)
            let giftedArticle = try #require(library.articles.first { $0.free != true && $0.section != "opinion" })
            let gift = try f.service.createGift(reader: member, title: giftedArticle.title, article: giftedArticle.id).token
            let giftedPath = "/titles/\(giftedArticle.title)/articles/\(giftedArticle.id)"
            let giftURLs = library.articles.filter { $0.id != giftedArticle.id || $0.title != giftedArticle.title }
                .map { "/titles/\($0.title)/articles/\($0.id)?gift=\(gift)" }

            // Every URL the site links, from the front page, the feed and the sitemap, plus
            // what it serves unlinked (error pages, the API's JSON, the pages mail links
            // open, the admin area without a token, a gift link on other articles).
            var queue = [
                "/", "/feed.xml", "/sitemap.xml", "/openapi.json", "/titles/euronews/articles/nope", "/nope", "/account",
                "/verify-email", "/reset-password", "/forgot-password", "/admin", "/admin/decisions", "/admin/reads", "/admin/policy",
                "/static/link-token.js", giftedPath + "?gift=" + String(gift.dropLast(4)) + "AAAA",
            ] + giftURLs
            var seen: Set<String> = []
            var bodies: [(String, String)] = []
            while let path = queue.popLast() {
                guard !seen.contains(path) else { continue }
                seen.insert(path)
                let response = try await browser.get(path)
                let headers = response.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
                let body = response.text
                bodies.append((path, headers + "\n\n" + body))
                for link in links(in: body) + sitemapPaths(in: body) where !seen.contains(link) {
                    queue.append(link)
                }
            }
            #expect(seen.count > library.articles.count + 5)
            for article in library.articles { #expect(seen.contains("/titles/\(article.title)/articles/\(article.id)")) }
            for (path, body) in bodies {
                for (article, paragraph) in forbidden {
                    #expect(!contains(body, paragraph: paragraph), "\(who): \(path) leaks \(article.title)/\(article.id): \(paragraph.prefix(50))")
                }
            }
            for url in giftURLs { #expect(seen.contains(url)) }

            // The gifted article itself: all of it, and not a word of any other's gated text.
            let gifted = try await browser.get(giftedPath + "?gift=" + gift)
            #expect(gifted.status == .ok)
            for paragraph in giftedArticle.paragraphs { #expect(contains(gifted.text, paragraph: paragraph), "\(who): the gift does not open its article") }
            for (article, paragraph) in forbidden where article.id != giftedArticle.id || article.title != giftedArticle.title {
                #expect(!contains(gifted.text, paragraph: paragraph), "\(who): the gifted page leaks \(article.title)/\(article.id)")
            }
        }
    }

    func articleInput(_ article: Article) -> ArticleInput {
        var input = ArticleInput(id: article.id)
        input.free = article.free ?? false
        input.section = article.section ?? ""
        input.tags = Set(article.tags ?? [])
        input.publishedAt = article.published
        return input
    }

    /// The site-local paths of a sitemap's or feed's absolute URLs.
    func sitemapPaths(in xml: String) -> [String] {
        var found: [String] = []
        var rest = xml[...]
        while let range = rest.range(of: #"(<loc>|href=")https?://[^/<"]+/[^<"]*"#, options: .regularExpression) {
            let url = String(rest[range]).replacingOccurrences(of: "<loc>", with: "").replacingOccurrences(of: "href=\"", with: "")
            if let components = URLComponents(string: url) { found.append(components.path) }
            rest = rest[range.upperBound...]
        }
        return found
    }
}
