import Foundation
import PaywallCore
import PaywallStore

/// What `paywall serve --demo` loaded.
public struct DemoLoad: Sendable {
    public var titlesAdded = 0
    public var plansAdded = 0
    public var accountsAdded: [String] = []
    /// Sample readers and their demo passwords, to print for a newcomer.
    public var readers: [DemoReader] = []
}

/// A sample reader of the demo catalog.
public struct DemoReader: Sendable {
    public var email: String
    public var password: String
    public var plan: String?
}

extension PaywallService {
    struct DemoCatalog: Decodable {
        struct Title: Decodable { var id: String; var name: String; var publisher: String; var tags: [String] }
        struct Plan: Decodable { var id: String; var name: String; var period: String; var titles: [String]? }
        struct Reader: Decodable { var email: String; var name: String; var password: String; var plan: String? }
        var titles: [Title]
        var plans: [Plan]
        var accounts: [Reader]
    }

    /// Loads the demo catalog kept as data in this module (`Resources/demo.json`): titles,
    /// plans and sample readers, each only if absent, so a second start changes nothing.
    /// Only for `--demo`: production data never comes from here.
    public func loadDemoData(actor: AuditActor = .system) throws(ServiceError) -> DemoLoad {
        guard let url = Bundle.module.url(forResource: "demo", withExtension: "json"),
              let data = try? Data(contentsOf: url)
        else { throw .store(.cannotOpen(path: "demo.json", detail: "the demo catalog is missing from the build")) }
        let catalog: DemoCatalog
        do { catalog = try JSONDecoder().decode(DemoCatalog.self, from: data) } catch {
            throw .invalidInput(.invalidValue(field: "demo catalog", value: "demo.json", expected: "valid JSON (\(error))"))
        }
        var load = DemoLoad()
        // Two demo servers started at once on one PostgreSQL database race to add the same
        // rows: the one that finds a row already added by the other skips it.
        for title in catalog.titles where try mapped({ try store.title(id: TitleID(validating: title.id)) }) == nil {
            do {
                _ = try addTitle(id: title.id, name: title.name, publisher: title.publisher, tags: title.tags, actor: actor)
                load.titlesAdded += 1
            } catch .store(.duplicateTitle) {}
        }
        for plan in catalog.plans where try mapped({ try store.plan(id: PlanID(validating: plan.id)) }) == nil {
            // A demo title an admin retired since is left out; a plan left with none is not made.
            let titles: [String]? = try mapped {
                try plan.titles.map { ids in try ids.filter { try store.title(id: TitleID(validating: $0))?.isRetired != true } }
            }
            if let titles, titles.isEmpty { continue }
            do {
                _ = try addPlan(id: plan.id, name: plan.name, period: plan.period, titles: titles, actor: actor)
                load.plansAdded += 1
            } catch .store(.duplicatePlan) {}
        }
        for reader in catalog.accounts {
            // A plan not made (every title of it retired) is not said to be the reader's.
            let plan: String? = try mapped { try reader.plan.flatMap { try store.plan(id: PlanID(validating: $0)) == nil ? nil : $0 } }
            load.readers.append(DemoReader(email: reader.email, password: reader.password, plan: plan))
            guard try mapped({ try store.account(email: EmailAddress(reader.email)) }) == nil else { continue }
            do {
                _ = try signUp(email: reader.email, password: reader.password, displayName: reader.name, actor: actor)
            } catch .store(.duplicateEmail), .store(.addressKept) { continue }  // there, or kept for an account that left it
            if let plan {
                _ = try grantMembership(account: reader.email, plan: plan, until: now.addingTimeInterval(365 * 86_400), source: .comp, actor: actor, reason: "demo")
            }
            load.accountsAdded.append(reader.email)
        }
        return load
    }
}
