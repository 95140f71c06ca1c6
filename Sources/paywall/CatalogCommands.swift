import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallViews

struct TitleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "title",
        abstract: "Manage the catalog of titles.",
        subcommands: [Add.self, Update.self, List.self, Tag.self]
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
                let titles = try service.titles().map { TitleView($0) }
                let out = Output(json: global.json)
                if global.json { out.emit(titles); return }
                out.table(["ID", "NAME", "PUBLISHER", "TAGS"], titles.map { [$0.id, $0.name, $0.publisher, $0.tagText] })
            }
        }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Manage membership plans and the titles they grant.",
        subcommands: [Add.self, Update.self, List.self]
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
