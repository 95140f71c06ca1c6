import Foundation
import GRDB
import PaywallCore

extension Store {
    /// Adds a title to the catalog.
    public func addTitle(id: TitleID, name: String, publisher: String, actor: AuditActor) throws(StoreError) -> Title {
        let title = Title(id: id, name: name, publisher: publisher, createdAt: clock.now())
        return try write { db in
            if try Self.titleExists(db, id) { throw StoreError.duplicateTitle(id.rawValue) }
            try db.cachedStatement(sql: "INSERT INTO titles (id, name, publisher, created_at) VALUES (?, ?, ?, ?)")
                .execute(arguments: [id.rawValue, name, publisher, title.createdAt.millis])
            try audit(db, actor: actor, action: "title.add", target: "title:\(id)", details: ["name": name, "publisher": publisher])
            return title
        }
    }

    /// Every title, by id.
    public func titles() throws(StoreError) -> [Title] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT id, name, publisher, created_at FROM titles ORDER BY id").map {
                Title(id: TitleID(rawValue: $0[0]), name: $0[1], publisher: $0[2], createdAt: Date(millis: $0[3]))
            }
        }
    }

    /// The title with this id, or nil.
    public func title(id: TitleID) throws(StoreError) -> Title? {
        try read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT id, name, publisher, created_at FROM titles WHERE id = ?"), arguments: [id.rawValue]).map {
                Title(id: TitleID(rawValue: $0[0]), name: $0[1], publisher: $0[2], createdAt: Date(millis: $0[3]))
            }
        }
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

    /// The plan with this id, or nil.
    public func plan(id: PlanID) throws(StoreError) -> Plan? {
        try read { db in try Self.plan(db, id) }
    }

    static func plan(_ db: Database, _ id: PlanID) throws -> Plan? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT id, name, period, all_titles, created_at FROM plans WHERE id = ?"), arguments: [id.rawValue]
        ) else { return nil }
        let bundle: TitleBundle
        if row[3] as Bool {
            bundle = .all
        } else {
            let titles = try String.fetchAll(db.cachedStatement(sql: "SELECT title_id FROM plan_titles WHERE plan_id = ?"), arguments: [id.rawValue])
            bundle = .titles(Set(titles.map(TitleID.init(rawValue:))))
        }
        let period = BillingPeriod(rawValue: row[2]) ?? .month
        return Plan(id: PlanID(rawValue: row[0]), name: row[1], period: period, bundle: bundle, createdAt: Date(millis: row[4]))
    }

    static func planExists(_ db: Database, _ id: PlanID) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM plans WHERE id = ?)"), arguments: [id.rawValue]) ?? false
    }
}
