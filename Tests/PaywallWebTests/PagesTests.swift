import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallWeb
import Testing

@Suite("The reader's pages")
struct PagesTests {
    let library: ArticleLibrary
    init() throws { library = try ArticleLibrary.demo() }

    var seed: Article {
        get throws { try #require(library.article(title: "euronews", id: "zelenskyy-talks")) }
    }

    @Test("the demo articles: the seed's Euronews article with all its paragraphs, several per title, some free")
    func demoArticles() throws {
        let seedText = try String(contentsOf: repositoryRoot.appendingPathComponent("../shared/seed/000_012fc0a4c0d34ea8.txt"), encoding: .utf8)
        let seed = try seed
        #expect(seed.paragraphs.count == 12)
        for paragraph in seed.paragraphs { #expect(seedText.contains(paragraph), "\(paragraph)") }
        let f = try demoFixture()
        for title in try f.service.titles() {
            let articles = library.articles(of: title.id.rawValue)
            #expect(articles.count >= 2, "\(title.id)")
            for article in articles { #expect(article.paragraphs.count >= 5, "\(article.id)") }
        }
        #expect(library.articles.filter { $0.free == true }.count >= 2)
    }

    @Test("the front page lists every title and article with a badge from the preview, and the pages' headers")
    func home() async throws {
        let f = try demoFixture()
        let library = library
        try await withSite(f) { client in
            let response = try await client.execute(uri: "/", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/html; charset=utf-8")
            #expect(response.headers[.cacheControl] == "private, no-store")
            let csp = try #require(response.headers[.contentSecurityPolicy])
            for directive in ["default-src 'none'", "style-src 'self'", "img-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"] {
                #expect(csp.contains(directive))
            }
            #expect(response.headers[.xContentTypeOptions] == "nosniff")
            #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin")
            let html = response.text
            for article in library.articles { #expect(html.contains("/titles/\(article.title)/articles/\(article.id)")) }
            #expect(html.contains(#"<span class="badge free">Free</span>"#))
            #expect(html.contains("Subscribers"))
            #expect(!html.contains("<script src"))
            #expect(!html.contains("http://") || !html.contains("<link rel=\"stylesheet\" href=\"http"))
        }
    }

    @Test("a browser asking for a page nobody has gets the site's 404 page; API clients and API paths the JSON error")
    func notFoundPages() async throws {
        let f = try demoFixture()
        let html: HTTPFields = [.accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"]
        let (page, json, api, post) = try await withSite(f) { client in
            (try await client.execute(uri: "/titles/euronews", method: .get, headers: html),
             try await client.execute(uri: "/titles/euronews", method: .get),
             try await client.execute(uri: "/v1/nothing", method: .get, headers: html),
             try await client.execute(uri: "/nothing", method: .post, headers: html))
        }
        #expect(page.status == .notFound)
        #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
        #expect(String(buffer: page.body).contains("We could not find that page"))
        #expect(page.headers[.cacheControl] == "private, no-store")
        for response in [json, api, post] {
            #expect(response.status == .notFound && response.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    @Test("without --demo: the catalog, no articles, nothing invented")
    func homeWithoutArticles() async throws {
        let f = try demoFixture()
        try await withSite(f, articles: .empty) { client in
            let html = try await client.execute(uri: "/", method: .get).text
            #expect(html.contains("Euronews"))
            #expect(html.contains("No articles yet"))
            #expect(!html.contains("/articles/"))
            let article = try await client.execute(uri: seedPath, method: .get)
            #expect(article.status == .notFound)
        }
    }

    @Test("the seed article, anonymous: its teaser, the offers in the policy's order, JSON-LD naming the gated block; the rest never sent")
    func seedAnonymous() async throws {
        let f = try demoFixture()
        let seed = try seed
        try await withSite(f) { client in
            let response = try await client.execute(uri: seedPath, method: .get)
            #expect(response.status == .ok)
            let html = response.text
            #expect(html.contains(seed.headline))
            #expect(html.contains("David O&#39;Sullivan"))
            for paragraph in seed.paragraphs[0..<2] { #expect(contains(html, paragraph: paragraph)) }
            for paragraph in seed.paragraphs[2...] { #expect(!contains(html, paragraph: paragraph), "leaked: \(paragraph)") }
            let signUp = try #require(html.range(of: "Sign up to read this article"))
            let signIn = try #require(html.range(of: "Already a member? <a href=\"/signin?next=\(seedPath)\">Sign in here</a>"))
            let trial = try #require(html.range(of: "Fourteen days free"))
            #expect(signUp.lowerBound < signIn.lowerBound && signIn.lowerBound < trial.lowerBound)
            #expect(html.contains("Start your 14-day free trial"))
            #expect(html.contains(#"<div class="paywalled">"#))
            #expect(html.contains(#""@type":"NewsArticle""#))
            #expect(html.contains(#""isAccessibleForFree":false"#))
            #expect(html.contains(#""cssSelector":".paywalled""#))
            #expect(html.contains(#"<meta name="description" content="Ukraine&#39;s president calls"#))
        }
    }

    @Test("a publisher-marked free article: all of it, no paywall box, isAccessibleForFree and no gated part")
    func freeArticle() async throws {
        let f = try demoFixture()
        let article = try #require(library.article(title: "euronews", id: "heatwave-advice"))
        try await withSite(f) { client in
            let html = try await client.execute(uri: "/titles/euronews/articles/heatwave-advice", method: .get).text
            for paragraph in article.paragraphs { #expect(contains(html, paragraph: paragraph)) }
            #expect(!html.contains("class=\"paywall\""))
            #expect(!html.contains("paywalled"))
            #expect(html.contains(#""isAccessibleForFree":true"#))
            #expect(!html.contains("hasPart"))
        }
    }

    @Test("access none (Le Monde opinion for a non-member): the headline alone, not even a summary")
    func headlineOnly() async throws {
        let f = try demoFixture()
        let article = try #require(library.article(title: "le-monde", id: "tribune-four-day-week"))
        try await withSite(f) { client in
            let html = try await client.execute(uri: "/titles/le-monde/articles/tribune-four-day-week", method: .get).text
            #expect(html.contains(article.headline))
            for paragraph in article.paragraphs { #expect(!contains(html, paragraph: paragraph)) }
            #expect(!html.contains("name=\"description\""))
            if let summary = article.summary { #expect(!html.contains(summary)) }
            #expect(html.contains("class=\"paywall\""))
        }
    }

    @Test("a member reads the whole article: no box, the part past the teaser in the block JSON-LD names")
    func member() async throws {
        let f = try demoFixture()
        let seed = try seed
        try await withSite(f) { client in
            let browser = Browser(client)
            _ = try await browser.get("/signin")
            let signedIn = try await browser.post("/signin", [("email", "member@example.com"), ("password", "demo member passphrase")])
            #expect(signedIn.status == .seeOther)
            let html = try await browser.get(seedPath).text
            for paragraph in seed.paragraphs { #expect(contains(html, paragraph: paragraph)) }
            #expect(!html.contains("class=\"paywall\""))
            let gated = try #require(html.range(of: #"<div class="paywalled">"#))
            let third = try #require(html.range(of: String(seed.paragraphs[2].prefix(30))))
            #expect(gated.lowerBound < third.lowerBound)
            #expect(html.contains(#""cssSelector":".paywalled""#))
        }
    }

    @Test("a retired title: gone from the home page, the feed and the sitemap; its articles a 404 page with no text")
    func retiredTitle() async throws {
        let f = try demoFixture()
        let seed = try seed
        _ = try f.service.retireTitle(id: "euronews", actor: f.admin)
        try await withSite(f) { client in
            for path in ["/", "/feed.xml", "/sitemap.xml"] {
                let page = try await client.execute(uri: path, method: .get).text
                #expect(!page.contains("/titles/euronews/"), "\(path) still links the retired title")
                #expect(page.contains("/titles/le-monde/"), "\(path) lists the others")
            }
            let article = try await client.execute(uri: "/titles/euronews/articles/zelenskyy-talks", method: .get)
            #expect(article.status == .notFound)
            for paragraph in seed.paragraphs { #expect(!contains(article.text, paragraph: paragraph)) }
        }
    }

    @Test("unknown titles and articles: a 404 page with no article text", arguments: [
        "/titles/euronews/articles/no-such-article", "/titles/no-such-title/articles/zelenskyy-talks",
        "/titles/le-monde/articles/zelenskyy-talks", "/titles/EURONEWS/articles/zelenskyy-talks",
        "/titles/euronews/articles/%3Cscript%3E",
    ])
    func notFound(path: String) async throws {
        let f = try demoFixture()
        let seed = try seed
        try await withSite(f) { client in
            let response = try await client.execute(uri: path, method: .get)
            #expect(response.status == .notFound)
            #expect(response.headers[.contentType] == "text/html; charset=utf-8")
            #expect(response.headers[.contentSecurityPolicy] != nil)
            let html = response.text
            #expect(html.contains("Page not found"))
            for paragraph in seed.paragraphs { #expect(!contains(html, paragraph: paragraph)) }
            #expect(!html.contains("<script>"))
        }
    }

    @Test("the stylesheet, favicon, feed and sitemap: served by the app; feed and sitemap carry titles and links only")
    func assetsFeedSitemap() async throws {
        let f = try demoFixture()
        let library = library
        try await withSite(f) { client in
            let css = try await client.execute(uri: "/static/site.css", method: .get)
            #expect(css.status == .ok)
            #expect(css.headers[.contentType] == "text/css; charset=utf-8")
            #expect(!css.text.contains("@import") && !css.text.contains("url("))
            #expect(try await client.execute(uri: "/static/favicon.svg", method: .get).status == .ok)
            let feed = try await client.execute(uri: "/feed.xml", method: .get)
            #expect(feed.headers[.contentType] == "application/atom+xml; charset=utf-8")
            let sitemap = try await client.execute(uri: "/sitemap.xml", method: .get)
            // Shared caches may keep them: no cookie, even for a visitor who has none yet
            // or whose session cookie is stale.
            let stale = try await client.execute(uri: "/feed.xml", method: .get, headers: [.cookie: "paywall_session=c3RhbGUtc2Vzc2lvbi10b2tlbg"])
            for response in [feed, sitemap, stale] {
                // Links from the request's Host (no PAYWALL_LINK_BASE): no shared cache.
                #expect(response.headers[.cacheControl] == "private, max-age=300")
                #expect(response.headers[values: .setCookie].isEmpty, "\(response.headers[values: .setCookie])")
            }
            for article in library.articles {
                #expect(feed.text.contains("/titles/\(article.title)/articles/\(article.id)"))
                #expect(sitemap.text.contains("/titles/\(article.title)/articles/\(article.id)"))
                for paragraph in article.paragraphs {
                    #expect(!contains(feed.text, paragraph: paragraph))
                    #expect(!contains(sitemap.text, paragraph: paragraph))
                }
            }
        }
    }

    @Test("feed and sitemap links: the configured public address; else the host the request was sent to, never a malformed one")
    func linkBase() async throws {
        // A live server and a client that sends the Host we choose (the router test
        // framework always says localhost).
        func fetch(_ f: ServiceFixture, _ path: String, hosts: [String]) async throws -> [String] {
            var api = PaywallAPI(service: f.service)
            api.web = try WebSite(service: f.service, articles: ArticleLibrary.demo(), settings: WebSettings())
            return try await Application(router: api.router()).test(.live) { client in
                let port = try #require(client.port)
                return try await TestClient.withClient(host: "127.0.0.1", port: port) { raw in
                    var bodies: [String] = []
                    for host in hosts {
                        let response = try await raw.execute(.init(path, method: .get, authority: host))
                        #expect(response.status == .ok, "\(host)")
                        bodies.append(response.body.map { String(buffer: $0) } ?? "")
                    }
                    return bodies
                }
            }
        }
        let article = "/titles/euronews/articles/zelenskyy-talks"
        // Configured (PAYWALL_LINK_BASE): whatever Host a proxy or client sends.
        let configured = try ServiceFixture { $0.linkBase = "https://news.example.com" }
        _ = try configured.service.loadDemoData(actor: configured.admin)
        for path in ["/feed.xml", "/sitemap.xml"] {
            let body = try #require(try await fetch(configured, path, hosts: ["upstream.internal:8080"]).first)
            #expect(try await Application(router: { var api = PaywallAPI(service: configured.service); api.web = try WebSite(service: configured.service, articles: ArticleLibrary.demo(), settings: WebSettings()); return api.router() }()).test(.router) { client in
                try await client.execute(uri: path, method: .get).headers[.cacheControl]
            } == "public, max-age=300", "shared caches may keep links to the configured address")
            #expect(body.contains("https://news.example.com" + article), "\(path)")
            #expect(!body.contains("upstream.internal"), "\(path)")
        }
        // Not configured: the host the request was sent to, when it is one; else localhost.
        let f = try demoFixture()
        let bad = ["evil.example/x", "x@evil.example", "evil.example\\x", String(repeating: "a", count: 300)]
        let bodies = try await fetch(f, "/sitemap.xml", hosts: ["news.example.org:8443", "[::1]:8080"] + bad)
        #expect(bodies.count == 2 + bad.count)
        #expect(bodies.first?.contains("http://news.example.org:8443" + article) == true)
        #expect(bodies.dropFirst().first?.contains("http://[::1]:8080" + article) == true)
        for (host, body) in zip(bad, bodies.dropFirst(2)) {
            #expect(body.contains("http://localhost" + article), "\(host)")
            #expect(!body.contains("evil.example") && !body.contains("aaaa/"), "\(host)")
        }
    }
}
