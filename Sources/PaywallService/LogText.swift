import Foundation
import Synchronization

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

/// At most so many log lines per code in each interval (one by default); the next line
/// passed says how many were held back. The API's refusals and the web pages' lines use
/// it, each router and site its own.
public final class LogThrottle: Sendable {
    private let every: Duration
    private let lines: Int
    /// Per code: when its window began, the lines passed in it, and those held back since
    /// the last line passed.
    private let state = Mutex<[String: (start: ContinuousClock.Instant, passed: Int, held: Int)]>([:])

    /// At most `lines` lines per code in each window of `every`.
    public init(every: Duration, lines: Int = 1) {
        self.every = every
        self.lines = max(1, lines)
    }

    /// Nil: do not log this one. Otherwise log it, saying how many like it were not.
    public func pass(code: String, at now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { state in
            var entry = state[code] ?? (now, 0, 0)
            if now - entry.start >= every { (entry.start, entry.passed) = (now, 0) }
            guard entry.passed < lines else {
                state[code] = (entry.start, entry.passed, entry.held + 1)
                return nil
            }
            state[code] = (entry.start, entry.passed + 1, 0)
            return entry.held
        }
    }
}
