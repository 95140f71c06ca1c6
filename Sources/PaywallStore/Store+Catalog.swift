import Foundation
import PaywallCore

extension Store {
    /// Adds a title to the catalog, with its (already validated) tags.
    public func addTitle(id: TitleID, name: String, publisher: String, tags: Set<String> = [], actor: AuditActor) throws(StoreError) -> Title {
        let title = Title(id: id, name: name, publisher: publisher, tags: tags, createdAt: clock.now())
        return try write { db in
            if try Self.titleExists(db, id) { throw StoreError.duplicateTitle(id.rawValue) }
            try db.execute("INSERT INTO titles (id, name, publisher, created_at) VALUES (?, ?, ?, ?)", [id.rawValue, name, publisher, title.createdAt.millis])
            try Self.insertTags(db, id, tags)
            try audit(db, actor: actor, action: "title.add", target: "title:\(id)", details: [
                "name": name, "publisher": publisher, "tags": tags.sorted().joined(separator: ","),
            ])
            return title
        }
    }

    /// Replaces a title's tags (audited as `title.set-tags`; the same tags again write
    /// nothing). Returns the title as stored.
    public func setTitleTags(id: TitleID, tags: Set<String>, actor: AuditActor) throws(StoreError) -> Title {
        try updateTitle(id: id, name: nil, publisher: nil, tags: tags, actor: actor, action: "title.set-tags")
    }

    /// Renames a title or its publisher, or replaces its tags (nil: unchanged), in one
    /// transaction. Its id, what every read, plan and policy names, never changes. Returns
    /// the title as stored.
    public func updateTitle(
        id: TitleID, name: String?, publisher: String?, tags: Set<String>? = nil, actor: AuditActor, action: String = "title.update"
    ) throws(StoreError) -> Title {
        try write { db in
            guard let before = try Self.title(db, id) else { throw StoreError.titleNotFound(id.rawValue) }
            var details: [String: String] = [:]
            if let name, name != before.name {
                try db.execute("UPDATE titles SET name = ? WHERE id = ?", [name, id.rawValue])
                details["name"] = name
                details["previous_name"] = before.name
            }
            if let publisher, publisher != before.publisher {
                try db.execute("UPDATE titles SET publisher = ? WHERE id = ?", [publisher, id.rawValue])
                details["publisher"] = publisher
                details["previous_publisher"] = before.publisher
            }
            if let tags, tags != before.tags {
                try db.execute("DELETE FROM title_tags WHERE title_id = ?", [id.rawValue])
                try Self.insertTags(db, id, tags)
                details["tags"] = tags.sorted().joined(separator: ",")
                details["previous_tags"] = before.tags.sorted().joined(separator: ",")
            }
            // Nothing to change writes nothing (not even the audit log).
            guard !details.isEmpty else { return before }
            try audit(db, actor: actor, action: action, target: "title:\(id)", details: details)
            guard let title = try Self.title(db, id) else { throw StoreError.titleNotFound(id.rawValue) }
            return title
        }
    }

    static func insertTags(_ db: any SQLConnection, _ id: TitleID, _ tags: Set<String>) throws {
        for tag in tags.sorted() {
            try db.execute("INSERT INTO title_tags (title_id, tag) VALUES (?, ?)", [id.rawValue, tag])
        }
    }

    /// Title columns with the tags folded into one text (tags are slugs: no commas).
    static func titleSelect(_ dialect: SQLDialect) -> String { """
        SELECT t.id, t.name, t.publisher, t.created_at,
               (SELECT \(dialect == .sqlite ? "group_concat(tag, ',')" : "string_agg(tag, ',')") FROM title_tags WHERE title_id = t.id),
               t.retired_at FROM titles t
        """ }

    private static func title(row: SQLRow) -> Title {
        let tags = (row[4] as String?).map { Set($0.split(separator: ",").map(String.init)) } ?? []
        return Title(
            id: TitleID(rawValue: row[0]), name: row[1], publisher: row[2], tags: tags, createdAt: Date(millis: row[3]),
            retiredAt: (row[5] as Int64?).map(Date.init(millis:)))
    }

    /// Takes a title out of the catalog (its publisher left): access checks of its articles
    /// answer 404 `title_retired`, no plan grants it (it leaves every plan that listed it,
    /// in the same transaction), no gift or comp names it; its reads stay, for the
    /// publisher's reports, and its id stays taken. Audited as `title.retire` with the plans
    /// it left. A retired title again writes nothing. Returns the title and the plans it
    /// left, with those that now grant no title at all.
    public func retireTitle(id: TitleID, actor: AuditActor) throws(StoreError) -> (title: Title, leftPlans: [PlanID], emptied: [PlanID]) {
        let now = storedNow()
        return try write { db in
            guard let before = try Self.title(db, id, lock: .update) else { throw StoreError.titleNotFound(id.rawValue) }
            if before.isRetired { return (before, [], []) }
            let plans = try db.fetchAll("SELECT plan_id FROM plan_titles WHERE title_id = ? ORDER BY plan_id", [id.rawValue])
                .map { PlanID(rawValue: $0[0]) }
            try db.execute("DELETE FROM plan_titles WHERE title_id = ?", [id.rawValue])
            var emptied: [PlanID] = []
            for plan in plans where try db.fetchValue(Int.self, "SELECT COUNT(*) FROM plan_titles WHERE plan_id = ?", [plan.rawValue]) == 0 {
                emptied.append(plan)
            }
            try db.execute("UPDATE titles SET retired_at = ? WHERE id = ?", [now.millis, id.rawValue])
            try audit(db, actor: actor, action: "title.retire", target: "title:\(id)", details: [
                "plans": plans.map(\.rawValue).joined(separator: ","), "emptiedPlans": emptied.map(\.rawValue).joined(separator: ","),
            ])
            guard let title = try Self.title(db, id) else { throw StoreError.titleNotFound(id.rawValue) }
            return (title, plans, emptied)
        }
    }

    /// Brings a retired title back into the catalog (audited as `title.restore`). The plans
    /// it left do not take it back by themselves: `plan update` says which do.
    public func restoreTitle(id: TitleID, actor: AuditActor) throws(StoreError) -> Title {
        try write { db in
            guard let before = try Self.title(db, id, lock: .update) else { throw StoreError.titleNotFound(id.rawValue) }
            guard let retired = before.retiredAt else { return before }
            try db.execute("UPDATE titles SET retired_at = NULL WHERE id = ?", [id.rawValue])
            try audit(db, actor: actor, action: "title.restore", target: "title:\(id)", details: ["retiredAt": TimeText.format(retired)])
            guard let title = try Self.title(db, id) else { throw StoreError.titleNotFound(id.rawValue) }
            return title
        }
    }

    static func titleByIDSQL(_ dialect: SQLDialect) -> String { "\(titleSelect(dialect)) WHERE t.id = ?" }

    /// A row lock on PostgreSQL (SQLite's writer holds the whole file).
    enum RowLock { case none, share, update }

    /// The title, read in the caller's transaction. `lock`: on PostgreSQL, `share` for a
    /// write that depends on the title staying as read (a plan or a gift naming it), `update`
    /// for one that changes it (retirement): a plan cannot take a title being retired, nor
    /// keep one retired meanwhile.
    static func title(_ db: any SQLConnection, _ id: TitleID, lock: RowLock = .none) throws -> Title? {
        let suffix = switch (db.dialect, lock) {
        case (.postgres, .share): " FOR SHARE OF t"
        case (.postgres, .update): " FOR UPDATE OF t"
        default: ""
        }
        return try db.fetchOne(titleByIDSQL(db.dialect) + suffix, [id.rawValue]).map(title(row:))
    }

    /// Every title, by id.
    public func titles() throws(StoreError) -> [Title] {
        try read { db in
            try db.fetchAll("\(Self.titleSelect(db.dialect)) ORDER BY t.id").map(Self.title(row:))
        }
    }

    /// The title with this id, or nil. (One statement, on every access check: a hot reader.)
    public func title(id: TitleID) throws(StoreError) -> Title? {
        try cachedFact(group: "catalog", key: "title:\(id.rawValue)") { () throws(StoreError) -> Title? in
            try readHot { hot in try hot.title(id: id.rawValue) }
        }
    }

    /// The title with this id while it is in the catalog: what access checks, gifts, comps
    /// and grants name. Throws ``StoreError/titleNotFound(_:)``, or
    /// ``StoreError/titleRetired(_:)`` once it left.
    public func catalogTitle(id: TitleID) throws(StoreError) -> Title {
        guard let title = try title(id: id) else { throw .titleNotFound(id.rawValue) }
        if title.isRetired { throw .titleRetired(id.rawValue) }
        return title
    }

    static func titleExists(_ db: any SQLConnection, _ id: TitleID) throws -> Bool {
        try db.fetchValue(Bool.self, "SELECT EXISTS (SELECT 1 FROM titles WHERE id = ?)", [id.rawValue]) ?? false
    }

    /// Adds a plan granting `bundle`. Every listed title must exist.
    public func addPlan(id: PlanID, name: String, period: BillingPeriod, bundle: TitleBundle, actor: AuditActor) throws(StoreError) -> Plan {
        let plan = Plan(id: id, name: name, period: period, bundle: bundle, createdAt: clock.now())
        return try write { db in
            if try Self.planExists(db, id) { throw StoreError.duplicatePlan(id.rawValue) }
            let listed = try Self.checkedTitles(db, bundle, plan: id)
            try db.execute("INSERT INTO plans (id, name, period, all_titles, created_at) VALUES (?, ?, ?, ?, ?)", [id.rawValue, name, period.rawValue, bundle == .all, plan.createdAt.millis])
            for title in listed {
                try db.execute("INSERT INTO plan_titles (plan_id, title_id) VALUES (?, ?)", [id.rawValue, title.rawValue])
            }
            try audit(db, actor: actor, action: "plan.add", target: "plan:\(id)", details: [
                "name": name, "period": period.rawValue,
                "titles": Self.auditText(bundle),
            ])
            return plan
        }
    }

    /// Renames a plan or replaces the titles it grants (nil: unchanged); every listed title
    /// must exist. Members of the plan read the new titles at once (a catalog change drops
    /// every server's cached facts); their access tokens, which carry the titles for the
    /// edge, say the old ones until they expire. The period stays: it is what the plan's
    /// memberships were sold and renewed on.
    public func updatePlan(id: PlanID, name: String?, bundle: TitleBundle?, actor: AuditActor) throws(StoreError) -> Plan {
        try write { db in
            guard let before = try Self.plan(db, id) else { throw StoreError.planNotFound(id.rawValue) }
            var details: [String: String] = [:]
            if let name, name != before.name {
                try db.execute("UPDATE plans SET name = ? WHERE id = ?", [name, id.rawValue])
                details["name"] = name
                details["previous_name"] = before.name
            }
            if let bundle, bundle != before.bundle {
                let listed = try Self.checkedTitles(db, bundle, plan: id)
                try db.execute("UPDATE plans SET all_titles = ? WHERE id = ?", [bundle == .all, id.rawValue])
                try db.execute("DELETE FROM plan_titles WHERE plan_id = ?", [id.rawValue])
                for title in listed {
                    try db.execute("INSERT INTO plan_titles (plan_id, title_id) VALUES (?, ?)", [id.rawValue, title.rawValue])
                }
                details["titles"] = Self.auditText(bundle)
                details["previous_titles"] = Self.auditText(before.bundle)
            }
            guard !details.isEmpty else { return before }
            try audit(db, actor: actor, action: "plan.update", target: "plan:\(id)", details: details)
            guard let plan = try Self.plan(db, id) else { throw StoreError.planNotFound(id.rawValue) }
            return plan
        }
    }

    /// Deletes a plan nothing refers to: no membership ever made of it (ended ones keep its
    /// history) and no billing product mapped to it; otherwise ``StoreError/planInUse(plan:memberships:mappings:)``
    /// and nothing is written. For a plan made by mistake; one that was sold stays (stop
    /// selling it by unmapping its prices). Audited as `plan.delete` with what it was.
    /// On PostgreSQL a membership inserted meanwhile holds a key-share lock on the plan's
    /// row, so the delete waits for it and then fails its foreign key: reported the same.
    public func deletePlan(id: PlanID, actor: AuditActor) throws(StoreError) -> Plan {
        try write { db in
            guard let plan = try Self.plan(db, id) else { throw StoreError.planNotFound(id.rawValue) }
            let memberships = try db.fetchValue(Int.self, "SELECT COUNT(*) FROM memberships WHERE plan_id = ?", [id.rawValue]) ?? 0
            let mappings = try db.fetchValue(Int.self, "SELECT COUNT(*) FROM billing_plans WHERE plan_id = ?", [id.rawValue]) ?? 0
            guard memberships == 0, mappings == 0 else { throw StoreError.planInUse(plan: id.rawValue, memberships: memberships, mappings: mappings) }
            do {
                try db.execute("DELETE FROM plans WHERE id = ?", [id.rawValue])  // its titles go with it (ON DELETE CASCADE)
            } catch where SQLConstraint.violated(by: error) == .foreignKey {
                throw StoreError.planInUse(plan: id.rawValue, memberships: 1, mappings: 0)
            }
            try audit(db, actor: actor, action: "plan.delete", target: "plan:\(id)", details: [
                "name": plan.name, "period": plan.period.rawValue, "titles": Self.auditText(plan.bundle),
            ])
            return plan
        }
    }

    /// A bundle's listed titles, sorted, each checked to exist (none for every title).
    static func checkedTitles(_ db: any SQLConnection, _ bundle: TitleBundle, plan: PlanID) throws -> [TitleID] {
        guard case let .titles(set) = bundle else { return [] }
        if set.isEmpty { throw StoreError.emptyBundle(plan: plan.rawValue) }
        let listed = set.sorted()
        for id in listed {
            guard let title = try Self.title(db, id, lock: .share) else { throw StoreError.titleNotFound(id.rawValue) }
            if title.isRetired { throw StoreError.titleRetired(id.rawValue) }
        }
        return listed
    }

    static func auditText(_ bundle: TitleBundle) -> String {
        switch bundle {
        case .all: "all"
        case let .titles(set): set.sorted().map(\.rawValue).joined(separator: ",")
        }
    }

    /// Every plan, by id.
    public func plans() throws(StoreError) -> [Plan] {
        try read { db in
            try db.fetchAll("SELECT id FROM plans ORDER BY id").compactMap { row in
                try Self.plan(db, PlanID(rawValue: row[0]))
            }
        }
    }

    /// The plan with this id, or nil. (One statement, on every access check: a hot reader.)
    public func plan(id: PlanID) throws(StoreError) -> Plan? {
        try readHotSQL { db in try Self.plan(db, id) }
    }

    /// One statement (title ids are slugs: no commas), so it is atomic on its own.
    static func plan(_ db: any SQLConnection, _ id: PlanID) throws -> Plan? {
        guard let row = try db.fetchOne("""
                SELECT p.id, p.name, p.period, p.all_titles, p.created_at,
                       (SELECT \(db.concatenated("title_id")) FROM plan_titles WHERE plan_id = p.id)
                FROM plans p WHERE p.id = ?
                """, [id.rawValue]
        ) else { return nil }
        let bundle: TitleBundle
        if row[3] as Bool {
            bundle = .all
        } else {
            let titles = (row[5] as String?).map { $0.split(separator: ",").map(String.init) } ?? []
            bundle = .titles(Set(titles.map(TitleID.init(rawValue:))))
        }
        let period = BillingPeriod(rawValue: row[2]) ?? .month
        return Plan(id: PlanID(rawValue: row[0]), name: row[1], period: period, bundle: bundle, createdAt: Date(millis: row[4]))
    }

    static func planExists(_ db: any SQLConnection, _ id: PlanID) throws -> Bool {
        try db.fetchValue(Bool.self, "SELECT EXISTS (SELECT 1 FROM plans WHERE id = ?)", [id.rawValue]) ?? false
    }
}
