import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallViews

struct TitleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "title",
        abstract: "Manage the catalog of titles.",
        subcommands: [Add.self, Update.self, List.self, Tag.self, Retire.self, Restore.self]
    )

    /// Tags from repeated or comma-separated `--tag` values.
    static func tags(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a title.",
            discussion: "Example: paywall title add euronews --name Euronews --publisher \"Euronews SA\" --tag news"
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The title's id: a-z, 0-9 and '-', e.g. euronews.") var id: String
        @Option(help: "The title's name as readers see it.") var name: String
        @Option(help: "The publisher.") var publisher: String
        @Option(help: ArgumentHelp("A tag policies can test as title.tags (repeatable, or comma-separated).", valueName: "tag")) var tag: [String] = []

        func run() throws {
            try global.run { service in
                let title = try service.addTitle(id: id, name: name, publisher: publisher, tags: TitleCommand.tags(tag), actor: global.auditActor)
                if global.json { Output(json: true).emit(TitleView(title)) } else { print("added title \(title.id) (\(title.name))") }
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rename a title or its publisher.",
            discussion: """
                The id cannot change: reads, plans and policies name it. Audited with the old values. Example:
                  paywall title update euronews --name "Euronews English" --publisher "Euronews SA"
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The title's id.") var id: String
        @Option(help: "The new name as readers see it.") var name: String?
        @Option(help: "The new publisher.") var publisher: String?

        func validate() throws {
            if name == nil && publisher == nil { throw ValidationError("give --name, --publisher or both") }
        }

        func run() throws {
            try global.run { service in
                let view = TitleView(try service.updateTitle(id: id, name: name, publisher: publisher, actor: global.auditActor))
                if global.json { Output(json: true).emit(view) } else { print("title \(view.id): \(view.name), published by \(view.publisher)") }
            }
        }
    }

    struct Tag: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a title's tags (policies read them as title.tags).",
            discussion: """
                Tags are a-z, 0-9 and '-', at most 32 per title. Give no --tag to remove them all. Example:
                  paywall title tag the-lancet --tag academic --tag science
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The title's id.") var id: String
        @Option(help: ArgumentHelp("A tag (repeatable, or comma-separated).", valueName: "tag")) var tag: [String] = []

        func run() throws {
            try global.run { service in
                let view = TitleView(try service.setTitleTags(id: id, tags: TitleCommand.tags(tag), actor: global.auditActor))
                if global.json { Output(json: true).emit(view) } else { print("title \(view.id) tags: \(view.tagText)") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List titles.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run(readOnly: true) { service in
                let titles = try service.titles(includingRetired: true).map { TitleView($0) }
                let out = Output(json: global.json)
                if global.json { out.emit(titles); return }
                out.table(["ID", "NAME", "PUBLISHER", "TAGS", "STATUS"], titles.map {
                    [$0.id, $0.name, $0.publisher, $0.tagText, $0.retiredAt.map { "retired \($0.text)" } ?? "in the catalog"]
                })
            }
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a title out of the catalog (its publisher left): no longer read in full, offered or sold.",
            discussion: """
                Access checks of its articles answer 404 title_retired; it leaves every plan that \
                listed it (plans of all titles stop covering it too); gifts and comps can no longer \
                name it. Its reads stay for the publisher's reports, and its id stays taken. Audited. \
                'paywall title restore' brings it back (plans do not take it back by themselves). Example:
                  paywall title retire der-spiegel --yes
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The title's id.") var id: String
        @Flag(help: "Confirm (its members lose it at once).") var yes = false

        func validate() throws {
            guard yes else { throw ValidationError("retiring a title takes it from its plans' members at once; add --yes to confirm") }
        }

        func run() throws {
            try global.run { service in
                let (title, left, emptied) = try service.retireTitle(id: id, actor: global.auditActor)
                if global.json {
                    Output(json: true).emit(RetiredTitleView(title: TitleView(title), leftPlans: left.map(\.rawValue), emptiedPlans: emptied.map(\.rawValue)))
                    return
                }
                print("title \(title.id) retired\(left.isEmpty ? "" : "; it left the plans \(left.map(\.rawValue).joined(separator: ", "))")")
                if !emptied.isEmpty {
                    printWarning("\(emptied.map(\.rawValue).joined(separator: ", ")) now grant no title: give them others with 'paywall plan update', "
                        + "or unmap the prices that sell them ('paywall billing products', 'paywall billing unmap'): they still sell and renew")
                }
            }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring a retired title back into the catalog.",
            discussion: "No plan takes it back by itself: 'paywall plan update ID --titles …' does."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The title's id.") var id: String

        func run() throws {
            try global.run { service in
                let view = TitleView(try service.restoreTitle(id: id, actor: global.auditActor))
                if global.json { Output(json: true).emit(view) } else { print("title \(view.id) is in the catalog again") }
            }
        }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Manage membership plans and the titles they grant.",
        subcommands: [Add.self, Update.self, List.self, Delete.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a plan.",
            discussion: """
                Examples:
                  paywall plan add monthly-all --name "All titles, monthly" --period month --all
                  paywall plan add news-annual --name "News, annual" --period year --titles euronews,the-daily
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The plan's id: a-z, 0-9 and '-'.") var id: String
        @Option(help: "The plan's name.") var name: String
        @Option(help: "Billing period: week, month or year.") var period: String
        @Option(help: "Comma-separated title ids the plan grants.") var titles: String?
        @Flag(help: "Grant every title, present and future.") var all = false

        func validate() throws {
            if all == (titles != nil) { throw ValidationError("give exactly one of --all or --titles") }
        }

        func run() throws {
            try global.run { service in
                let list = titles.map { $0.split(separator: ",").map { String($0) } }
                if let list, list.isEmpty { throw CLIFailure("--titles needs at least one title id") }
                let plan = try service.addPlan(id: id, name: name, period: period, titles: list, actor: global.auditActor)
                let view = PlanView(plan)
                if global.json { Output(json: true).emit(view) } else { print("added plan \(view.id) (\(view.name), per \(view.period), \(view.titleText))") }
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rename a plan or change the titles it grants.",
            discussion: """
                The plan's members read the new titles at once (on every server); access tokens
                issued before, which carry the titles for the edge, list the old ones until they
                expire. The id and the period cannot change. Audited with the old values. Examples:
                  paywall plan update news-annual --titles euronews,the-daily,le-monde
                  paywall plan update news-annual --name "News, yearly" --all
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: "The new name.") var name: String?
        @Option(help: "Comma-separated title ids the plan now grants (replacing its list).") var titles: String?
        @Flag(help: "Grant every title, present and future.") var all = false

        func validate() throws {
            if all && titles != nil { throw ValidationError("give --all or --titles, not both") }
            if name == nil && titles == nil && !all { throw ValidationError("give --name, --titles or --all") }
            if let titles, titles.split(separator: ",").isEmpty { throw ValidationError("--titles needs at least one title id") }
        }

        func run() throws {
            try global.run { service in
                let list = titles.map { $0.split(separator: ",").map { String($0) } }
                let view = PlanView(try service.updatePlan(id: id, name: name, titles: list, allTitles: all, actor: global.auditActor))
                if global.json { Output(json: true).emit(view) } else { print("plan \(view.id) (\(view.name), per \(view.period), \(view.titleText))") }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a plan nothing refers to (made by mistake).",
            discussion: """
                Refused while any membership was ever made of it (ended ones keep its history) or \
                a Stripe price or App Store product is mapped to it ('paywall billing unmap'): \
                a plan that was sold stays; stop selling it by unmapping its prices. Audited. Example:
                  paywall plan delete news-wekly --yes
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The plan's id.") var id: String
        @Flag(help: "Confirm.") var yes = false

        func validate() throws {
            guard yes else { throw ValidationError("deleting a plan cannot be undone; add --yes to confirm") }
        }

        func run() throws {
            try global.run { service in
                let plan = try service.deletePlan(id: id, actor: global.auditActor)
                if global.json { Output(json: true).emit(["id": plan.id.rawValue, "result": "deleted"]) } else { print("plan \(plan.id) deleted") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List plans.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run(readOnly: true) { service in
                let plans = try service.plans().map { PlanView($0) }
                let out = Output(json: global.json)
                if global.json { out.emit(plans); return }
                out.table(["ID", "NAME", "PERIOD", "TITLES"], plans.map { [$0.id, $0.name, $0.period, $0.titleText] })
            }
        }
    }
}
