import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
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
                try service.recordRead(subject: who, title: title, article: article, at: when)
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
                'committed N' (N = lines committed so far) is printed and flushed, so a caller \
                knows exactly what is stored. A bad line stops the import with its line number; \
                the lines before it stay committed, nothing of its batch is.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "Lines per transaction.") var batch = 500

        struct Line: Decodable {
            var account: String?
            var device: String?
            var title: String
            var article: String
            var at: String?
        }

        func validate() throws {
            guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 100000") }
        }

        func run() throws {
            try global.run { service in
                var pending: [ArticleRead] = []
                var committed = 0
                var lineNumber = 0
                var accounts: [String: AccountID] = [:]
                func flush() throws {
                    guard !pending.isEmpty else { return }
                    try service.importReads(pending)
                    committed += pending.count
                    pending.removeAll(keepingCapacity: true)
                    // Unbuffered: the caller may rely on every acknowledged line being stored.
                    FileHandle.standardOutput.write(Data("committed \(committed)\n".utf8))
                }
                while let text = readLine() {
                    lineNumber += 1
                    if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                    do {
                        let line = try JSONDecoder().decode(Line.self, from: Data(text.utf8))
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
                        if pending.count >= batch { try flush() }
                    } catch let error as DecodingError {
                        throw CLIFailure("line \(lineNumber): not a read object (\(Self.describe(error)))")
                    } catch let error as CLIFailure {
                        throw CLIFailure("line \(lineNumber): \(error.message)")
                    } catch let error as ServiceError {
                        throw CLIFailure("line \(lineNumber): \(error.description)")
                    } catch let error as DomainError {
                        throw CLIFailure("line \(lineNumber): \(error.description)")
                    }
                }
                try flush()
                if committed == 0 { FileHandle.standardOutput.write(Data("committed 0\n".utf8)) }
            }
        }

        static func describe(_ error: DecodingError) -> String {
            switch error {
            case let .keyNotFound(key, _): "missing \"\(key.stringValue)\""
            case let .typeMismatch(_, context), let .valueNotFound(_, context):
                "wrong type at \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\""
            case .dataCorrupted: "invalid JSON"
            @unknown default: "invalid"
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
