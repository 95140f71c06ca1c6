import Foundation
import Testing
import PaywallCrypto
@testable import PaywallTokens

@Suite("Wycheproof JSON Web Signature vectors against the whole verifier")
struct WycheproofJWSTests {
    static let file = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/testdata/wycheproof/json_web_signature_test.json").standardizedFileURL

    @Test("ES256: every valid verifies and every invalid is refused; every other algorithm is refused")
    func vectors() throws {
        let root = try JSONValue.parse(Array(try Data(contentsOf: Self.file)), maxDepth: 16)
        let groups = try #require(root.objectValue?["testGroups"]?.arrayValue)
        var disagreements: [String] = []
        var counts = (valid: 0, invalid: 0, refusedOtherAlgorithm: 0)
        for group in groups.compactMap(\.objectValue) {
            // The verifier trusts the group's public key, if it is one we can use at all.
            let jwkValue = group["public"] ?? group["private"]
            let key = jwkValue.flatMap { try? JWK(json: $0) }
            let verifier = JWSVerifier(keys: key.map { [VerificationKey($0)] } ?? [])
            for test in (group["tests"]?.arrayValue ?? []).compactMap(\.objectValue) {
                let id = Int(test["tcId"]?.numberValue ?? -1)
                // JSON serialization (an object) is not the compact form: refused.
                let accepted = (test["jws"]?.stringValue).map { (try? verifier.verify($0)) != nil } ?? false
                let result = test["result"]?.stringValue
                if key?.algorithm == .es256 {
                    switch result {
                    case "valid":
                        counts.valid += 1
                        if !accepted { disagreements.append("tcId \(id): valid but refused") }
                    case "invalid":
                        counts.invalid += 1
                        if accepted { disagreements.append("tcId \(id): invalid but accepted") }
                    default: break
                    }
                } else {
                    counts.refusedOtherAlgorithm += 1
                    if accepted { disagreements.append("tcId \(id): \(group["comment"]?.stringValue ?? "?") accepted") }
                }
            }
        }
        #expect(disagreements == [])
        #expect(counts.valid + counts.invalid + counts.refusedOtherAlgorithm == Int(root.objectValue?["numberOfTests"]?.numberValue ?? 0))
        #expect(counts.valid == 2)
        #expect(counts.invalid == 37)
    }
}
