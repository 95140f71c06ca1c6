/// Writes compact JSON straight into bytes (no intermediate tree): how token claims are
/// serialized on the signing path.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// For each open container: whether nothing has been written in it yet.
    private var first: [Bool] = []
    /// A member name was written; its value comes next (no separator).
    private var afterKey = false

    init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    /// Writes the separator a new element needs, if any.
    private mutating func beforeValue() {
        if afterKey {
            afterKey = false
        } else if let isFirst = first.last {
            if !isFirst { bytes.append(UInt8(ascii: ",")) }
            first[first.count - 1] = false
        }
    }

    mutating func beginObject() { beforeValue(); bytes.append(UInt8(ascii: "{")); first.append(true) }
    mutating func endObject() { bytes.append(UInt8(ascii: "}")); first.removeLast() }
    mutating func beginArray() { beforeValue(); bytes.append(UInt8(ascii: "[")); first.append(true) }
    mutating func endArray() { bytes.append(UInt8(ascii: "]")); first.removeLast() }

    /// Writes a member name; the next value written is its value.
    mutating func key(_ name: String) {
        beforeValue()
        JSONValue.writeString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    mutating func string(_ value: String) { beforeValue(); JSONValue.writeString(value, to: &bytes) }
    mutating func integer(_ value: Int64) { beforeValue(); bytes.append(contentsOf: String(value).utf8) }
    /// A NumericDate: whole seconds since 1970.
    mutating func seconds(_ value: Double) { integer(Int64(value.rounded(.down))) }

    mutating func string(_ name: String, _ value: String) { key(name); string(value) }
    mutating func seconds(_ name: String, _ value: Double) { key(name); seconds(value) }
    mutating func objectValue(_ name: String) { key(name); beginObject() }
    mutating func arrayValue(_ name: String) { key(name); beginArray() }
}
