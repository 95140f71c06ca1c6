import Foundation

/// A free trial. A person has at most one, ever.
public struct Trial: Hashable, Sendable {
    /// What is stored: a trial runs until it ends or is canceled.
    public enum StoredStatus: String, Hashable, Sendable, Codable {
        case active, canceled
    }

    /// What a trial is at a given instant.
    public enum Status: String, Hashable, Sendable, Codable {
        case active, expired, canceled
    }

    public var id: Int64
    /// Nil once the account that started it was deleted; the person key stays.
    public var accountID: AccountID?
    /// The normalized email (see ``EmailAddress/personKey``) the trial is bound to.
    public var personKey: String
    public var startedAt: Date
    public var endsAt: Date
    public var storedStatus: StoredStatus

    public init(id: Int64, accountID: AccountID?, personKey: String, startedAt: Date, endsAt: Date, storedStatus: StoredStatus) {
        self.id = id
        self.accountID = accountID
        self.personKey = personKey
        self.startedAt = startedAt
        self.endsAt = endsAt
        self.storedStatus = storedStatus
    }

    /// The status at `now`: an active trial past its end has expired.
    public func status(at now: Date) -> Status {
        switch storedStatus {
        case .canceled: return .canceled
        case .active: return now < endsAt ? .active : .expired
        }
    }
}
