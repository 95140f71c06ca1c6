import Foundation
import GRDB
import PaywallCore

extension Store {
    /// Adds a title to the catalog, with its (already validated) tags.
    public func addTitle(id: TitleID, name: String, publisher: String, tags: Set<String> = [], actor: AuditActor) throws(StoreError) -> Title {
        let title = Title(id: id, name: name, publisher: publisher, tags: tags, createdAt: clock.now())
        return try write { db in
            if try Self.titleExists(db, id) { throw StoreError.duplicateTitle(id.rawValue) }
            try db.cachedStatement(sql: "INSERT INTO titles (id, name, publisher, created_at) VALUES (?, ?, ?, ?)")
                .execute(arguments: [id.rawValue, name, publisher, title.createdAt.millis])
            try Self.insertTags(db, id, tags)
            try audit(db, actor: actor, action: "title.add", target: "title:\(id)", details: [
                "name": name, "publisher": publisher, "tags": tags.sorted().joined(separator: ","),
            ])
            return title
        }
    }

    /// Replaces a title's tags. Returns the title as stored.
    public func setTitleTags(id: TitleID, tags: Set<String>, actor: AuditActor) throws(StoreError) -> Title {
        try write { db in
            guard try Self.titleExists(db, id) else { throw StoreError.titleNotFound(id.rawValue) }
            try db.cachedStatement(sql: "DELETE FROM title_tags WHERE title_id = ?").execute(arguments: [id.rawValue])
            try Self.insertTags(db, id, tags)
            try audit(db, actor: actor, action: "title.set-tags", target: "title:\(id)", details: ["tags": tags.sorted().joined(separator: ",")])
            guard let title = try Self.title(db, id) else { throw StoreError.titleNotFound(id.rawValue) }
            return title
        }
    }

    static func insertTags(_ db: Database, _ id: TitleID, _ tags: Set<String>) throws {
        for tag in tags.sorted() {
            try db.cachedStatement(sql: "INSERT INTO title_tags (title_id, tag) VALUES (?, ?)").execute(arguments: [id.rawValue, tag])
        }
    }

    /// Title columns with the tags folded into one text (tags are slugs: no commas).
    static let titleSelect = """
        SELECT t.id, t.name, t.publisher, t.created_at,
               (SELECT group_concat(tag, ',') FROM title_tags WHERE title_id = t.id) FROM titles t
        """

    private static func title(row: Row) -> Title {
        let tags = (row[4] as String?).map { Set($0.split(separator: ",").map(String.init)) } ?? []
        return Title(id: TitleID(rawValue: row[0]), name: row[1], publisher: row[2], tags: tags, createdAt: Date(millis: row[3]))
    }

    static func title(_ db: Database, _ id: TitleID) throws -> Title? {
        try Row.fetchOne(db.cachedStatement(sql: "\(titleSelect) WHERE t.id = ?"), arguments: [id.rawValue]).map(title(row:))
    }

    /// Every title, by id.
    public func titles() throws(StoreError) -> [Title] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: "\(Self.titleSelect) ORDER BY t.id")).map(Self.title(row:))
        }
    }

    /// The title with this id, or nil. (One statement, on every access check: a hot reader.)
    public func title(id: TitleID) throws(StoreError) -> Title? {
        try readHot { reader, db in try reader.title(id: id.rawValue, db) }
    }

    static func titleExists(_ db: Database, _ id: TitleID) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM titles WHERE id = ?)"), arguments: [id.rawValue]) ?? false
    }

    /// Adds a plan granting `bundle`. Every listed title must exist.
    public func addPlan(id: PlanID, name: String, period: BillingPeriod, bundle: TitleBundle, actor: AuditActor) throws(StoreError) -> Plan {
        let plan = Plan(id: id, name: name, period: period, bundle: bundle, createdAt: clock.now())
        return try write { db in
            if try Self.planExists(db, id) { throw StoreError.duplicatePlan(id.rawValue) }
            var listed: [TitleID] = []
            if case let .titles(set) = bundle {
                if set.isEmpty { throw StoreError.emptyBundle(plan: id.rawValue) }
                listed = set.sorted()
                for title in listed where try !Self.titleExists(db, title) {
                    throw StoreError.titleNotFound(title.rawValue)
                }
            }
            try db.cachedStatement(sql: "INSERT INTO plans (id, name, period, all_titles, created_at) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [id.rawValue, name, period.rawValue, bundle == .all, plan.createdAt.millis])
            for title in listed {
                try db.cachedStatement(sql: "INSERT INTO plan_titles (plan_id, title_id) VALUES (?, ?)")
                    .execute(arguments: [id.rawValue, title.rawValue])
            }
            try audit(db, actor: actor, action: "plan.add", target: "plan:\(id)", details: [
                "name": name, "period": period.rawValue,
                "titles": bundle == .all ? "all" : listed.map(\.rawValue).joined(separator: ","),
            ])
            return plan
        }
    }

    /// Every plan, by id.
    public func plans() throws(StoreError) -> [Plan] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT id FROM plans ORDER BY id").compactMap { row in
                try Self.plan(db, PlanID(rawValue: row[0]))
            }
        }
    }

    /// The plan with this id, or nil. (One statement, on every access check: a hot reader.)
    public func plan(id: PlanID) throws(StoreError) -> Plan? {
        try readHot { _, db in try Self.plan(db, id) }
    }

    /// One statement (title ids are slugs: no commas), so it is atomic on its own.
    static func plan(_ db: Database, _ id: PlanID) throws -> Plan? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: """
                SELECT p.id, p.name, p.period, p.all_titles, p.created_at,
                       (SELECT group_concat(title_id, ',') FROM plan_titles WHERE plan_id = p.id)
                FROM plans p WHERE p.id = ?
                """), arguments: [id.rawValue]
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

    static func planExists(_ db: Database, _ id: PlanID) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM plans WHERE id = ?)"), arguments: [id.rawValue]) ?? false
    }
}
