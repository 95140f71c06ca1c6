import Foundation
import PaywallTokens

extension AccessView {
    /// The answer's JSON written straight into bytes: the same document `ViewEncoding`'s
    /// `JSONEncoder` makes (sorted keys, ISO 8601 dates, absent optionals left out; the
    /// tests compare the two over many decisions), without it. Every access check
    /// serializes one, and `JSONEncoder` was 7% of a member check (measured with `perf`,
    /// BENCHMARKS.md); this is under 1%.
    public func jsonBytes() -> [UInt8] {
        var out = JSONWriter(capacity: 1024)
        out.beginObject()
        out.string("access", access)
        if let articleGrant { out.string("articleGrant", articleGrant) }
        if let articleGrantExpiresAt { out.key("articleGrantExpiresAt"); out.raw(ISO8601Text.quoted(articleGrantExpiresAt)) }
        out.arrayValue("decidingRules")
        for rule in decidingRules { out.string(rule) }
        out.endArray()
        out.objectValue("jsonLd")
        out.string("@context", jsonLd.context)
        out.string("@type", jsonLd.type)
        if let part = jsonLd.hasPart {
            out.objectValue("hasPart")
            out.string("@type", part.type)
            out.string("cssSelector", part.cssSelector)
            out.key("isAccessibleForFree"); out.bool(part.isAccessibleForFree)
            out.endObject()
        }
        out.key("isAccessibleForFree"); out.bool(jsonLd.isAccessibleForFree)
        out.endObject()
        if let meter {
            out.objectValue("meter")
            out.key("consumed"); out.bool(meter.consumed)
            out.key("limit"); out.integer(Int64(meter.limit))
            out.string("name", meter.name)
            out.key("remaining"); out.integer(Int64(meter.remaining))
            if let resetsAt = meter.resetsAt { out.key("resetsAt"); out.raw(ISO8601Text.quoted(resetsAt)) }
            out.key("used"); out.integer(Int64(meter.used))
            out.endObject()
        }
        out.arrayValue("offers")
        for offer in offers {
            out.beginObject()
            if let days = offer.days { out.key("days"); out.integer(Int64(days)) }
            out.string("type", offer.type)
            out.endObject()
        }
        out.endArray()
        out.string("policyRevision", policyRevision)
        out.key("teaserParagraphs"); out.integer(Int64(teaserParagraphs))
        out.endObject()
        return out.bytes
    }
}

/// `"2026-11-28T09:10:41Z"`: what `JSONEncoder`'s `.iso8601` writes (whole seconds, UTC),
/// computed from the seconds since 1970 (days to civil date as in H. Hinnant's
/// `civil_from_days`), not through a formatter.
enum ISO8601Text {
    static func quoted(_ date: Date) -> [UInt8] {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        // Outside years 1970–9999 (never on this path: grant expiries, meter resets) the
        // formatter writes it, whatever it writes.
        guard seconds >= 0, seconds < 253_402_300_800 else {
            return Array(("\"" + date.formatted(.iso8601) + "\"").utf8)
        }
        let total = Int(seconds)
        let days = total / 86_400, secondOfDay = total % 86_400
        let z = days + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        var out: [UInt8] = []
        out.reserveCapacity(22)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        out.append(UInt8(ascii: "\""))
        digits(year, 4); out.append(UInt8(ascii: "-")); digits(month, 2); out.append(UInt8(ascii: "-")); digits(day, 2)
        out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3_600, 2); out.append(UInt8(ascii: ":")); digits(secondOfDay / 60 % 60, 2)
        out.append(UInt8(ascii: ":")); digits(secondOfDay % 60, 2)
        out.append(contentsOf: [UInt8(ascii: "Z"), UInt8(ascii: "\"")])
        return out
    }
}
