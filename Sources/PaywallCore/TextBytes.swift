/// Text compared and hashed as its UTF-8 bytes, as SQLite's `=` and a content server
/// comparing a grant's claim compare it. Swift's own `String` equality is Unicode's
/// canonical equivalence, under which an id written precomposed ("café", NFC) and
/// decomposed (NFD) are one: a cache keyed by `String` would then answer for an article the
/// store counts as another (found in review of the SQLite writer's meter state).
extension String {
    /// Whether `other` has exactly these UTF-8 bytes.
    public func hasSameBytes(as other: String) -> Bool {
        utf8.count == other.utf8.count && utf8.elementsEqual(other.utf8)
    }
}

extension Hasher {
    /// Adds `text`'s UTF-8 bytes and their count (so "ab", "c" and "a", "bc" differ).
    public mutating func combine(bytesOf text: String) {
        var text = text
        combine(text.utf8.count)
        text.withUTF8 { combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
