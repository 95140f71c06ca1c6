/// Base64url without padding (RFC 7515 §2), decoded strictly: only `A-Z a-z 0-9 - _`, no
/// `=`, no white space, no impossible length, and unused trailing bits must be zero (so
/// every value has exactly one encoding).
public enum Base64URL {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let table: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }()

    /// Encodes bytes.
    public static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var out = [UInt8]()
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the encoding of `bytes` to `out`.
    public static func append<Bytes: Collection<UInt8>>(_ bytes: Bytes, to out: inout [UInt8]) {
        let count = bytes.count
        let encodedCount = (count * 4 + 2) / 3
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: encodedCount))
        let written: Int? = bytes.withContiguousStorageIfAvailable { input in
            out.withUnsafeMutableBufferPointer { output in
                alphabet.withUnsafeBufferPointer { a in encode(input, into: output.baseAddress! + start, alphabet: a) }
            }
        }
        if written == nil {
            let copy = Array(bytes)
            copy.withUnsafeBufferPointer { input in
                out.withUnsafeMutableBufferPointer { output in
                    alphabet.withUnsafeBufferPointer { a in _ = encode(input, into: output.baseAddress! + start, alphabet: a) }
                }
            }
        }
    }

    @inline(__always)
    private static func encode(_ input: UnsafeBufferPointer<UInt8>, into output: UnsafeMutablePointer<UInt8>, alphabet a: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 0, o = 0
        let n = input.count
        while i + 3 <= n {
            let b0 = input[i], b1 = input[i + 1], b2 = input[i + 2]
            output[o] = a[Int(b0 >> 2)]
            output[o + 1] = a[Int((b0 & 0x03) << 4 | b1 >> 4)]
            output[o + 2] = a[Int((b1 & 0x0F) << 2 | b2 >> 6)]
            output[o + 3] = a[Int(b2 & 0x3F)]
            i += 3
            o += 4
        }
        if n - i == 1 {
            let b0 = input[i]
            output[o] = a[Int(b0 >> 2)]
            output[o + 1] = a[Int((b0 & 0x03) << 4)]
            o += 2
        } else if n - i == 2 {
            let b0 = input[i], b1 = input[i + 1]
            output[o] = a[Int(b0 >> 2)]
            output[o + 1] = a[Int((b0 & 0x03) << 4 | b1 >> 4)]
            output[o + 2] = a[Int((b1 & 0x0F) << 2)]
            o += 3
        }
        return o
    }

    /// Decodes strictly; nil for anything that is not canonical base64url.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var text = String(text)
        return text.withUTF8 { decode(utf8: $0) }
    }

    /// Decodes UTF-8 bytes strictly.
    public static func decode<Bytes: Collection<UInt8>>(utf8 input: Bytes) -> [UInt8]? {
        if let result = input.withContiguousStorageIfAvailable({ decode(buffer: $0) }) { return result }
        return Array(input).withUnsafeBufferPointer { decode(buffer: $0) }
    }

    private static func decode(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = input.count
        if count % 4 == 1 { return nil }
        let outCount = count * 3 / 4
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: outCount) { output, initialized in
            table.withUnsafeBufferPointer { t in
                var i = 0, o = 0
                while i + 4 <= count {
                    let c0 = t[Int(input[i])], c1 = t[Int(input[i + 1])], c2 = t[Int(input[i + 2])], c3 = t[Int(input[i + 3])]
                    if (c0 | c1 | c2 | c3) & 0xC0 != 0 { failed = true; return }
                    output[o] = c0 << 2 | c1 >> 4
                    output[o + 1] = c1 << 4 | c2 >> 2
                    output[o + 2] = c2 << 6 | c3
                    i += 4
                    o += 3
                }
                let rest = count - i
                if rest == 2 {
                    let c0 = t[Int(input[i])], c1 = t[Int(input[i + 1])]
                    if (c0 | c1) & 0xC0 != 0 || c1 & 0x0F != 0 { failed = true; return }
                    output[o] = c0 << 2 | c1 >> 4
                    o += 1
                } else if rest == 3 {
                    let c0 = t[Int(input[i])], c1 = t[Int(input[i + 1])], c2 = t[Int(input[i + 2])]
                    if (c0 | c1 | c2) & 0xC0 != 0 || c2 & 0x03 != 0 { failed = true; return }
                    output[o] = c0 << 2 | c1 >> 4
                    output[o + 1] = c1 << 4 | c2 >> 2
                    o += 2
                }
                initialized = o
            }
            if failed { initialized = 0 }
        }
        return failed ? nil : out
    }
}
