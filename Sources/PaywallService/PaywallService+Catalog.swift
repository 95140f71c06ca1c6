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
