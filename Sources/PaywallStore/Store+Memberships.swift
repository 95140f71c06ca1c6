import Foundation
import PaywallCore

extension Membership {
    static let columns = """
        id, account_id, plan_id, status, current_period_end, grace_period_end, cancel_at_period_end, source, created_at, updated_at
        """

    init(row: SQLRow) {
        self.init(
            id: row[0],
            accountID: AccountID(rawValue: row[1]),
            planID: PlanID(rawValue: row[2]),
            status: MembershipStatus(rawValue: row[3]) ?? .expired,
            currentPeriodEnd: Date(millis: row[4]),
            gracePeriodEnd: (row[5] as Int64?).map(Date.init(millis:)),
            cancelAtPeriodEnd: row[6],
            source: MembershipSource(rawValue: row[7]),
            createdAt: Date(millis: row[8]),
            updatedAt: Date(millis: row[9])
        )
    }
}

extension Store {
    /// Grants `accountID` a membership of `planID` until `periodEnd`.
    ///
    /// If the account already has a canceled or past-due membership of the plan, that one
    /// is reactivated (its history continues); an active one is an error.
    public func grantMembership(
        accountID: AccountID, planID: PlanID, periodEnd: Date, source: MembershipSource,
        actor: AuditActor, reason: String? = nil
    ) throws(StoreError) -> Membership {
        let now = clock.now()
        return try write { db in
            let email = try Self.requireAccount(db, accountID)
            guard try Self.planExists(db, planID) else { throw StoreError.planNotFound(planID.rawValue) }
            // Memberships paid through a provider are the provider's to change (v10-billing):
            // an admin grant beside one is a membership of its own.
            if let row = try db.fetchOne(
                "SELECT \(Membership.columns) FROM memberships WHERE account_id = ? AND plan_id = ? AND status != 'expired' AND source NOT IN ('stripe', 'apple')",
                [accountID.rawValue, planID.rawValue]
            ) {
                let existing = Membership(row: row)
                if existing.effectiveStatus(at: now) == .active {
                    throw StoreError.membershipExists(account: email, plan: planID.rawValue, status: existing.status.rawValue)
                }
                try db.execute("""
                    UPDATE memberships SET status = 'active', current_period_end = ?, grace_period_end = NULL,
                        cancel_at_period_end = 0, source = ?, updated_at = ? WHERE id = ?
                    """, [periodEnd.millis, source.rawValue, now.millis, existing.id])
                try Self.recordTransition(db, id: existing.id, from: existing.status, to: .active, at: now, actor: actor, reason: reason ?? "granted again")
                try audit(db, actor: actor, action: "membership.grant", target: "account:\(accountID)", details: [
                    "membership": String(existing.id), "plan": planID.rawValue, "periodEnd": TimeText.format(periodEnd), "source": source.rawValue,
                ])
                return try Self.membership(db, existing.id)
            }
            let id = try db.insertedID("""
                INSERT INTO memberships (account_id, plan_id, status, current_period_end, grace_period_end, cancel_at_period_end, source, created_at, updated_at)
                VALUES (?, ?, 'active', ?, NULL, 0, ?, ?, ?)
                """, [accountID.rawValue, planID.rawValue, periodEnd.millis, source.rawValue, now.millis, now.millis])
            try Self.recordTransition(db, id: id, from: nil, to: .active, at: now, actor: actor, reason: reason ?? "granted")
            try audit(db, actor: actor, action: "membership.grant", target: "account:\(accountID)", details: [
                "membership": String(id), "plan": planID.rawValue, "periodEnd": TimeText.format(periodEnd), "source": source.rawValue,
            ])
            return try Self.membership(db, id)
        }
    }

    /// Cancels a membership. By default it stays readable until the current period ends
    /// (status `canceled`); `immediately` ends access now (status `expired`).
    public func cancelMembership(id: Int64, immediately: Bool, actor: AuditActor, reason: String? = nil) throws(StoreError) -> Membership {
        try changeStatus(id: id, to: immediately ? .expired : .canceled, graceEnd: nil, actor: actor, reason: reason ?? (immediately ? "canceled immediately" : "canceled"))
    }

    /// Marks a membership to cancel at the end of its period without changing its status.
    public func scheduleCancellation(id: Int64, actor: AuditActor) throws(StoreError) -> Membership {
        let now = clock.now()
        return try write { db in
            let current = try Self.membership(db, id)
            guard current.status == .active || current.status == .pastDue else {
                throw StoreError.invalidTransition(from: current.status.rawValue, to: "cancel at period end")
            }
            // Asked again: already so; nothing written, no second audit entry.
            guard !current.cancelAtPeriodEnd else {
                throw StoreError.invalidTransition(from: "\(current.status.rawValue), not renewing", to: "cancel at period end")
            }
            try db.execute("UPDATE memberships SET cancel_at_period_end = 1, updated_at = ? WHERE id = ?", [now.millis, id])
            try audit(db, actor: actor, action: "membership.schedule-cancel", target: "account:\(current.accountID)", details: ["membership": String(id)])
            return try Self.membership(db, id)
        }
    }

    /// Moves a membership to `status`, recording the change in its history and the audit
    /// log. `graceEnd` is required for `past_due` (access lasts until then).
    public func changeStatus(id: Int64, to status: MembershipStatus, graceEnd: Date?, actor: AuditActor, reason: String?) throws(StoreError) -> Membership {
        let now = clock.now()
        return try write { db in
            let current = try Self.membership(db, id)
            guard Self.allowed(from: current.status, to: status) else {
                throw StoreError.invalidTransition(from: current.status.rawValue, to: status.rawValue)
            }
            // Past due: the grace end given. Active again: no grace. Canceled or expired: the
            // grace end kept, so one canceled while past due reads only until then
            // (``Membership/accessEnd``).
            let grace: Int64? = switch status {
            case .pastDue: (graceEnd ?? current.currentPeriodEnd).millis
            case .active: nil
            case .canceled, .expired: current.gracePeriodEnd?.millis
            }
            try db.execute("UPDATE memberships SET status = ?, grace_period_end = ?, updated_at = ? WHERE id = ?", [status.rawValue, grace, now.millis, id])
            try Self.recordTransition(db, id: id, from: current.status, to: status, at: now, actor: actor, reason: reason)
            try audit(db, actor: actor, action: "membership.status", target: "account:\(current.accountID)", details: [
                "membership": String(id), "from": current.status.rawValue, "to": status.rawValue,
            ])
            return try Self.membership(db, id)
        }
    }

    /// The allowed stored-status changes; `expired` is final.
    static func allowed(from: MembershipStatus, to: MembershipStatus) -> Bool {
        switch (from, to) {
        case (.expired, _): false
        case let (a, b) where a == b: false
        case (.active, _), (.pastDue, _): true
        case (.canceled, .expired), (.canceled, .active): true
        case (.canceled, _): false
        }
    }

    /// The membership with this id.
    public func membership(id: Int64) throws(StoreError) -> Membership {
        try read { db in try Self.membership(db, id) }
    }

    /// An account's memberships, newest first.
    public func memberships(accountID: AccountID) throws(StoreError) -> [Membership] {
        // One statement, on every access check: a hot reader (see HotReaders).
        try readHotSQL { db in try Self.memberships(db, accountID: accountID) }
    }

    /// An account's memberships, newest first, read on `db`.
    static func memberships(_ db: any SQLConnection, accountID: AccountID) throws -> [Membership] {
        try db.fetchAll("SELECT \(Membership.columns) FROM memberships WHERE account_id = ? ORDER BY id DESC", [accountID.rawValue])
            .map(Membership.init(row:))
    }

    /// Every membership of the account, newest first, each with the titles its plan
    /// grants: one statement on a hot reader (every access check reads it).
    public func membershipsWithBundles(accountID: AccountID) throws(StoreError) -> [MembershipWithBundle] {
        try cachedFact(group: "account:\(accountID.rawValue)", key: "memberships") { () throws(StoreError) -> [MembershipWithBundle] in
            try readMembershipsWithBundles(accountID: accountID)
        }
    }

    /// ``membershipsWithBundles(accountID:)`` read from the database (not the cache).
    func readMembershipsWithBundles(accountID: AccountID) throws(StoreError) -> [MembershipWithBundle] {
        try readHot { hot in try hot.membershipsWithBundles(accountID: accountID.rawValue).map(MembershipWithBundle.init) }
    }

    /// A membership and its plan's titles (a struct: a tuple is not Sendable).
    public struct MembershipWithBundle: Sendable {
        public var membership: Membership
        public var bundle: TitleBundle
        public init(_ pair: (Membership, TitleBundle)) { (membership, bundle) = pair }
    }

    /// A membership's status changes, oldest first.
    public func membershipHistory(id: Int64) throws(StoreError) -> [MembershipStatusChange] {
        try read { db in
            try db.fetchAll("SELECT membership_id, from_status, to_status, at, actor, reason FROM membership_events WHERE membership_id = ? ORDER BY id", [id]
            ).map { row in
                MembershipStatusChange(
                    membershipID: row[0], from: (row[1] as String?).flatMap(MembershipStatus.init(rawValue:)),
                    to: MembershipStatus(rawValue: row[2]) ?? .expired, at: Date(millis: row[3]), actor: row[4], reason: row[5])
            }
        }
    }

    static func membership(_ db: any SQLConnection, _ id: Int64) throws -> Membership {
        guard let row = try db.fetchOne("SELECT \(Membership.columns) FROM memberships WHERE id = ?", [id]) else {
            throw StoreError.membershipNotFound("#\(id)")
        }
        return Membership(row: row)
    }

    static func recordTransition(_ db: any SQLConnection, id: Int64, from: MembershipStatus?, to: MembershipStatus, at: Date, actor: AuditActor, reason: String?) throws {
        try db.execute("INSERT INTO membership_events (membership_id, from_status, to_status, at, actor, reason) VALUES (?, ?, ?, ?, ?, ?)", [id, from?.rawValue, to.rawValue, at.millis, actor.rawValue, reason])
    }
}
