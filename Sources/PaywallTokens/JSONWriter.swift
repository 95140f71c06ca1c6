/// Writes compact JSON straight into bytes (no intermediate tree): how token claims are
/// serialized on the signing path, and the access check's answer (`AccessView`).
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// For each open container (bit = depth, up to 64): whether nothing is written in it yet.
    private var first: UInt64 = 0
    private var depth = 0
    /// A member name was written; its value comes next (no separator).
    private var afterKey = false

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

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

    public mutating func beginObject() { open(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { open(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    /// Writes a member name; the next value written is its value.
    public mutating func key(_ name: String) {
        beforeValue()
        JSONValue.writeString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ value: String) { beforeValue(); JSONValue.writeString(value, to: &bytes) }
    public mutating func integer(_ value: Int64) {
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
    public mutating func bool(_ value: Bool) {
        beforeValue()
        bytes.append(contentsOf: value ? Array("true".utf8) : Array("false".utf8))
    }
    /// Bytes the caller vouches are one complete JSON value (a number or date it formatted).
    public mutating func raw(_ value: some Sequence<UInt8>) { beforeValue(); bytes.append(contentsOf: value) }
    /// A NumericDate: whole seconds since 1970.
    /// A NumericDate in whole seconds, held to what a verifier reads back (``latestSeconds``;
    /// nothing before 1970): an end typed as "9999-12-31" stays a date no token outlives,
    /// instead of a claim every verifier refuses, and no value traps the conversion.
    public mutating func seconds(_ value: Double) {
        integer(Int64((value.isNaN ? 0 : min(max(value, 0), Self.latestSeconds)).rounded(.down)))
    }

    /// The latest NumericDate written: `RegisteredClaims` refuses 10^11 seconds and later.
    public static let latestSeconds: Double = 1e11 - 1


    public mutating func string(_ name: String, _ value: String) { key(name); string(value) }
    public mutating func seconds(_ name: String, _ value: Double) { key(name); seconds(value) }
    public mutating func objectValue(_ name: String) { key(name); beginObject() }
    public mutating func arrayValue(_ name: String) { key(name); beginArray() }
}
