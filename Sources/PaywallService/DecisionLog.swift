import Foundation
import PaywallCore
import PaywallPolicy
import Synchronization

/// One access decision as the admin area lists it: what was decided and by which rules,
/// never who asked beyond their kind (no account or device id, no token, no email): an
/// operator reading why the paywall behaved as it did needs the rules, not the reader.
public struct LoggedDecision: Sendable, Equatable {
    public enum ReaderKind: String, Sendable { case account, device, anonymous }

    public var at: Date
    public var title: String
    public var article: String
    public var access: AccessLevel
    public var decidingRules: [String]
    public var readerKind: ReaderKind
    /// The meter the decision used, if any (its name, whether a unit was spent, what is left).
    public var meter: MeterOutcome?
    public var revision: String
}

/// The last ``capacity`` access decisions, in memory only: a bounded ring (a busy server
/// decides thousands a second; the admin page wants the latest few, and a restart may
/// forget them: the audit log and the reads tables are the records).
public final class DecisionLog: Sendable {
    public let capacity: Int
    private struct Ring { var items: [LoggedDecision] = []; var next = 0 }
    private let ring = Mutex(Ring())

    public init(capacity: Int = 200) { self.capacity = max(1, capacity) }

    func append(_ decision: LoggedDecision) {
        ring.withLock { ring in
            if ring.items.count < capacity {
                ring.items.append(decision)
            } else {
                ring.items[ring.next] = decision
            }
            ring.next = (ring.next + 1) % capacity
        }
    }

    /// Newest first.
    public func recent() -> [LoggedDecision] {
        ring.withLock { ring in
            guard ring.items.count == capacity else { return ring.items.reversed() }
            return Array((ring.items[ring.next...] + ring.items[..<ring.next]).reversed())
        }
    }
}

extension AccessReader {
    var logKind: LoggedDecision.ReaderKind {
        switch self {
        case .account: .account
        case .device: .device
        case .anonymous: .anonymous
        }
    }
}

extension PaywallService {
    func logDecision(_ answer: AccessAnswer) {
        decisionLog.append(LoggedDecision(
            at: now, title: answer.title.rawValue, article: answer.articleID, access: answer.decision.access,
            decidingRules: answer.decision.decidingRules, readerKind: answer.reader.logKind, meter: answer.decision.meter,
            revision: answer.decision.revision))
    }

    /// The last access decisions, newest first (audited as `admin.decisions.list`, as every
    /// admin read is).
    public func recentDecisions(by admin: AdminPrincipal) throws(ServiceError) -> [LoggedDecision] {
        try auditedRead(admin, "admin.decisions.list", target: "decisions") { decisionLog.recent() }
    }
}
