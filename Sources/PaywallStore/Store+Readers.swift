import Foundation
import PaywallCore

/// A sign-in's new session, and the sessions the cap ended to make room for it.
public struct StartedSession: Sendable {
    /// The refresh token, shown once; the store keeps its SHA-256 only.
    public var token: String
    public var session: RefreshSession
    public var active: ActiveSession
    /// Least recently used sessions ended because the account was at its cap.
    public var ended: [ActiveSession]
}

extension Store {
    // MARK: - Accounts with a device's reads

    /// Creates an account and, when `device` is given, moves that device's recorded reads
    /// to it, in one transaction: the account never exists without the meter it was
    /// promised, and the reads are never counted twice. The move is audited
    /// (`meter.carry-over`, with the number of reads). Returns the account and how many
    /// reads moved.
    public func createAccount(
        email: EmailAddress, displayName: String?, passwordHash: String, carryingReadsOf device: String?, actor: AuditActor
    ) throws(StoreError) -> (Account, Int) {
        let now = storedNow()
        let account = Account(id: .generate(), email: email.value, displayName: displayName, createdAt: now, updatedAt: now)
        guard let device else {
            return try write { db in
                try insertAccount(db, account, emailKey: email.lookupKey, passwordHash: passwordHash, actor: actor)
                return (account, 0)
            }
        }
        return try writeLockingMeters([MeterSubject.account(account.id).key, MeterSubject.device(device).key]) { db in
            try insertAccount(db, account, emailKey: email.lookupKey, passwordHash: passwordHash, actor: actor)
            return (account, try moveReads(db, from: .device(device), to: account.id, actor: actor))
        }
    }

    /// Moves every read of a device to an account (a reader signing up keeps the meter the
    /// device had), audited as `meter.carry-over`. Returns how many reads moved.
    @discardableResult
    public func moveDeviceReads(device: String, to accountID: AccountID, actor: AuditActor) throws(StoreError) -> Int {
        try writeLockingMeters([MeterSubject.account(accountID).key, MeterSubject.device(device).key]) { db in
            try Self.requireAccount(db, accountID)
            return try moveReads(db, from: .device(device), to: accountID, actor: actor)
        }
    }

    private func moveReads(_ db: any SQLConnection, from subject: MeterSubject, to accountID: AccountID, actor: AuditActor) throws -> Int {
        try db.lockMeters([MeterSubject.account(accountID).key, subject.key])
        let moved = try db.execute("UPDATE reads SET subject = ? WHERE subject = ?", [MeterSubject.account(accountID).key, subject.key])
        if moved > 0 {
            try audit(db, actor: actor, action: "meter.carry-over", target: "account:\(accountID)", details: [
                "from": subject.key, "reads": String(moved),
            ])
        }
        return moved
    }

    // MARK: - Sessions as readers see them

    /// Starts a session (a new family) named after the reader's device, and keeps the
    /// account within `maximum` sessions: past it, the least recently used sessions end
    /// (audited as `session.evict`), in the same transaction as the new one starts, so
    /// two sign-ins at once cannot both slip under the cap.
    /// `passwordHash`: the hash a sign-in checked the password against; the session starts
    /// only if it is still the account's (``StoreError/passwordChanged`` otherwise). The
    /// check and the session are two transactions, the hash's work between them: a reset
    /// committed in between ended the sessions there were and then met this new one, which
    /// outlived it with the old password (found in review).
    public func startSession(
        accountID: AccountID, lifetime: TimeInterval, deviceName: String?, maximum: Int, passwordHash: String? = nil
    ) throws(StoreError) -> StartedSession {
        let token = try RefreshToken.generate()
        let now = storedNow()
        let session = RefreshSession(
            id: UUID().uuidString.lowercased(), accountID: accountID, familyID: UUID().uuidString.lowercased(),
            createdAt: now, expiresAt: Self.stored(now.addingTimeInterval(min(lifetime, sessionFamilyLifetime))), revokedAt: nil,
            familyStartedAt: now)
        let ended: [ActiveSession] = try write { db in
            try Self.requireAccount(db, accountID)
            if let passwordHash { try Self.requirePasswordHash(db, accountID, passwordHash) }
            try Self.insertSession(db, session, tokenHash: RefreshToken.hash(token.text))
            try db.execute("INSERT INTO session_devices (family_id, account_id, device_name) VALUES (?, ?, ?)", [session.familyID, accountID.rawValue, deviceName])
            // The others, most recently used first: the new session always stays.
            let others = try activeSessions(db, accountID: accountID, now: now).filter { $0.id != session.familyID }
            let over = others.count - (max(1, maximum) - 1)
            guard over > 0 else { return [] }
            let evicted = Array(others.suffix(over))
            // The evicted device's access token must end with its session (so must the
            // others'; they refresh). The new session's token is issued after this commits.
            try Self.endAccessTokens(db, accountID: accountID)
            for victim in evicted {
                try revokeFamily(db, victim.id, now: now)
                try audit(db, actor: .system, action: "session.evict", target: "account:\(accountID)", details: [
                    "session": victim.id, "reason": "more than \(max(1, maximum)) sessions",
                ])
            }
            return evicted
        }
        let active = ActiveSession(
            id: session.familyID, accountID: accountID, deviceName: deviceName, startedAt: now, lastUsedAt: now, expiresAt: session.expiresAt)
        return StartedSession(token: token.text, session: session, active: active, ended: ended)
    }

    /// Notes that a web page was seen with `session` (a session cookie's), at most once an
    /// hour: its last use, which the reader's device list shows and the session cap evicts
    /// by (a browser in daily use was the "least recently used" and went first), and its
    /// expiry moved to `lifetime` from now, within its family's limit, as an app's refresh
    /// moves it. Pages do not rotate the cookie's token (a write per view, and a race
    /// between tabs); this is one small write an hour. Returns the new expiry when it
    /// moved (the cookie is set again to match), nil when nothing was written.
    public func noteWebSessionUse(_ session: RefreshSession, lifetime: TimeInterval) throws(StoreError) -> Date? {
        let now = storedNow()
        let noted = try read { db in
            try db.fetchValue(Int64.self, "SELECT last_used_at FROM session_devices WHERE family_id = ?", [session.familyID])
        }
        let lastUsed = max(session.createdAt, noted.map(Date.init(millis:)) ?? .distantPast)
        guard now.timeIntervalSince(lastUsed) >= Self.webSessionUseInterval else { return nil }
        let familyEnd = session.familyStartedAt.addingTimeInterval(sessionFamilyLifetime)
        let expiry = Self.stored(max(session.expiresAt, min(now.addingTimeInterval(lifetime), familyEnd)))
        return try write { db -> Date? in
            // Only while it is the family's live token: a sign-out committed meanwhile must
            // not be undone, nor an ended session shown as used.
            let live = try db.execute(
                "UPDATE sessions SET expires_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?", [expiry.millis, session.id, now.millis])
            guard live == 1 else { return nil }
            // A family begun without a device row (the CLI's sessions, those from before v7)
            // gets one: without it the use was never noted, and written on every view.
            try db.execute("""
                INSERT INTO session_devices (family_id, account_id, device_name, last_used_at) VALUES (?, ?, NULL, ?)
                ON CONFLICT (family_id) DO UPDATE SET last_used_at = excluded.last_used_at
                """, [session.familyID, session.accountID.rawValue, now.millis])
            return expiry > session.expiresAt ? expiry : nil
        }
    }

    /// How often a web session's use is written at most.
    static let webSessionUseInterval: TimeInterval = 3_600

    /// An account's sessions in use (one per live family), most recently used first.
    public func sessionsInUse(accountID: AccountID) throws(StoreError) -> [ActiveSession] {
        let now = clock.now()
        return try read { db in try activeSessions(db, accountID: accountID, now: now) }
    }

    /// A session (family) of an account that has ended, as its data export lists it: the
    /// device's name, when it began and when it ended (signed out, revoked or expired).
    public struct EndedSession: Sendable, Equatable {
        public var deviceName: String?
        public var startedAt: Date
        public var endedAt: Date
    }

    /// An account's ended sessions still on record (rows are pruned a week after they
    /// expire), most recently ended first.
    public func endedSessions(accountID: AccountID) throws(StoreError) -> [EndedSession] {
        let now = clock.now()
        return try read { db in
            let live = Set(try activeSessions(db, accountID: accountID, now: now).map(\.id))
            return try db.fetchAll("""
                    SELECT s.family_id, MIN(s.family_started_at), MAX(COALESCE(s.revoked_at, s.expires_at)), MAX(d.device_name)
                    FROM sessions AS s LEFT JOIN session_devices AS d ON d.family_id = s.family_id
                    WHERE s.account_id = ?
                    GROUP BY s.family_id
                    """, [accountID.rawValue]
            ).compactMap { row -> (Date, EndedSession)? in
                let family: String = row[0]
                guard !live.contains(family) else { return nil }
                let ended = Date(millis: row[2])
                return (ended, EndedSession(deviceName: row[3], startedAt: Date(millis: row[1]), endedAt: min(ended, now)))
            }
            .sorted { $0.0 > $1.0 }
            .map(\.1)
        }
    }

    /// The live session (family) holding this refresh token, as readers see it; nil when
    /// the token is unknown, spent, revoked or expired.
    public func sessionInUse(token: String) throws(StoreError) -> ActiveSession? {
        guard let session = try session(token: token) else { return nil }
        return try sessionsInUse(accountID: session.accountID).first { $0.id == session.familyID }
    }

    private func activeSessions(_ db: any SQLConnection, accountID: AccountID, now: Date) throws -> [ActiveSession] {
        // A family has at most one row neither revoked nor rotated: its current token.
        // Ties (the same millisecond) go to the later insert.
        // Last used: the current token's making (a sign-in or refresh), or a web page seen
        // since (``noteWebSessionUse(_:lifetime:)``), whichever is later.
        let lastUsed = db.dialect == .sqlite ? "MAX(s.created_at, COALESCE(d.last_used_at, 0))" : "GREATEST(s.created_at, d.last_used_at)"
        return try db.fetchAll("""
                SELECT s.family_id, s.family_started_at, \(lastUsed) AS last_used, s.expires_at, d.device_name
                FROM sessions AS s LEFT JOIN session_devices AS d ON d.family_id = s.family_id
                WHERE s.account_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND s.family_started_at > ?
                ORDER BY last_used DESC, s.\(db.dialect == .sqlite ? "rowid" : "seq") DESC
                """, [accountID.rawValue, now.millis, now.addingTimeInterval(-sessionFamilyLifetime).millis]
        ).map { row in
            ActiveSession(
                id: row[0], accountID: accountID, deviceName: row[4], startedAt: Date(millis: row[1]),
                lastUsedAt: Date(millis: row[2]), expiresAt: Date(millis: row[3]))
        }
    }

    /// Ends one of the account's sessions (by its family id), audited as `session.revoke`.
    /// Throws ``StoreError/sessionNotFound`` when the account has no such live session
    /// (another account's session is not found either: ids are not confirmed to strangers).
    /// `bySelf`: the session's own device signs out (it drops its access token itself).
    /// Otherwise (a device signed out from another, support) the account's access tokens
    /// end too (``Account/signOutsEverywhere``): the device signed out must not go on
    /// reading, giving gifts or signing the owner out with the token it holds.
    @discardableResult
    public func revokeSession(id: String, accountID: AccountID, actor: AuditActor, bySelf: Bool = false) throws(StoreError) -> ActiveSession {
        let now = storedNow()
        return try write { db in
            guard let session = try activeSessions(db, accountID: accountID, now: now).first(where: { $0.id == id }) else {
                throw StoreError.sessionNotFound
            }
            try revokeFamily(db, id, now: now)
            if !bySelf { try Self.endAccessTokens(db, accountID: accountID) }
            try audit(db, actor: actor, action: "session.revoke", target: "account:\(accountID)", details: ["session": id])
            return session
        }
    }

    /// Revokes every token of a family and drops its sealed successors, so a rotated token
    /// presented within the grace window opens nothing.
    private func revokeFamily(_ db: any SQLConnection, _ familyID: String, now: Date) throws {
        try db.execute("UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?), successor_sealed = NULL WHERE family_id = ?", [now.millis, familyID])
    }
}
