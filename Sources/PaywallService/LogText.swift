import Foundation

/// Log text with readers' email addresses masked: a refusal's reason names the address it
/// was about ("'ada@example.com' has already had a free trial"), and a log is read by more
/// people, and kept longer, than the database. The first character of the local part and
/// the domain stay, enough to tell addresses apart when following one support case. Any
/// word with text on both sides of an "@" is taken for one (an address cut short by a
/// message, or at a host without dots, included).
public enum LogText {
    public static func maskingEmails(_ text: String) -> String {
        guard text.contains("@") else { return text }
        let stops: Set<Character> = [" ", "'", "\"", "(", ")", "<", ">", ",", ";", ":", "\n", "\t"]
        var result = ""
        var word = ""
        func flush() {
            // `//user@host` after a scheme's colon is a URL's authority (a database URL's
            // role), and `***@host` its redacted password: not addresses. Masked, they read
            // `postgres:/***@host` in logs.
            if let at = word.firstIndex(of: "@"), at != word.startIndex, word.index(after: at) != word.endIndex,
               !(word.hasPrefix("//") && !word[word.index(word.startIndex, offsetBy: 2)..<at].contains("/")), !word[..<at].allSatisfy({ $0 == "*" }) {
                result += String(word[word.startIndex]) + "***" + word[at...]
            } else {
                result += word
            }
            word = ""
        }
        for character in text {
            if stops.contains(character) {
                flush()
                result.append(character)
            } else {
                word.append(character)
            }
        }
        flush()
        return result
    }
}
