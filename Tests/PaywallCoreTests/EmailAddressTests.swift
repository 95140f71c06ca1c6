import Testing
@testable import PaywallCore

@Suite("Email addresses")
struct EmailAddressTests {
    @Test("valid addresses are accepted and trimmed", arguments: [
        "ada@example.com", "  Ada.Lovelace@Example.COM \n", "a+news@sub.example.co.uk", "o'brien@example.ie",
        "x@a-b.io", "1234@numbers.example",
    ])
    func valid(_ raw: String) throws {
        let email = try EmailAddress(raw)
        #expect(email.value == raw.trimmingWhitespace())
        #expect(email.lookupKey == email.value.lowercased())
    }

    @Test("malformed addresses are refused with a reason", arguments: [
        ("", "empty"), ("   ", "empty"), ("ada", "exactly one '@'"), ("ada@@example.com", "exactly one '@'"),
        ("@example.com", "nothing before"), ("ada@", "nothing after"), ("ada@localhost", "needs a dot"),
        (".ada@example.com", "dots"), ("ada.@example.com", "dots"), ("a..da@example.com", "dots"),
        ("ada lovelace@example.com", "not allowed"), ("ada@exa mple.com", "not allowed"),
        ("ada@-example.com", "start or end"), ("ada@example..com", "empty label"), ("ada@example.123", "numeric"),
        ("adä@example.com", "ASCII"), ("ada@exam_ple.com", "not allowed"),
    ])
    func invalid(_ raw: String, reason: String) {
        #expect {
            _ = try EmailAddress(raw)
        } throws: { error in
            guard let error = error as? DomainError, case let .invalidEmail(_, why) = error else { return false }
            return why.contains(reason)
        }
    }

    @Test("length limits of RFC 5321")
    func lengths() throws {
        let local64 = String(repeating: "a", count: 64)
        _ = try EmailAddress("\(local64)@example.com")
        #expect(throws: DomainError.self) { try EmailAddress("\(local64)a@example.com") }
        let longDomain = (0..<5).map { _ in String(repeating: "d", count: 60) }.joined(separator: ".") + ".com"
        #expect(throws: DomainError.self) { try EmailAddress("a@\(longDomain)") }
    }

    @Test("the person key drops +tags, and dots for Gmail only", arguments: [
        ("Ada+news@Example.com", "ada@example.com"),
        ("ada.lovelace@example.com", "ada.lovelace@example.com"),
        ("A.d.A+x@gmail.com", "ada@gmail.com"),
        ("ada.l+trial2@googlemail.com", "adal@gmail.com"),
        ("ada@gmail.com", "ada@gmail.com"),
    ])
    func personKey(_ raw: String, expected: String) throws {
        #expect(try EmailAddress(raw).personKey == expected)
    }

    @Test("a +tag that is the whole local part is not stripped to an empty local part", arguments: [
        ("+x@d.com", "+x@d.com"),
        ("+@d.com", "+@d.com"),
        ("+Trial2@Gmail.com", "+trial2@gmail.com"),
    ])
    func plusOnlyLocalPart(_ raw: String, expected: String) throws {
        let key = try EmailAddress(raw).personKey
        #expect(!key.hasPrefix("@"))
        #expect(key == expected)
    }

    @Test("domain is the lower-cased part after the @")
    func domain() throws {
        #expect(try EmailAddress("Ada@Corp.Example.COM").domain == "corp.example.com")
    }
}
