import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PaywallCore
import PaywallPolicy
import PaywallService
import PaywallTokens
import PaywallWeb

/// A JSON request body read strictly: `application/json` only (415), at most `limit` bytes
/// (413), valid JSON without duplicate member names, no field the API does not know
/// (400 `unknown_field`), every field of its type (400 `invalid_field`).
struct RequestBody {
    /// The largest body any route takes (a preview of 100 articles fits easily).
    static let limit = 64 * 1024

    /// The body, at most `limit` bytes, within the connection's deadline
    /// (``BodyReading``): 408 `request_timeout` past it.
    static func collect(_ request: inout Request) async throws -> ByteBuffer {
        do {
            return try await BodyReading.collect(&request, upTo: limit)
        } catch let late as BodyReading.Late {
            throw APIError.bodyTimeout(late.deadline)
        }
    }

    static func object(_ request: inout Request) async throws -> Fields {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type == "application/json" || type.hasPrefix("application/json;") else { throw APIError.unsupportedMediaType }
        try refuseEncoded(request)
        let buffer: ByteBuffer
        do {
            buffer = try await collect(&request)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit)
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(buffer.readableBytesView, maxDepth: 8)
        } catch {
            // The parser's offset only, never the input's text.
            throw APIError.badJSON("the body is not valid JSON (at byte \(error.offset))")
        }
        guard case let .object(object) = value else { throw APIError.badJSON("the body must be a JSON object") }
        return Fields(object: object, path: "")
    }

    /// The body's bytes as sent, whatever the content type (webhooks whose signature covers
    /// the exact bytes); at most `limit` (413).
    static func bytes(_ request: inout Request) async throws -> [UInt8] {
        try refuseEncoded(request)
        do {
            return Array(try await collect(&request).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit)
        }
    }

    /// A compressed body (`Content-Encoding: gzip`…) is refused (415): it would be read as
    /// the JSON it is not, and a small one can inflate past any limit.
    static func refuseEncoded(_ request: Request) throws {
        guard let encoding = request.headers[.contentEncoding] else { return }
        if encoding.trimmingCharacters(in: .whitespaces).lowercased() != "identity" { throw APIError.encodedBody }
    }

    /// The body's object, or nil for an empty body (whatever the headers say): for routes
    /// whose body is optional.
    static func optionalObject(_ request: inout Request) async throws -> Fields? {
        let buffer: ByteBuffer
        do {
            buffer = try await collect(&request)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit)
        }
        guard buffer.readableBytes > 0 else { return nil }
        return try await object(&request)
    }

    /// The members of one JSON object, read by name and type.
    struct Fields {
        let object: JSONObject
        let path: String

        func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

        /// Refuses members not in `allowed`.
        func only(_ allowed: Set<String>) throws -> Fields {
            if let unknown = object.keys.first(where: { !allowed.contains($0) }) {
                throw APIError(status: .badRequest, code: "unknown_field", message: "unknown field '\(name(String(unknown.prefix(64))))'")
            }
            return self
        }

        func invalid(_ key: String, _ expected: String) -> APIError {
            APIError(status: .badRequest, code: "invalid_field", message: "'\(name(key))' must be \(expected)")
        }

        func missing(_ key: String) -> APIError {
            APIError(status: .badRequest, code: "missing_field", message: "'\(name(key))' is required")
        }

        func string(_ key: String) throws -> String? {
            guard let value = object[key], value != .null else { return nil }
            guard let text = value.stringValue else { throw invalid(key, "a string") }
            return text
        }

        func requiredString(_ key: String) throws -> String {
            guard let text = try string(key) else { throw missing(key) }
            return text
        }

        func bool(_ key: String) throws -> Bool? {
            guard let value = object[key], value != .null else { return nil }
            guard let flag = value.boolValue else { throw invalid(key, "true or false") }
            return flag
        }

        func integer(_ key: String) throws -> Int? {
            guard let value = object[key], value != .null else { return nil }
            guard let number = value.numberValue, number.rounded() == number, abs(number) < 1e9 else { throw invalid(key, "a whole number") }
            return Int(number)
        }

        func strings(_ key: String, max: Int) throws -> [String]? {
            guard let value = object[key], value != .null else { return nil }
            guard let list = value.arrayValue, list.count <= max else { throw invalid(key, "a list of at most \(max) strings") }
            return try list.map { item in
                guard let text = item.stringValue else { throw invalid(key, "a list of strings") }
                return text
            }
        }

        func time(_ key: String) throws -> Date? {
            guard let text = try string(key) else { return nil }
            do { return try TimeText.instant(text) } catch { throw invalid(key, "an ISO 8601 instant such as 2026-06-01T10:00:00Z") }
        }

        func fields(_ key: String) throws -> Fields? {
            guard let value = object[key], value != .null else { return nil }
            guard let inner = value.objectValue else { throw invalid(key, "an object") }
            return Fields(object: inner, path: name(key))
        }

        func list(_ key: String) throws -> [JSONValue]? {
            guard let value = object[key], value != .null else { return nil }
            guard let items = value.arrayValue else { throw invalid(key, "a list") }
            return items
        }
    }
}

extension AccessRequest {
    static let channels: Set<String> = ["web", "app", "rss", "email", "api"]
    /// The fields a check may name (made once: every check reads them).
    static let fields: Set<String> = ["title", "article", "channel", "country", "referrerHost", "device"]
    /// A single check may also carry a gift link's or a comp grant's token (a preview's
    /// items may not: they consume and prove nothing).
    static let singleFields = fields.union(["gift", "comp"])
    static let articleFields: Set<String> = ["id", "free", "publishedAt", "section", "tags"]

    /// `{"title": "euronews", "article": {"id", "free", "publishedAt", "section", "tags"}, "channel": "web"}`,
    /// and `"gift"` (a gift link's token) and `"comp"` (a comp grant's) when `single`.
    init(_ fields: RequestBody.Fields, request facts: RequestFacts, single: Bool = false) throws {
        let body = try fields.only(single ? Self.singleFields : Self.fields)
        guard let articleFields = try body.fields("article") else { throw body.missing("article") }
        let article = try articleFields.only(Self.articleFields)
        var input = ArticleInput(id: try article.requiredString("id"))
        input.free = try article.bool("free") ?? false
        input.publishedAt = try article.time("publishedAt")
        input.section = try article.string("section") ?? ""
        input.tags = Set(try article.strings("tags", max: 32) ?? [])
        var request = facts
        if let channel = try body.string("channel") {
            guard Self.channels.contains(channel) else { throw body.invalid("channel", "one of web, app, rss, email, api") }
            request.channel = channel
        }
        // The caller's word, as the channel: what its edge knows of the reader's request.
        if let country = try body.string("country") {
            guard country.utf8.count == 2, country.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0 & 0xDF) }) else {
                throw body.invalid("country", "an ISO 3166-1 alpha-2 code, e.g. \"FR\"")
            }
            request.country = country.uppercased()
        }
        if let host = try body.string("referrerHost") {
            guard let valid = RequestFacts.hostName(host) else { throw body.invalid("referrerHost", "a host name, e.g. \"news.example.com\"") }
            request.referrerHost = valid
        }
        if let device = try body.string("device") {
            guard (1...32).contains(device.utf8.count), device.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0 | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
                throw body.invalid("device", "a word of letters, digits and dashes, e.g. \"mobile\"")
            }
            request.device = device.lowercased()
        }
        self.init(title: try body.requiredString("title"), article: input, request: request, gift: single ? try body.string("gift") : nil,
                  comp: single ? try body.string("comp") : nil)
    }
}
