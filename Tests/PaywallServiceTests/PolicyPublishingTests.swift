import Foundation
import PaywallCore
import PaywallPolicy
import PaywallService
import PaywallStore
import PaywallTestSupport
import Testing

/// Policies published to the database: checked before they are stored, put in force on
/// every server on the database, listed, rolled back; refusals store nothing.
@Suite("Published policies")
struct PolicyPublishingTests {
    /// A copy of the shipped policy folder with `meter` articles a month instead of 3.
    func folder(_ parent: TestFolder, meter: Int) throws -> URL {
        let url = parent.url.appendingPathComponent("policies-\(meter)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let shipped = try String(contentsOf: repositoryRoot.appendingPathComponent("Policies/paywall.policy"), encoding: .utf8)
        let changed = shipped.replacingOccurrences(of: "meter \"free-articles\" { limit 3 per 30 days }", with: "meter \"free-articles\" { limit \(meter) per 30 days }")
        #expect(changed != shipped, "the shipped policy's meter line moved: update this test")
        try changed.write(to: url.appendingPathComponent("paywall.policy"), atomically: true, encoding: .utf8)
        return url
    }

    func meterLimit(_ policy: Policy) -> Int? { policy.meters.first?.limit }

    @Test("a publication is in force on the publishing server and, after a refresh, on another; the folder is used until then", arguments: TestBackend.all)
    func publishReachesOtherServers(backend: TestBackend) throws {
        let f = try ServiceFixture(backend: backend)
        let other = try f.another()
        defer { try? other.close() }
        #expect(try f.service.policyHistory().isEmpty)
        let shipped = try other.policy()
        #expect(other.policyPublication == nil, "no publication: the folder is in force")

        let published = try f.service.publishPolicy(directory: try folder(f.directory, meter: 5), author: "ada", note: "five a month")
        #expect(published.number > 0 && published.author == "ada" && published.note == "five a month")
        #expect(try meterLimit(f.service.policy()) == 5)
        #expect(try other.policy().revision == shipped.revision, "the other server has not looked yet")

        let switched = try #require(try other.refreshPublishedPolicy())
        #expect(switched.revision == published.revision && meterLimit(switched) == 5)
        #expect(other.policyPublication == published.number)
        #expect(try other.refreshPublishedPolicy() == nil, "nothing newer: no change")

        // A restarted server starts on the publication, not its folder.
        let restarted = try f.another()
        defer { try? restarted.close() }
        #expect(try restarted.policy().revision == published.revision)
        let audit = try f.service.auditEntries(target: "policy", limit: 10).filter { $0.action == "policy.publish" }
        #expect(audit.count == 1 && audit.first?.actor == .admin("ada"))
    }

    @Test("history lists publications newest first; a rollback publishes an earlier revision again", arguments: TestBackend.all)
    func historyAndRollback(backend: TestBackend) throws {
        let f = try ServiceFixture(backend: backend)
        let five = try f.service.publishPolicy(directory: try folder(f.directory, meter: 5), author: "ada")
        let seven = try f.service.publishPolicy(directory: try folder(f.directory, meter: 7), author: "bob")
        #expect(try f.service.policyHistory().map(\.number) == [seven.number, five.number])

        let back = try f.service.rollbackPolicy(to: String(five.revision.prefix(6)), author: "carol")
        #expect(back.revision == five.revision && back.number > seven.number)
        #expect(back.note?.contains(five.revision) == true)
        #expect(try meterLimit(f.service.policy()) == 5)
        let other = try f.another()
        defer { try? other.close() }
        #expect(try meterLimit(other.policy()) == 5)
        #expect(try f.service.policyHistory().map(\.revision) == [five.revision, seven.revision, five.revision])
    }

    @Test("refusals store nothing: a folder that does not check, an unknown or ambiguous revision, a bad author", arguments: TestBackend.all)
    func refusals(backend: TestBackend) throws {
        let f = try ServiceFixture(backend: backend)
        let broken = f.directory.url.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try "rule \"half\" { when reader.signedIn grant }".write(to: broken.appendingPathComponent("a.policy"), atomically: true, encoding: .utf8)
        let before = try f.snapshot()
        #expect { try f.service.publishPolicy(directory: broken, author: "ada") } throws: { error in
            guard case .policy = error as? ServiceError else { return false }
            return true
        }
        #expect { try f.service.publishPolicy(directory: f.directory.url.appendingPathComponent("missing"), author: "ada") } throws: { error in
            guard case .policy = error as? ServiceError else { return false }
            return true
        }
        #expect(throws: ServiceError.store(.revisionNotFound("abc123"))) { try f.service.rollbackPolicy(to: "abc123", author: "ada") }
        #expect { try f.service.rollbackPolicy(to: "not-hex", author: "ada") } throws: { ($0 as? ServiceError)?.code == "invalid_value" }
        #expect { try f.service.publishPolicy(directory: try folder(f.directory, meter: 4), author: "  ") } throws: { ($0 as? ServiceError)?.code == "invalid_value" }
        #expect(try f.snapshot() == before)
        #expect(f.service.policyPublication == nil)
    }

    @Test("a publication that does not compile here is refused by refresh and the policy in force stays")
    func unreadablePublication() throws {
        let f = try ServiceFixture()
        let shipped = try f.service.policy()
        let store = try Store(location: f.path)
        defer { try? store.close() }
        // As if a newer paywall, with a language this one does not know, had published it.
        _ = try store.publishPolicy(revision: "ffffffffffffffff", files: ["paywall.policy": "future syntax {"], author: "newer", note: nil)
        #expect { try f.service.refreshPublishedPolicy() } throws: { error in
            guard case .policy = error as? ServiceError else { return false }
            return true
        }
        #expect(try f.service.policy().revision == shipped.revision)
    }
}
