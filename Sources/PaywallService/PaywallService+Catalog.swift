import Foundation
import PaywallCore
import PaywallStore

extension PaywallService {
    /// Adds a title after validating its id (a slug), name, publisher and tags.
    public func addTitle(id: String, name: String, publisher: String, tags: [String] = [], actor: AuditActor) throws(ServiceError) -> Title {
        try mapped {
            let slug = try TitleID(validating: id)
            return try store.addTitle(
                id: slug, name: validatedName(name, kind: "title"), publisher: validatedName(publisher, kind: "publisher"),
                tags: Title.validatedTags(tags), actor: actor)
        }
    }

    /// Replaces a title's tags (what policies read as `title.tags`).
    public func setTitleTags(id: String, tags: [String], actor: AuditActor) throws(ServiceError) -> Title {
        try mapped { try store.setTitleTags(id: TitleID(validating: id), tags: Title.validatedTags(tags), actor: actor) }
    }

    /// A title leaves the catalog (its publisher left the aggregator): see
    /// ``Store/retireTitle(id:actor:)``. Returns the title, the plans it left and those that
    /// now grant no title.
    public func retireTitle(id: String, actor: AuditActor) throws(ServiceError) -> (title: Title, leftPlans: [PlanID], emptied: [PlanID]) {
        try mapped { try store.retireTitle(id: TitleID(validating: id), actor: actor) }
    }

    /// Deletes a plan nothing refers to (made by mistake): see ``Store/deletePlan(id:actor:)``.
    public func deletePlan(id: String, actor: AuditActor) throws(ServiceError) -> Plan {
        try mapped { try store.deletePlan(id: PlanID(validating: id), actor: actor) }
    }

    /// A retired title back in the catalog (no plan takes it back by itself).
    public func restoreTitle(id: String, actor: AuditActor) throws(ServiceError) -> Title {
        try mapped { try store.restoreTitle(id: TitleID(validating: id), actor: actor) }
    }

    /// Renames a title or its publisher, or replaces its tags (nil: unchanged; at least one
    /// is needed), all or nothing. The id never changes: reads, plans and policies name it.
    public func updateTitle(id: String, name: String?, publisher: String?, tags: [String]? = nil, actor: AuditActor) throws(ServiceError) -> Title {
        try mapped {
            let slug = try TitleID(validating: id)
            guard name != nil || publisher != nil || tags != nil else {
                throw DomainError.invalidValue(field: "name", value: "", expected: "a new name, publisher or tags (the id cannot change)")
            }
            return try store.updateTitle(
                id: slug, name: try name.map { try validatedName($0, kind: "title") }, publisher: try publisher.map { try validatedName($0, kind: "publisher") },
                tags: try tags.map { try Title.validatedTags($0) }, actor: actor)
        }
    }

    /// Renames a plan or replaces its titles (nil: unchanged): `titles`, the listed ids, or
    /// `allTitles` for every title, present and future. At least one change is needed; the
    /// period cannot change (memberships were sold on it).
    public func updatePlan(id: String, name: String?, titles: [String]?, allTitles: Bool, actor: AuditActor) throws(ServiceError) -> Plan {
        try mapped {
            let slug = try PlanID(validating: id)
            var bundle: TitleBundle?
            if allTitles {
                guard titles == nil else { throw DomainError.invalidValue(field: "titles", value: "a list and every title", expected: "either titles or every title, not both") }
                bundle = .all
            } else if let titles {
                guard !titles.isEmpty else {
                    throw DomainError.invalidValue(field: "titles", value: "", expected: "at least one title id (or every title)")
                }
                bundle = .titles(Set(try titles.map { try TitleID(validating: $0) }))
            }
            guard name != nil || bundle != nil else {
                throw DomainError.invalidValue(field: "name", value: "", expected: "a new name or titles (the id and period cannot change)")
            }
            return try store.updatePlan(id: slug, name: try name.map { try validatedName($0, kind: "plan") }, bundle: bundle, actor: actor)
        }
    }

    /// Adds a plan. `titles` is nil or empty for all titles, otherwise the listed ids.
    public func addPlan(id: String, name: String, period: String, titles: [String]?, actor: AuditActor) throws(ServiceError) -> Plan {
        try mapped {
            let slug = try PlanID(validating: id)
            guard let billing = BillingPeriod(rawValue: period.lowercased()) else {
                throw DomainError.invalidValue(field: "period", value: period, expected: "one of week, month, year")
            }
            let bundle: TitleBundle
            if let titles {
                // An empty list is a mistake, not "every title" (the CLI refused it, the API
                // took it for every title): every title is asked for by leaving titles out.
                guard !titles.isEmpty else {
                    throw DomainError.invalidValue(field: "titles", value: "", expected: "at least one title id (leave titles out for a plan of every title)")
                }
                bundle = .titles(Set(try titles.map { try TitleID(validating: $0) }))
            } else {
                bundle = .all
            }
            return try store.addPlan(id: slug, name: validatedName(name, kind: "plan"), period: billing, bundle: bundle, actor: actor)
        }
    }
}
