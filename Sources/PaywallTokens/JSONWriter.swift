/// Writes compact JSON straight into bytes (no intermediate tree): how token claims are
/// serialized on the signing path.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// For each open container (bit = depth, up to 64): whether nothing is written in it yet.
    private var first: UInt64 = 0
    private var depth = 0
    /// A member name was written; its value comes next (no separator).
    private var afterKey = false

    init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    /// Writes the separator a new element needs, if any.
    private mutating func beforeValue() {
        if afterKey {
            afterKey = false
        } else if depth > 0 {
            let bit: UInt64 = 1 << UInt64(depth - 1)
            if first & bit == 0 { bytes.append(UInt8(ascii: ",")) }
            first &= ~bit
        }
    }

    private mutating func open(_ byte: UInt8) {
        beforeValue()
        bytes.append(byte)
        precondition(depth < 64, "JSON nested deeper than 64")
        first |= 1 << UInt64(depth)
        depth += 1
    }

    private mutating func close(_ byte: UInt8) {
        bytes.append(byte)
        depth -= 1
    }

    mutating func beginObject() { open(UInt8(ascii: "{")) }
    mutating func endObject() { close(UInt8(ascii: "}")) }
    mutating func beginArray() { open(UInt8(ascii: "[")) }
    mutating func endArray() { close(UInt8(ascii: "]")) }

    /// Writes a member name; the next value written is its value.
    mutating func key(_ name: String) {
        beforeValue()
        JSONValue.writeString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    mutating func string(_ value: String) { beforeValue(); JSONValue.writeString(value, to: &bytes) }
    mutating func integer(_ value: Int64) {
        beforeValue()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }
    /// A NumericDate: whole seconds since 1970.
    mutating func seconds(_ value: Double) { integer(Int64(value.rounded(.down))) }

    mutating func string(_ name: String, _ value: String) { key(name); string(value) }
    mutating func seconds(_ name: String, _ value: Double) { key(name); seconds(value) }
    mutating func objectValue(_ name: String) { key(name); beginObject() }
    mutating func arrayValue(_ name: String) { key(name); beginArray() }
}
