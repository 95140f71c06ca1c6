import Foundation
import Testing
@testable import PaywallPolicy
import PaywallTestSupport


@Suite("Fuzzing the parser and checker (bounded)")
struct FuzzTests {
    static let fragments = [
        "rule", "meter", "defaults", "title", "when", "grant", "cap", "offer", "using", "shadow", "and", "or", "not", "in",
        "full", "teaser", "none", "trial", "signIn", "{", "}", "(", ")", "[", "]", ",", ";", ".", "==", "!=", "<", ">=", "+", "-",
        "\"x\"", "\"free-articles\"", "3", "14 days", "user.signedIn", "membership.titles", "title.id", "now", "request.ip",
        "cidr(\"10.0.0.0/8\")", "time(\"2026-01-01T00:00:00Z\")", "meter(\"free-articles\").used", "\n", " ", "#c\n", "\"", "\\", "@", "é",
    ]

    @Test("mutations of the shipped policy never crash; errors always carry a position", arguments: [1, 2, 3, 4])
    func mutations(seed: UInt64) throws {
        let source = try String(contentsOf: Repository.policies.appendingPathComponent("paywall.policy"), encoding: .utf8)
        let base = Array(source.unicodeScalars)
        var random = SplitMix64(state: seed)
        var compiled = 0
        for _ in 0..<500 {
            var scalars = base
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let position = Int.random(in: 0..<scalars.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: scalars.remove(at: position)
                case 1: scalars.insert(contentsOf: Self.fragments.randomElement(using: &random)!.unicodeScalars, at: position)
                case 2: scalars[position] = Unicode.Scalar(UInt8.random(in: 32...126, using: &random))
                default:
                    let end = min(scalars.count, position + Int.random(in: 1...40, using: &random))
                    scalars.removeSubrange(position..<end)
                }
                if scalars.isEmpty { scalars = base }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            do {
                let policy = try PolicyLoader.compile([PolicySource(name: "fuzz.policy", text: text)])
                _ = policy.decide(DecisionFacts(now: Date(), meters: policy.meters.map { _ in MeterFacts() }), explain: true)
                compiled += 1
            } catch {
                #expect(!error.diagnostics.isEmpty)
                for diagnostic in error.diagnostics {
                    #expect(diagnostic.location.line >= 1 && diagnostic.location.column >= 1)
                }
            }
        }
        #expect(compiled < 500, "mutations should break most policies")
    }

    @Test("random lexeme soup never crashes")
    func soup() {
        var random = SplitMix64(state: 99)
        for _ in 0..<1_000 {
            let text = (0..<Int.random(in: 1...60, using: &random)).map { _ in Self.fragments.randomElement(using: &random)! }.joined(separator: " ")
            do {
                _ = try PolicyLoader.compile([PolicySource(name: "soup.policy", text: text)])
            } catch {
                #expect(!error.diagnostics.isEmpty)
            }
        }
    }
}
