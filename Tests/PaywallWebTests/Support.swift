import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallWeb
import Testing

/// A service over a fresh database with the demo catalog (`--demo`'s titles, plans and
/// readers) and the shipped policy.
func demoFixture() throws -> ServiceFixture {
    let f = try ServiceFixture()
    _ = try f.service.loadDemoData(actor: f.admin)
    return f
}

/// The API's router with the web pages mounted, as `paywall serve` builds it.
func withSite<T: Sendable>(
    _ f: ServiceFixture, articles: ArticleLibrary? = nil, settings: WebSettings = WebSettings(),
    _ body: @Sendable (any TestClientProtocol) async throws -> T
) async throws -> T {
    var api = PaywallAPI(service: f.service)
    api.web = try WebSite(service: f.service, articles: articles ?? ArticleLibrary.demo(), settings: settings)
    return try await Application(router: api.router()).test(.router, body)
}

/// A browser in miniature: keeps the cookies the site sets and sends them back, and fills
/// in each form's CSRF field from the last page it read.
actor Browser {
    let client: any TestClientProtocol
    private(set) var cookies: [String: String] = [:]
    private(set) var lastCSRF: String?

    init(_ client: any TestClientProtocol) { self.client = client }

    /// GETs a page as a browser following this site's own link (`Sec-Fetch-Site:
    /// same-origin`, as every current browser sends) unless `headers` says otherwise.
    func get(_ path: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var fields = cookieHeader()
        if headers[Self.fetchSite] == nil { fields[Self.fetchSite] = "same-origin" }
        for field in headers { fields.append(field) }
        let response = try await client.execute(uri: path, method: .get, headers: fields)
        absorb(response)
        return response
    }

    /// POSTs a form; `csrf` defaults to the token of the last page read.
    func post(_ path: String, _ fields: [(String, String)], csrf: String?? = .none, headers: HTTPFields = [:]) async throws -> TestResponse {
        var all = fields
        switch csrf {
        case .none: if let lastCSRF { all.insert(("csrf", lastCSRF), at: 0) }
        case let .some(value?): all.insert(("csrf", value), at: 0)
        case .some(nil): break
        }
        var fieldsHeader = cookieHeader()
        fieldsHeader[.contentType] = "application/x-www-form-urlencoded"
        for field in headers { fieldsHeader.append(field) }
        let body = all.map { "\(formEncode($0.0))=\(formEncode($0.1))" }.joined(separator: "&")
        let response = try await client.execute(uri: path, method: .post, headers: fieldsHeader, body: ByteBuffer(string: body))
        absorb(response)
        return response
    }

    func setCookie(_ name: String, _ value: String?) { cookies[name] = value }

    static let fetchSite = HTTPField.Name("Sec-Fetch-Site")!

    private func cookieHeader() -> HTTPFields {
        var fields = HTTPFields()
        if !cookies.isEmpty { fields[.cookie] = cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        return fields
    }

    private func absorb(_ response: TestResponse) {
        for header in response.headers[values: .setCookie] {
            let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            let name = String(pair[0]), value = String(pair[1])
            if header.contains("Max-Age=0") || value.isEmpty { cookies[name] = nil } else { cookies[name] = value }
        }
        if let token = csrfToken(in: response.text) { lastCSRF = token }
    }
}

func formEncode(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._*")
    return (text.addingPercentEncoding(withAllowedCharacters: allowed) ?? "").replacingOccurrences(of: "%20", with: "+")
}

func csrfToken(in html: String) -> String? {
    guard let range = html.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression) else { return nil }
    let match = html[range]
    return match.split(separator: "\"").dropFirst(3).first.map(String.init)
}

extension TestResponse {
    var text: String { String(buffer: body) }
}

/// The forms a paragraph can take in a response: as written, HTML-escaped (as the templates
/// escape it), and JSON-escaped.
func forms(of paragraph: String) -> [String] {
    let html = paragraph.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    let json = paragraph.replacingOccurrences(of: "\"", with: "\\\"")
    return Array(Set([paragraph, html, json]))
}

/// Whether `body` contains `paragraph` in any of its forms, or a distinctive 40-character
/// piece of it (a paragraph cut short still leaks).
func contains(_ body: String, paragraph: String) -> Bool {
    if forms(of: paragraph).contains(where: { body.contains($0) }) { return true }
    let characters = Array(paragraph)
    guard characters.count > 60 else { return false }
    let middle = String(characters[(characters.count / 2 - 20)..<(characters.count / 2 + 20)])
    return forms(of: middle).contains(where: { body.contains($0) })
}

/// Every site-local link (`href="/…"`) in a page.
func links(in html: String) -> [String] {
    var found: [String] = []
    var rest = html[...]
    while let range = rest.range(of: #"href="/[^"]*""#, options: .regularExpression) {
        let link = rest[range].dropFirst(6).dropLast()
        found.append(String(link).replacingOccurrences(of: "&amp;", with: "&"))
        rest = rest[range.upperBound...]
    }
    return found
}

let seedPath = "/titles/euronews/articles/zelenskyy-talks"
