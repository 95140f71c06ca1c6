import Foundation
import PaywallCore

extension Trial {
    static let columns = "id, account_id, person_key, started_at, ends_at, status"

    init(row: SQLRow) {
        self.init(
            id: row[0],
            accountID: (row[1] as String?).map(AccountID.init(rawValue:)),
            personKey: row[2],
            startedAt: Date(millis: row[3]),
            endsAt: Date(millis: row[4]),
            storedStatus: Trial.StoredStatus(rawValue: row[5]) ?? .canceled
        )
    }
}

extension Store {
    /// Starts the one free trial of the account's person, lasting `duration`.
    /// Throws ``StoreError/trialAlreadyUsed(email:)`` if the account, or any account with
    /// the same normalized email (past or present), ever had one. Exact on any backend:
    /// `trials.person_key` and `trials.account_id` are UNIQUE, so of two concurrent starts
    /// (one server or several) only one can insert.
    public func startTrial(accountID: AccountID, duration: TimeInterval, actor: AuditActor) throws(StoreError) -> Trial {
        let now = clock.now()
        return try write { db in
            let email = try Self.requireAccount(db, accountID)
            let personKey = (try? EmailAddress(email))?.personKey ?? email.lowercased()
            let used = try db.fetchValue(Bool.self, "SELECT EXISTS (SELECT 1 FROM trials WHERE account_id = ? OR person_key = ?)", [accountID.rawValue, personKey]) ?? false
            if used { throw StoreError.trialAlreadyUsed(email: email) }
            let ends = now.addingTimeInterval(duration)
            let id = try db.insertedID("""
                INSERT INTO trials (account_id, person_key, started_at, ends_at, status) VALUES (?, ?, ?, ?, 'active')
                """, [accountID.rawValue, personKey, now.millis, ends.millis])
            try audit(db, actor: actor, action: "trial.start", target: "account:\(accountID)", details: [
                "trial": String(id), "endsAt": TimeText.format(ends),
            ])
            return Trial(id: id, accountID: accountID, personKey: personKey, startedAt: now, endsAt: ends, storedStatus: .active)
        }
    }

    /// The trial of an account, or nil if it never had one.
    public func trial(accountID: AccountID) throws(StoreError) -> Trial? {
        try cachedFact(group: "account:\(accountID.rawValue)", key: "trial") { () throws(StoreError) -> Trial? in
            try readHotSQL { db in try Self.trial(db, accountID: accountID) }
        }
    }

    /// The trial of an account, read on `db` (nil: it never had one).
    static let trialByAccountSQL = "SELECT \(Trial.columns) FROM trials WHERE account_id = ?"
    static let trialTakenSQL = "SELECT EXISTS (SELECT 1 FROM trials WHERE person_key = ?)"

    static func trial(_ db: any SQLConnection, accountID: AccountID) throws -> Trial? {
        try db.fetchOne(trialByAccountSQL, [accountID.rawValue]).map(Trial.init(row:))
    }

    /// The trial an earlier, deleted account of this person took (its account gone, the
    /// trial kept against the person): why a new account at the address gets none.
    public func earlierTrial(personKey: String) throws(StoreError) -> Trial? {
        try read { db in
            try db.fetchOne("SELECT \(Trial.columns) FROM trials WHERE person_key = ? AND account_id IS NULL", [personKey]).map(Trial.init(row:))
        }
    }

    /// Whether the person behind `email` may still start a free trial.
    public func isTrialEligible(email: EmailAddress) throws(StoreError) -> Bool {
        try isTrialEligible(personKey: email.personKey)
    }

    /// ``isTrialEligible(email:)`` by the email's ``EmailAddress/personKey``.
    public func isTrialEligible(personKey: String) throws(StoreError) -> Bool {
        try cachedFact(group: "person:\(personKey)", key: "eligible") { () throws(StoreError) -> Bool in
            try readHotSQL { db in
                !(try db.fetchValue(Bool.self, Self.trialTakenSQL, [personKey]) ?? false)
            }
        }
    }

    /// Ends an account's running trial early. The person still cannot start another.
    public func cancelTrial(accountID: AccountID, actor: AuditActor) throws(StoreError) -> Trial {
        try write { db in
            let email = try Self.requireAccount(db, accountID)
            guard var trial = try Self.trial(db, accountID: accountID) else { throw StoreError.trialNotFound(account: email) }
            let now = clock.now()
            // Only a running trial: one that ran its course stays "expired" in reports, not
            // "canceled by an admin", and a repeat writes nothing (no second audit entry).
            let status = trial.status(at: now)
            guard status == .active else { throw StoreError.trialNotRunning(account: email, status: status.rawValue) }
            // It ends now, not when it would have: what readers and reports then show.
            trial.endsAt = min(trial.endsAt, now)
            try db.execute("UPDATE trials SET status = 'canceled', ends_at = ? WHERE id = ?", [trial.endsAt.millis, trial.id])
            trial.storedStatus = .canceled
            try audit(db, actor: actor, action: "trial.cancel", target: "account:\(accountID)", details: ["trial": String(trial.id)])
            return trial
        }
    }
}
