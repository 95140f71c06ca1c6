import Foundation
import PaywallTokens

/// Reads of provider JSON by name and type. A field of the wrong type is an error (the
/// provider would never send it); an absent or null one is nil.
struct JSONFields {
    let object: JSONObject
    let path: String

    init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func invalid(_ key: String, _ expected: String) -> BillingError {
        .malformedEvent("'\(name(key))' must be \(expected)")
    }

    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    func string(_ key: String) throws(BillingError) -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value.stringValue else { throw invalid(key, "a string") }
        return text
    }

    func requiredString(_ key: String) throws(BillingError) -> String {
        guard let text = try string(key), !text.isEmpty else { throw BillingError.malformedEvent("'\(name(key))' is required") }
        return text
    }

    func bool(_ key: String) throws(BillingError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let flag = value.boolValue else { throw invalid(key, "true or false") }
        return flag
    }

    /// A whole number (Stripe's Unix seconds, Apple's milliseconds, enumerations).
    func integer(_ key: String) throws(BillingError) -> Int64? {
        guard let value = value(key) else { return nil }
        guard let number = value.numberValue, number.rounded() == number, abs(number) < 9e15 else { throw invalid(key, "a whole number") }
        return Int64(number)
    }

    /// Unix seconds (Stripe).
    func seconds(_ key: String) throws(BillingError) -> Date? {
        try integer(key).map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    /// Unix milliseconds (Apple).
    func millis(_ key: String) throws(BillingError) -> Date? {
        try integer(key).map { Date(timeIntervalSince1970: TimeInterval($0) / 1000) }
    }

    func fields(_ key: String) throws(BillingError) -> JSONFields? {
        guard let value = value(key) else { return nil }
        guard let inner = value.objectValue else { throw invalid(key, "an object") }
        return JSONFields(inner, path: name(key))
    }

    func list(_ key: String) throws(BillingError) -> [JSONFields] {
        guard let value = value(key) else { return [] }
        guard let items = value.arrayValue else { throw invalid(key, "a list") }
        var result: [JSONFields] = []
        for (index, item) in items.enumerated() {
            guard let inner = item.objectValue else { throw invalid("\(key)[\(index)]", "an object") }
            result.append(JSONFields(inner, path: name("\(key)[\(index)]")))
        }
        return result
    }

    /// An id given either as a string or as an expanded object with an `id` (Stripe's
    /// expandable fields: `customer`, `subscription`, `price`).
    func id(_ key: String) throws(BillingError) -> String? {
        guard let value = value(key) else { return nil }
        if let text = value.stringValue { return text }
        if let inner = value.objectValue { return try JSONFields(inner, path: name(key)).string("id") }
        throw invalid(key, "an id or an object with an id")
    }

    static func parse(_ bytes: [UInt8]) throws(BillingError) -> JSONFields {
        let value: JSONValue
        do {
            // Stripe's objects nest deeper than our API's bodies.
            value = try JSONValue.parse(bytes, maxDepth: 64)
        } catch {
            throw .malformedEvent("not valid JSON (at byte \(error.offset))")
        }
        guard let object = value.objectValue else { throw .malformedEvent("not a JSON object") }
        return JSONFields(object)
    }
}
