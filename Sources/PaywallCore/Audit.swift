import Foundation

/// Who made a change: an administrator, the reader themself, or the system.
public struct AuditActor: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// An administrator, e.g. `admin:alice` (the CLI uses the OS user name).
    public static func admin(_ name: String) -> AuditActor { AuditActor(rawValue: "admin:\(name)") }
    /// The reader acting on their own account.
    public static func account(_ id: AccountID) -> AuditActor { AuditActor(rawValue: "account:\(id.rawValue)") }
    /// The service itself (expiry jobs, upgrades).
    public static let system = AuditActor(rawValue: "system")
    public var description: String { rawValue }
}

/// One append-only record of a change.
public struct AuditEntry: Hashable, Sendable {
    public var id: Int64
    public var at: Date
    public var actor: AuditActor
    /// A dotted verb, e.g. `account.create`, `membership.cancel`.
    public var action: String
    /// What was changed, e.g. `account:…`, `title:euronews`.
    public var target: String
    /// Details as a JSON object string (never secrets).
    public var details: String

    public init(id: Int64, at: Date, actor: AuditActor, action: String, target: String, details: String) {
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.details = details
    }
}
