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

            // Every URL the site links, from the front page, the feed and the sitemap, plus
            // what it serves unlinked (error pages, the API's JSON).
            var queue = ["/", "/feed.xml", "/sitemap.xml", "/openapi.json", "/titles/euronews/articles/nope", "/nope", "/account"]
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
