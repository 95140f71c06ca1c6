import Foundation
import Testing
@testable import PaywallPolicy

enum Repository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let policies = root.appendingPathComponent("Policies")
}

@Suite("The shipped policy")
struct ShippedPolicyTests {
    @Test("checks clean, passes every test in Policies/tests, and every rule is exercised")
    func shipped() throws {
        let policy = try PolicyLoader.load(directory: Repository.policies)
        let tests = try PolicyTestRunner.load(directory: Repository.policies.appendingPathComponent("tests"), policy: policy)
        #expect(tests.count >= 20)
        let results = PolicyTestRunner.run(tests, policy: policy)
        for result in results where !result.passed {
            Issue.record("\(result.test.name): \(result.failures.joined(separator: "; "))")
        }
        #expect(PolicyTestRunner.unexercisedRules(results, policy: policy) == [])
        #expect(policy.titleSections == ["euronews", "le-monde"])
        #expect(policy.meters == [MeterDefinition(name: "free-articles", limit: 3, window: 30 * 86_400)])
    }
}
