/// Lexemes of the policy language (named so, not "tokens", which in this project are JWTs).
enum LexemeKind: Equatable, Sendable {
    case identifier(String)
    case string(String)
    case number(Double)
    case symbol(String)  // { } ( ) [ ] , ; . == != < <= > >= + -
    case newline
    case end
}

struct Lexeme: Sendable {
    var kind: LexemeKind
    var location: SourceLocation
    /// Byte offset of the lexeme's start in the source.
    var offset: Int
}

/// Splits a policy file into lexemes. Comments run from `#` or `//` to the end of the line.
struct Lexer {
    static let maximumSourceSize = 1 << 20

    let file: String
    let bytes: [UInt8]
    var index = 0
    var line = 1
    var lineStart = 0
    /// A byte offset on the current line whose column is known: columns are counted from
    /// here, so lexing a long line stays linear (not from the line's start at every lexeme).
    var columnAnchor = 0
    var anchorColumn = 1

    init(file: String, source: String) {
        self.file = file
        self.bytes = Array(source.utf8)
    }

    /// The location of `offset` on the current line. Columns count characters, not bytes.
    func location(at offset: Int) -> SourceLocation {
        let end = min(max(offset, lineStart), bytes.count)
        let (from, column) = columnAnchor >= lineStart && columnAnchor <= end ? (columnAnchor, anchorColumn) : (lineStart, 1)
        return SourceLocation(file: file, line: line, column: column + String(decoding: bytes[from..<end], as: UTF8.self).count)
    }

    /// The location of `offset`, which becomes the anchor of later columns on the line.
    mutating func anchoredLocation(at offset: Int) -> SourceLocation {
        let location = location(at: offset)
        columnAnchor = min(max(offset, lineStart), bytes.count)
        anchorColumn = location.column
        return location
    }

    func sourceLine(_ number: Int) -> String {
        var current = 1
        var start = 0
        for (offset, byte) in bytes.enumerated() {
            if current == number { start = offset; break }
            if byte == 0x0A { current += 1; start = offset + 1 }
        }
        guard current == number || start > 0 else { return "" }
        var end = start
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    func error(_ message: String, at offset: Int) -> PolicyDiagnostic {
        let location = location(at: offset)
        return PolicyDiagnostic(at: location, message, sourceLine: sourceLine(location.line))
    }

    mutating func scan() throws(PolicyDiagnostic) -> [Lexeme] {
        guard bytes.count <= Self.maximumSourceSize else {
            throw PolicyDiagnostic(at: SourceLocation(file: file, line: 1, column: 1), "policy file is larger than \(Self.maximumSourceSize) bytes")
        }
        var lexemes: [Lexeme] = []
        while true {
            let lexeme = try next()
            lexemes.append(lexeme)
            if lexeme.kind == .end { return lexemes }
        }
    }

    mutating func next() throws(PolicyDiagnostic) -> Lexeme {
        // Skip spaces and comments.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x20 || byte == 0x09 || byte == 0x0D {
                index += 1
            } else if byte == UInt8(ascii: "#") || (byte == UInt8(ascii: "/") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "/")) {
                while index < bytes.count, bytes[index] != 0x0A { index += 1 }
            } else {
                break
            }
        }
        let start = index
        let location = anchoredLocation(at: start)
        guard index < bytes.count else { return Lexeme(kind: .end, location: location, offset: start) }
        let byte = bytes[index]

        if byte == 0x0A {
            index += 1
            line += 1
            lineStart = index
            return Lexeme(kind: .newline, location: location, offset: start)
        }
        if isIdentifierStart(byte) {
            while index < bytes.count, isIdentifierPart(bytes[index]) { index += 1 }
            return Lexeme(kind: .identifier(String(decoding: bytes[start..<index], as: UTF8.self)), location: location, offset: start)
        }
        if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            while index < bytes.count, (bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")) || bytes[index] == UInt8(ascii: "_") { index += 1 }
            if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "."), bytes[index + 1] >= UInt8(ascii: "0"), bytes[index + 1] <= UInt8(ascii: "9") {
                index += 1
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self).replacingOccurrences(of: "_", with: "")
            guard let value = Double(text), value.isFinite, value < 1e15 else { throw error("number out of range", at: start) }
            return Lexeme(kind: .number(value), location: location, offset: start)
        }
        if byte == UInt8(ascii: "\"") {
            index += 1
            var out: [UInt8] = []
            while true {
                guard index < bytes.count, bytes[index] != 0x0A else { throw error("unterminated string", at: start) }
                let c = bytes[index]
                index += 1
                if c == UInt8(ascii: "\"") { break }
                if c == UInt8(ascii: "\\") {
                    guard index < bytes.count else { throw error("unterminated string", at: start) }
                    let escaped = bytes[index]
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(escaped)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    default: throw error("unknown escape \\\(Character(Unicode.Scalar(escaped)))", at: index - 2)
                    }
                } else {
                    out.append(c)
                }
                if out.count > 4_096 { throw error("string longer than 4096 bytes", at: start) }
            }
            guard let text = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in string", at: start) }
            return Lexeme(kind: .string(text), location: location, offset: start)
        }
        let two = index + 1 < bytes.count ? String(decoding: bytes[index...index + 1], as: UTF8.self) : ""
        if ["==", "!=", "<=", ">="].contains(two) {
            index += 2
            return Lexeme(kind: .symbol(two), location: location, offset: start)
        }
        let one = String(decoding: [byte], as: UTF8.self)
        if "{}()[],;.<>+-".contains(one) {
            index += 1
            return Lexeme(kind: .symbol(one), location: location, offset: start)
        }
        if byte == UInt8(ascii: "=") { throw error("'=' is not an operator; compare with '=='", at: start) }
        throw error("unexpected character '\(String(decoding: bytes[start..<min(start + 4, bytes.count)], as: UTF8.self).prefix(1))'", at: start)
    }

    func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "_")
    }

    func isIdentifierPart(_ byte: UInt8) -> Bool {
        isIdentifierStart(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
