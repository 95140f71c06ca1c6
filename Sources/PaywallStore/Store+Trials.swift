import Foundation
import GRDB
import PaywallCore

extension Trial {
    static let columns = "id, account_id, person_key, started_at, ends_at, status"

    init(row: Row) {
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
    /// the same normalized email (past or present), ever had one.
    public func startTrial(accountID: AccountID, duration: TimeInterval, actor: AuditActor) throws(StoreError) -> Trial {
        let now = clock.now()
        return try write { db in
            let email = try Self.requireAccount(db, accountID)
            let personKey = (try? EmailAddress(email))?.personKey ?? email.lowercased()
            let used = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM trials WHERE account_id = ? OR person_key = ?)"),
                arguments: [accountID.rawValue, personKey]) ?? false
            if used { throw StoreError.trialAlreadyUsed(email: email) }
            let ends = now.addingTimeInterval(duration)
            try db.cachedStatement(sql: """
                INSERT INTO trials (account_id, person_key, started_at, ends_at, status) VALUES (?, ?, ?, ?, 'active')
                """).execute(arguments: [accountID.rawValue, personKey, now.millis, ends.millis])
            let id = db.lastInsertedRowID
            try audit(db, actor: actor, action: "trial.start", target: "account:\(accountID)", details: [
                "trial": String(id), "endsAt": TimeText.format(ends),
            ])
            return Trial(id: id, accountID: accountID, personKey: personKey, startedAt: now, endsAt: ends, storedStatus: .active)
        }
    }

    /// The trial of an account, or nil if it never had one.
    public func trial(accountID: AccountID) throws(StoreError) -> Trial? {
        try readHot { _, db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Trial.columns) FROM trials WHERE account_id = ?"), arguments: [accountID.rawValue])
                .map(Trial.init(row:))
        }
    }

    /// Whether the person behind `email` may still start a free trial.
    public func isTrialEligible(email: EmailAddress) throws(StoreError) -> Bool {
        try readHot { _, db in
            !(try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM trials WHERE person_key = ?)"), arguments: [email.personKey]) ?? false)
        }
    }

    /// Ends an account's running trial early. The person still cannot start another.
    public func cancelTrial(accountID: AccountID, actor: AuditActor) throws(StoreError) -> Trial {
        try write { db in
            let email = try Self.requireAccount(db, accountID)
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Trial.columns) FROM trials WHERE account_id = ?"), arguments: [accountID.rawValue])
            else { throw StoreError.trialNotFound(account: email) }
            var trial = Trial(row: row)
            try db.cachedStatement(sql: "UPDATE trials SET status = 'canceled' WHERE id = ?").execute(arguments: [trial.id])
            trial.storedStatus = .canceled
            try audit(db, actor: actor, action: "trial.cancel", target: "account:\(accountID)", details: ["trial": String(trial.id)])
            return trial
        }
    }
}
