import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallViews

/// `paywall billing`: the payment providers' side of memberships.
struct BillingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Memberships from payments: Stripe and App Store links, events, price mappings.",
        discussion: """
            Stripe webhooks (POST /v1/billing/stripe) and App Store Server Notifications \
            (POST /v1/billing/apple) keep memberships in step with payments. These commands \
            show what the providers know of an account, map prices and products to plans, \
            list the events that could not be applied and why, and apply events again.
            """,
        subcommands: [Show.self, Map.self, Unmap.self, Products.self, Failures.self, Retry.self, Dismiss.self, Replay.self, LinkCustomer.self, LinkSubscription.self, AppToken.self]
    )

    static func provider(_ text: String) throws -> BillingProvider {
        guard let provider = BillingProvider(rawValue: text) else { throw ValidationError("the provider must be stripe or apple") }
        return provider
    }

    static func printResults(_ results: [BillingResult], json: Bool) {
        if json {
            Output(json: true).emit(results.map(BillingResultView.init))
            return
        }
        Output(json: false).table(
            ["PROVIDER", "EVENT", "TYPE", "OUTCOME", "DETAIL"],
            results.map { [$0.provider.rawValue, $0.eventID, $0.type, $0.outcome.rawValue, $0.detail ?? ""] })
        let counts = Dictionary(grouping: results, by: \.outcome).mapValues(\.count)
        print(BillingOutcome.allCases.compactMap { outcome in counts[outcome].map { "\($0) \(outcome.rawValue)" } }.joined(separator: ", "))
    }

    static func printEvents(_ events: [BillingEventRecord]) {
        Output(json: false).table(
            ["RECEIVED", "PROVIDER", "EVENT", "TYPE", "OUTCOME", "DETAIL"],
            events.map { [TimeText.format($0.receivedAt), $0.provider.rawValue, $0.eventID, $0.type, $0.outcome.rawValue, $0.detail ?? ""] })
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an account's provider links, subscriptions and recent events.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Option(parsing: .unconditional, help: "How many recent events (1 to 500).") var limit = 20

        func validate() throws {
            guard (1...500).contains(limit) else { throw ValidationError("--limit must be from 1 to 500") }
        }

        func run() throws {
            try global.run(readOnly: true) { service in
                let overview = try service.billingOverview(account: account, limit: limit)
                if global.json { Output(json: true).emit(BillingOverviewView(overview)); return }
                print("account \(overview.account.email) (\(overview.account.id))")
                print(overview.links.isEmpty ? "no provider links" : "links:")
                for link in overview.links { print("  \(link.provider)  \(link.customer)  since \(TimeText.format(link.createdAt))") }
                print(overview.subscriptions.isEmpty ? "no provider subscriptions" : "subscriptions:")
                for sub in overview.subscriptions {
                    let end = sub.periodEnd.map { " until \(TimeText.format($0))" } ?? ""
                    let membership = sub.membershipID.map { " (membership #\($0))" } ?? ""
                    print("  \(sub.provider)  \(sub.id)  \(sub.product)  \(sub.status.rawValue) [\(sub.providerStatus)]\(end)\(sub.cancelAtPeriodEnd ? ", not renewing" : "")\(membership)")
                }
                if overview.events.isEmpty { print("no events"); return }
                print("recent events:")
                BillingCommand.printEvents(overview.events)
            }
        }
    }

    struct Map: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Map a Stripe price or App Store product to a plan.",
            discussion: "e.g. 'paywall billing map stripe price_1PgafmB7WZ01zgkW6dKueIc5 news'. Replaces an earlier mapping of it.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "stripe or apple.") var provider: String
        @Argument(help: "The Stripe price id or App Store product id.") var product: String
        @Argument(help: "The plan id.") var plan: String

        func run() throws {
            let provider = try BillingCommand.provider(provider)
            try global.run { service in
                let mapping = try service.mapBillingProduct(provider: provider, externalID: product, plan: plan, actor: global.auditActor)
                if global.json { Output(json: true).emit(BillingProductView(mapping)) } else { print("\(provider) \(mapping.externalID) buys plan \(mapping.planID)") }
            }
        }
    }

    struct Unmap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a price or product mapping.",
            discussion: "New subscriptions to it are then refused (held as failed events). Subscriptions already running on it keep the plan they were given: their renewals, refunds and ends still apply.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "stripe or apple.") var provider: String
        @Argument(help: "The Stripe price id or App Store product id.") var product: String

        func run() throws {
            let provider = try BillingCommand.provider(provider)
            try global.run { service in
                try service.unmapBillingProduct(provider: provider, externalID: product, actor: global.auditActor)
                if !global.json { print("\(provider) \(product) is mapped to no plan now") }
            }
        }
    }

    struct Products: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the prices and products mapped to plans.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run(readOnly: true) { service in
                let mappings = try service.billingMappings()
                if global.json { Output(json: true).emit(mappings.map(BillingProductView.init)); return }
                Output(json: false).table(["PROVIDER", "PRODUCT", "PLAN"], mappings.map { [$0.provider.rawValue, $0.externalID, $0.planID.rawValue] })
            }
        }
    }

    struct Failures: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the events that could not be applied, and why.",
            discussion: "Pending events wait for their customer's link (or their subscription); failed ones for a fix (a price to map) and 'paywall billing retry'.")
        @OptionGroup var global: GlobalOptions
        @Option(parsing: .unconditional, help: "At most this many (1 to 1000).") var limit = 100

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
        }

        func run() throws {
            try global.run(readOnly: true) { service in
                let events = try service.unappliedBillingEvents(limit: limit)
                if global.json { Output(json: true).emit(events.map(BillingEventView.init)); return }
                if events.isEmpty { print("every event was applied"); return }
                BillingCommand.printEvents(events)
            }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the pending and failed events again (after mapping a price, say).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run { service in BillingCommand.printResults(try service.retryBillingEvents(actor: global.auditActor), json: global.json) }
        }
    }

    struct Dismiss: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set aside a pending or failed event that will never apply, with the reason.",
            discussion: """
                For an event nothing will fix: a test event, a Checkout session whose subscription never comes, a \
                subscription whose account was deleted. It is recorded as ignored with who dismissed it and why, audited; \
                nothing else changes, retry no longer takes it, and a redelivery of it is a duplicate. Example:
                  paywall billing dismiss evt_1Nq… --reason "test-mode event sent to production"
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The provider's event id (as paywall billing failures lists it).") var event: String
        @Option(help: "Why it will never apply (kept with the event and in the audit log).") var reason: String
        @Option(help: "stripe or apple.") var provider: String = "stripe"

        func run() throws {
            let provider = try BillingCommand.provider(provider)
            try global.run { service in
                let record = try service.dismissBillingEvent(event, provider: provider, reason: reason, actor: global.auditActor)
                if global.json { Output(json: true).emit(BillingEventView(record)); return }
                print("event \(record.eventID) (\(record.type)) dismissed: \(record.detail ?? "")")
            }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply provider events from a file (recovery).",
            discussion: """
                stripe: events as Stripe's API or dashboard gives them, a JSON array or one per \
                line, taken without signatures (you vouch for the file). apple: signedPayloads (or \
                whole notification bodies) one per line, verified as the route verifies them. \
                Events already taken are duplicates and change nothing.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "stripe or apple.") var provider: String
        @Argument(help: "The file ('-' for standard input).") var file: String

        func run() throws {
            let provider = try BillingCommand.provider(provider)
            let contents: Data
            if file == "-" {
                contents = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let data = FileManager.default.contents(atPath: file) else { throw fail(CLIFailure("cannot read '\(file)': no such file, or not readable")) }
                contents = data
            }
            try global.run { service in
                var taken: [BillingResult] = []
                do {
                    let results = try service.replayBillingEvents(
                        provider: provider, contents: Array(contents), actor: global.auditActor, source: file == "-" ? "standard input" : file
                    ) { taken.append($0) }
                    BillingCommand.printResults(results, json: global.json)
                } catch {
                    // What became of the events before the refused one, then the refusal.
                    if !taken.isEmpty { BillingCommand.printResults(taken, json: global.json) }
                    throw error
                }
            }
        }
    }

    struct LinkCustomer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "link-customer",
            abstract: "Link a Stripe customer to an account by hand (a customer made outside Checkout).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Argument(help: "The Stripe customer id (cus_…).") var customer: String

        func run() throws {
            try global.run { service in
                let results = try service.linkStripeCustomer(customer, account: account, actor: global.auditActor)
                if global.json { Output(json: true).emit(results.map(BillingResultView.init)); return }
                let applied = results.filter { $0.outcome == .applied }.count
                print("\(customer) is linked to \(account); \(applied) waiting event\(applied == 1 ? "" : "s") applied")
            }
        }
    }

    struct LinkSubscription: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "link-subscription",
            abstract: "Give an account a subscription whose events wait for one (an App Store purchase made without the app's appAccountToken).",
            discussion: """
                An App Store purchase made outside the app (an offer code redeemed in the App Store, say) carries no \
                appAccountToken, so its events wait (paywall billing failures lists them, pending). This applies them to the \
                account, and the subscription's later events follow it. Refused when nothing of the subscription waits, or \
                when another account holds it.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String
        @Argument(help: "The App Store original transaction id (or, with --provider stripe, the sub_… id).") var subscription: String
        @Option(help: "apple or stripe.") var provider: String = "apple"

        func run() throws {
            let provider = try BillingCommand.provider(provider)
            try global.run { service in
                let results = try service.linkBillingSubscription(subscription, provider: provider, account: account, actor: global.auditActor)
                if global.json { Output(json: true).emit(results.map(BillingResultView.init)); return }
                let applied = results.filter { $0.outcome == .applied }.count
                print("subscription \(subscription) is \(account)'s; \(applied) waiting event\(applied == 1 ? "" : "s") applied")
                for result in results where result.outcome != .applied {
                    print("  \(result.eventID) (\(result.type)): \(result.outcome.rawValue)\(result.detail.map { ": \($0)" } ?? "")")
                }
            }
        }
    }

    struct AppToken: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "app-token",
            abstract: "The appAccountToken the app sets on an account's App Store purchases.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account's email or id.") var account: String

        func run() throws {
            try global.run { service in
                let token = try service.appAccountToken(account: account, actor: global.auditActor).uuidString.lowercased()
                if global.json { Output(json: true).emit(["appAccountToken": token]) } else { print(token) }
            }
        }
    }
}
