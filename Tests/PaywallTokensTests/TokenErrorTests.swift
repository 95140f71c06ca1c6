import Foundation
import Testing
import PaywallCore
import PaywallCrypto
@testable import PaywallTokens

@Suite("Token errors are safe to log")
struct TokenErrorTests {
    /// True when `text` holds no control character (C0, DEL, C1) and no line or bidi
    /// override separator a terminal or log viewer would act on.
    static func isInert(_ text: String) -> Bool {
        !text.unicodeScalars.contains { scalar in
            scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
                || [0x2028, 0x2029, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069].contains(scalar.value)
        }
    }

    static let hostile = ["evil\nkid: forged", "\u{1b}[31mred\u{1b}[0m", "a\r\nb", "bell\u{07}", "rtl\u{202E}txt", "nul\u{0}x", "c1\u{9b}31m"]

    @Test("attacker-supplied kid, alg, typ and iss are escaped in descriptions", arguments: hostile)
    func escaped(_ text: String) {
        let errors: [TokenError] = [
            .unknownKey(text), .unsupportedAlgorithm(text), .algorithmMismatch(header: text, key: "ES256"),
            .wrongType(expected: "at+jwt", actual: text), .wrongIssuer(text), .forbiddenHeader(text),
            .malformed(text), .missingClaim(text), .invalidClaim(text, reason: text),
        ]
        for error in errors {
            #expect(Self.isInert(error.description), "\(error.description.debugDescription)")
        }
    }

    @Test("escapes stay readable: newline and ESC are spelled out")
    func readable() {
        #expect(TokenError.unknownKey("a\nb").description == #"unknown key id 'a\nb' (not in the key ring, or retired)"#)
        #expect(TokenError.unsupportedAlgorithm("\u{1b}[31m").description.hasPrefix(#"algorithm '\u{1B}[31m'"#))
        // A quote cannot close the quoted value early.
        #expect(TokenError.unknownKey("x' (ok) '").description.contains(#"'x\' (ok) \''"#))
        // Ordinary values are untouched.
        #expect(TokenError.unknownKey("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k").description
            == "unknown key id 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k' (not in the key ring, or retired)")
    }

    @Test("a long kid is cut to 64 characters, saying how much was left out")
    func longKid() {
        let kid = String(repeating: "k", count: 100_000)
        let text = TokenError.unknownKey(kid).description
        #expect(text.count < 160)
        #expect(text.contains(String(repeating: "k", count: 64) + "…"))
        #expect(!text.contains(String(repeating: "k", count: 65)))
        #expect(text.contains("99936 more"))
        let typ = TokenError.wrongType(expected: "at+jwt", actual: String(repeating: "t", count: 5_000)).description
        #expect(typ.count < 160)
    }

    @Test("a hostile kid in a real token is escaped in the refusal")
    func throughVerifier() throws {
        let f = try TokenFixture()
        let header = #"{"alg":"ES256","kid":"x\n2026-01-01 INFO admin signed in\u001b[2J","typ":"at+jwt"}"#
        let token = try f.forge(header: header, payload: f.claims())
        do {
            _ = try f.verifier.verifyAccess(token, audience: "api")
            Issue.record("a token with an unknown kid verified")
        } catch {
            #expect(Self.isInert(error.description))
            #expect(error.description.contains(#"x\n2026-01-01 INFO admin signed in\u{1B}[2J"#))
        }
    }

    @Test("one kind is required by name, as 'paywall token verify --kind' spells it", arguments: [
        ("access", TokenKind.access), ("article", .articleGrant), ("comp", .comp),
        ("at+jwt", .access), ("paywall-article+jwt", .articleGrant), ("paywall-comp+jwt", .comp),
    ])
    func kindNames(_ name: String, kind: TokenKind) throws {
        #expect(TokenKind(name: name) == kind)
        #expect(TokenKind(name: kind.name) == kind)
    }

    @Test("a verifier asked for one kind refuses the others")
    func requireOneKind() throws {
        let f = try TokenFixture()
        let (access, _) = try f.issuer.accessToken(subject: "acc-1", audience: "api", lifetime: 600, entitlements: EntitlementSnapshot(memberships: [], trialEndsAt: nil))
        #expect(TokenKind(name: "nope") == nil)
        let comp = try #require(TokenKind(name: "comp"))
        #expect(throws: TokenError.wrongType(expected: "paywall-comp+jwt", actual: "at+jwt")) {
            try f.verifier.verify(access, expecting: [comp], audience: "api")
        }
        #expect(try f.verifier.verify(access, expecting: [#require(TokenKind(name: "access"))], audience: "api").kind == .access)
    }
}
