import Foundation
import PaywallService

/// One article as the publisher's content system holds it: the text the pages render once
/// the service has decided how much of it the reader may see.
public struct Article: Sendable, Decodable {
    public var title: String
    public var id: String
    public var headline: String
    public var byline: String
    public var section: String?
    public var published: Date?
    /// Marked free by the publisher (the policy's `article.free`).
    public var free: Bool?
    public var tags: [String]?
    /// A line written for sharing (meta description, Open Graph, JSON-LD): never a
    /// paragraph of the body, so it cannot carry gated text.
    public var summary: String?
    public var paragraphs: [String]

    public init(title: String, id: String, headline: String, byline: String, paragraphs: [String], free: Bool = false) {
        self.title = title
        self.id = id
        self.headline = headline
        self.byline = byline
        self.paragraphs = paragraphs
        self.free = free
    }

    /// What the service decides on: the id and the publisher's flags, never the text.
    var input: ArticleInput {
        var input = ArticleInput(id: id)
        input.free = free ?? false
        input.publishedAt = published
        input.section = section ?? ""
        input.tags = Set(tags ?? [])
        return input
    }
}

/// The articles the pages can show, in the order they are listed.
///
/// The texts are the publisher's (in production, its CMS), not the entitlement service's:
/// the service decides on ids and flags and never holds a body, so the demo texts live here,
/// in the web adapter that stands in for the content server, not in `PaywallService`.
public struct ArticleLibrary: Sendable {
    public let articles: [Article]
    private let index: [String: Int]

    public init(_ articles: [Article]) {
        self.articles = articles
        var index: [String: Int] = [:]
        for (position, article) in articles.enumerated() where index[Self.key(article.title, article.id)] == nil {
            index[Self.key(article.title, article.id)] = position
        }
        self.index = index
    }

    /// No articles: a server without `--demo` shows the catalog and invents no content.
    public static let empty = ArticleLibrary([])

    /// The demo articles kept as data in this module (`Content/demo-articles.json`): the
    /// seed's Euronews article with all its paragraphs and a few per demo title.
    public static func demo() throws -> ArticleLibrary {
        guard let url = Bundle.module.url(forResource: "demo-articles", withExtension: "json", subdirectory: "Content") else {
            throw WebSetupError.missingResource("Content/demo-articles.json")
        }
        struct File: Decodable { var articles: [Article] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let file = try decoder.decode(File.self, from: Data(contentsOf: url))
        return ArticleLibrary(file.articles)
    }

    public func article(title: String, id: String) -> Article? {
        index[Self.key(title, id)].map { articles[$0] }
    }

    public func articles(of title: String) -> [Article] {
        articles.filter { $0.title == title }
    }

    private static func key(_ title: String, _ id: String) -> String { title + "\u{0}" + id }
}

/// The web module cannot start: a resource is missing from the build, or a template does
/// not parse.
public enum WebSetupError: Error, CustomStringConvertible {
    case missingResource(String)
    case template(String, String)

    public var description: String {
        switch self {
        case let .missingResource(name): "the web pages' resource \(name) is missing from the build"
        case let .template(name, reason): "the web template \(name) does not parse: \(reason)"
        }
    }
}
