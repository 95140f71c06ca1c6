/// Text from outside (a request body, a token, a file) made safe to print on one line of a
/// log or a terminal. A value echoed as it came could start a forged log line with a
/// newline, or send a terminal escape sequence to whoever reads the log with `cat`.
///
/// Escaped: control characters (C0, DEL, C1), the line and paragraph separators, and the
/// bidirectional embeddings, overrides and isolates (which make a line read differently
/// from what it holds). `\n`, `\r` and `\t` are written so; the rest as `\u{1B}`.
public enum PrintableText {
    /// The most characters of an outside value a message shows.
    public static let quotedLimit = 64

    /// `text` for a message that shows it between single quotes: escaped as above, with
    /// `\` and `'` escaped too (so the value cannot close its quotes), and only the first
    /// `limit` characters kept, followed by `…(N more)`.
    public static func quoted(_ text: String, limit: Int = quotedLimit) -> String {
        var out = ""
        var kept = 0
        var total = 0
        for scalar in text.unicodeScalars {
            total += 1
            guard kept < limit else { continue }
            kept += 1
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            default: append(scalar, to: &out)
            }
        }
        if total > kept { out += "…(\(total - kept) more)" }
        return out
    }

    /// `text` as one line: escaped as above, nothing cut. Returned as it is (no copy) when
    /// nothing needs escaping, which is almost always: a log handler calls this for every
    /// value of every line it writes.
    public static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: mustEscape) else { return text }
        var out = ""
        for scalar in text.unicodeScalars { append(scalar, to: &out) }
        return out
    }

    /// Whether `scalar` is written as an escape.
    public static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F: true
        case 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    private static func append(_ scalar: Unicode.Scalar, to out: inout String) {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if mustEscape(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
}
