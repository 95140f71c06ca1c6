import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallTokens
import PaywallViews

struct MeterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meter",
        abstract: "Record and count article reads (the metered free articles).",
        subcommands: [Record.self, Import.self, Show.self]
    )

    /// Whose reads: exactly one of --account and --device.
    struct Subject: ParsableArguments {
        @Option(help: "A signed-in reader: email or account id.") var account: String?
        @Option(help: "An anonymous reader's device id.") var device: String?

        func validate() throws {
            if (account == nil) == (device == nil) { throw ValidationError("give exactly one of --account and --device") }
        }

        func resolve(_ service: PaywallService) throws -> MeterSubject {
            try service.meterSubject(account: account, device: device)
        }
    }

    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record that a reader opened an article.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var subject: Subject
        @Option(help: "The title id.") var title: String
        @Option(help: "The article id.") var article: String
        @Option(help: "When (ISO 8601); default now.") var at: String?

        func run() throws {
            try global.run { service in
                let when = try at.map { try TimeText.instant($0) }
                let who = try subject.resolve(service)
                try service.recordRead(subject: who, title: title, article: article, at: when, actor: global.auditActor)
                if global.json { Output(json: true).emit(["result": "recorded", "subject": who.key]) } else { print("recorded read of \(title)/\(article) by \(who)") }
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import reads from standard input, one JSON object per line.",
            discussion: """
                Each line: {"account": EMAIL-OR-ID | "device": ID, "title": T, "article": A, "at": ISO-8601 (optional)}.
                Reads are committed in batches of --batch lines; after each commit a line \
                'committed N' (N = lines committed so far; with --json {"committed": N}) is printed and flushed, so a caller \
                knows exactly what is stored. A bad line stops the import with its line number; \
                the lines before it stay committed, nothing of its batch is.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Option(parsing: .unconditional, help: "Lines per transaction.") var batch = 500

        struct Line {
            var account: String?
            var device: String?
            var title: String
            var article: String
            var at: String?

            static let names: Set<String> = ["account", "device", "title", "article", "at"]

            /// One line, read strictly: a duplicate or unknown member (`"At"` for `"at"`)
            /// is refused, not ignored (a typo would record the read at the wrong time).
            init(parsing text: String) throws(CLIFailure) {
                let value: JSONValue
                do { value = try JSONValue.parse(Array(text.utf8), maxDepth: 2) } catch {
                    throw CLIFailure("not a read object (invalid JSON: \(error.message))")
                }
                guard let object = value.objectValue else { throw CLIFailure("not a read object (a JSON object on each line)") }
                if let unknown = object.keys.first(where: { !Self.names.contains($0) }) {
                    throw CLIFailure("not a read object (unknown member \"\(PrintableText.quoted(unknown))\"; known: account, device, title, article, at)")
                }
                func string(_ name: String, required: Bool) throws(CLIFailure) -> String? {
                    // An explicit null is an absent member (exporters write them).
                    guard let member = object[name], member != .null else {
                        if required { throw CLIFailure("not a read object (missing \"\(name)\")") }
                        return nil
                    }
                    guard let text = member.stringValue else { throw CLIFailure("not a read object (wrong type at \"\(name)\": a string)") }
                    return text
                }
                account = try string("account", required: false)
                device = try string("device", required: false)
                title = try string("title", required: true) ?? ""
                article = try string("article", required: true) ?? ""
                at = try string("at", required: false)
            }
        }

        func validate() throws {
            guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 100000") }
        }

        func run() throws {
            try global.run { service in
                var pending: [ArticleRead] = []
                var pendingLines: [Int] = []
                var committed = 0
                var lineNumber = 0
                var accounts: [String: AccountID] = [:]
                func flush() throws {
                    guard !pending.isEmpty else { return }
                    do {
                        try service.importReads(pending, actor: global.auditActor)
                    } catch {
                        // The batch is refused whole. For the input's fault, name the line
                        // (an unknown title: the first line naming it; else the batch's lines).
                        // The database's own (locked, unavailable) keeps its exit status.
                        let range = "lines \(pendingLines.first ?? 0)–\(pendingLines.last ?? 0)"
                        guard [.invalid, .notFound, .conflict].contains(error.category) else {
                            throw CLIFailure(status: paywall.exitCode(for: error.category), "\(error.description) (nothing of \(range) was stored)")
                        }
                        var at = range
                        if case let .store(.titleNotFound(title)) = error, let index = pending.firstIndex(where: { $0.titleID.rawValue == title }) {
                            at = "line \(pendingLines[index])"
                        } else if pending.count == 1 {
                            at = "line \(pendingLines[0])"
                        }
                        throw CLIFailure("\(at): \(error.description); nothing of \(range) was stored")
                    }
                    committed += pending.count
                    pending.removeAll(keepingCapacity: true)
                    pendingLines.removeAll(keepingCapacity: true)
                    // Unbuffered: the caller may rely on every acknowledged line being stored.
                    FileHandle.standardOutput.write(Data(progress(committed).utf8))
                }
                // One line per commit either way; with --json, an object per line.
                func progress(_ count: Int) -> String { global.json ? "{\"committed\":\(count)}\n" : "committed \(count)\n" }
                while let text = readLine() {
                    lineNumber += 1
                    if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                    do {
                        let line = try Line(parsing: text)
                        let subject: MeterSubject
                        switch (line.account, line.device) {
                        case let (account?, nil):
                            if let id = accounts[account] {
                                subject = .account(id)
                            } else {
                                let id = try service.account(account).id
                                accounts[account] = id
                                subject = .account(id)
                            }
                        case let (nil, device?):
                            subject = try MeterSubject.device(validating: device)
                        default:
                            throw CLIFailure("give exactly one of \"account\" and \"device\"")
                        }
                        pending.append(try service.articleRead(
                            subject: subject, title: line.title, article: line.article, at: try line.at.map { try TimeText.instant($0) }))
                        pendingLines.append(lineNumber)
                    } catch let error as CLIFailure {
                        throw CLIFailure("line \(lineNumber): \(error.message)")
                    } catch let error as ServiceError {
                        throw CLIFailure("line \(lineNumber): \(error.description)")
                    } catch let error as DomainError {
                        throw CLIFailure("line \(lineNumber): \(error.description)")
                    }
                    if pending.count >= batch { try flush() }
                }
                try flush()
                if committed == 0 { FileHandle.standardOutput.write(Data(progress(0).utf8)) }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count the distinct articles a reader read in a rolling window.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var subject: Subject
        @Option(help: "The window, e.g. 30d, 24h.") var window = "30d"
        @Option(help: "Count only this title's articles.") var title: String?

        func run() throws {
            try global.run(readOnly: true) { service in
                let who = try subject.resolve(service)
                let view = MeterReportView(try service.meterReport(subject: who, window: try TimeText.duration(window), title: title))
                if global.json { Output(json: true).emit(view) } else {
                    print("\(view.used) distinct article(s)\(view.title.map { " of \($0)" } ?? "") read by \(who) since \(view.windowStart.text)")
                }
            }
        }
    }
}
