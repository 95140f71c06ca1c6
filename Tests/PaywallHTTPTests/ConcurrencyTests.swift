import Foundation
import HTTPTypes
import HummingbirdTesting
import PaywallCore
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import Testing

func signUp(_ f: ServiceFixture, _ email: String) throws {
    _ = try f.service.signUp(email: email, password: "correct horse battery", displayName: nil, actor: f.admin)
}

@Suite("Concurrent access checks in process")
struct ConcurrencyTests {
    @Test("20 checks of different articles at once with one unit left: exactly one full, one read recorded", arguments: TestBackend.all)
    func lastUnit(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        let account = try f.service.account("reader@example.com")
        let token = try accessToken(f, "reader@example.com")
        // Two of the three units used.
        let warmup = try await withAPI(f) { client in
            [try await client.access(article: "w1", token: token), try await client.access(article: "w2", token: token)]
        }
        #expect(warmup.allSatisfy { $0.status == .ok })
        let readsBefore = try #require(try f.snapshot()["reads"])
        #expect(readsBefore == 2)

        let responses = try await withAPI(f) { client in
            try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for index in 0..<20 {
                    group.addTask { try await client.access(article: "race-\(index)", token: token) }
                }
                var all: [TestResponse] = []
                for try await response in group { all.append(response) }
                return all
            }
        }
        #expect(responses.count == 20)
        #expect(responses.allSatisfy { $0.status == .ok }, "\(responses.map(\.status))")
        let bodies = try responses.map { try $0.object() }
        let full = bodies.filter { $0["access"] as? String == "full" }
        #expect(full.count == 1)
        #expect(bodies.filter { $0["access"] as? String == "teaser" }.count == 19)
        #expect(full.allSatisfy { $0["articleGrant"] is String })
        #expect(bodies.allSatisfy { ($0["meter"] as? [String: Any])?["used"] as? Int == 3 }, "every answer shows the spent meter")
        #expect(try f.snapshot()["reads"] == readsBefore + 1)
        #expect(try f.service.meterReport(subject: .account(account.id), window: 30 * 86_400, title: nil).usage.used == 3)
    }

    @Test("the same article checked twice at once is counted once, and both answers show the meter as it is", arguments: TestBackend.all)
    func sameArticleTwice(backend: TestBackend) async throws {
        let f = try seededFixture(backend: backend)
        // Several readers, so the pair of checks races more than once.
        var tokens: [String] = []
        for index in 0..<8 {
            let email = "pair\(index)@example.com"
            try signUp(f, email)
            tokens.append(try accessToken(f, email))
        }
        let tokenList = tokens
        for round in 0..<3 {
            let pairs = try await withAPI(f) { client in
                try await withThrowingTaskGroup(of: (Int, TestResponse).self) { group in
                    for (index, token) in tokenList.enumerated() {
                        for _ in 0..<2 {
                            group.addTask { (index, try await client.access(article: "same-\(round)", token: token)) }
                        }
                    }
                    var all: [(Int, TestResponse)] = []
                    for try await item in group { all.append(item) }
                    return all
                }
            }
            #expect(pairs.count == 16)
            for index in tokenList.indices {
                let answers = try pairs.filter { $0.0 == index }.map { try $0.1.object() }
                let meters = answers.map { $0["meter"] as? [String: Any] ?? [:] }
                #expect(answers.allSatisfy { $0["access"] as? String == "full" }, "round \(round), reader \(index)")
                #expect(meters.filter { $0["consumed"] as? Bool == true }.count == 1, "counted once: \(meters)")
                #expect(meters.map { $0["used"] as? Int } == [round + 1, round + 1], "round \(round), reader \(index): \(meters)")
                #expect(meters.map { $0["remaining"] as? Int } == [2 - round, 2 - round], "round \(round), reader \(index): \(meters)")
            }
        }
        for index in tokenList.indices {
            let account = try f.service.account("pair\(index)@example.com")
            #expect(try f.service.meterReport(subject: .account(account.id), window: 30 * 86_400, title: nil).usage.used == 3)
        }
        // One row per article read: the second check of a pair, a re-read within the
        // minute, writes nothing; the meter counts articles.
        #expect(try f.snapshot()["reads"] == 8 * 3)
    }
}
