import Logging
@testable import PaywallHTTP
import PaywallPolicy
import PaywallService
import Testing

@Suite("The policy watcher's log")
struct PolicyWatcherLogTests {
    @Test("a database out of reach is said as such, not as a refused publication; a publication that does not compile is a refusal")
    func outOfReachIsNotARefusal() {
        let outage: [ServiceError] = [.store(.locked(path: "p", timeoutSeconds: 5)), .store(.unavailable(location: "postgres://db/paywall", detail: "connection refused")), .store(.cannotOpen(path: "p", detail: "closed"))]
        for error in outage {
            #expect("\(PolicyWatcher.message(for: error))".contains("the database is out of reach"), "\(error)")
        }
        let refused: [any Error] = [ServiceError.policy(PolicyErrors([])), ServiceError.store(.revisionNotFound("r9"))]
        for error in refused {
            #expect("\(PolicyWatcher.message(for: error))".hasPrefix("published policy refused"), "\(error)")
        }
    }
}
