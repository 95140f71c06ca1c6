import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallViews

/// The outbox: what mail waits, and a delivery pass for cron (the server tries once when
/// it queues a message; a message the sendmail command refused waits for the next pass).
struct MailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mail",
        abstract: "Look at the outbox and deliver what waits in it.",
        subcommands: [Outbox.self, Deliver.self]
    )

    struct Outbox: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List outbox messages, newest first (never their bodies: they hold single-use links).")
        @OptionGroup var global: GlobalOptions
        @Option(parsing: .unconditional, help: "At most this many messages.") var limit = 50

        func validate() throws {
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        }

        func run() throws {
            try global.run(readOnly: true) { service in
                let messages = try service.outbox(limit: limit).map(OutboxView.init)
                let out = Output(json: global.json)
                if global.json { out.emit(messages); return }
                out.table(["ID", "TO", "SUBJECT", "QUEUED", "STATUS", "ATTEMPTS", "LAST ERROR"], messages.map {
                    ["\($0.id)", $0.recipient, $0.subject, $0.createdAt.text, $0.status, "\($0.attempts)", $0.lastError ?? ""]
                })
            }
        }
    }

    struct Deliver: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hand due messages to the sendmail command (PAYWALL_SENDMAIL).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.run { service in
                let (sent, failed) = try service.deliverPendingMail()
                if global.json {
                    Output(json: true).emit(["sent": sent, "failed": failed])
                } else {
                    print("\(sent) sent, \(failed) failed")
                }
                if failed > 0 { throw ServiceError.mailNotDelivered(count: failed) }
            }
        }
    }
}

/// An outbox message without its body.
struct OutboxView: Encodable {
    var id: Int64
    var recipient: String
    var subject: String
    var createdAt: Date
    var expiresAt: Date
    var sentAt: Date?
    var status: String
    var attempts: Int
    var lastError: String?

    init(_ message: OutboxMessage) {
        id = message.id
        recipient = message.recipient
        subject = message.subject
        createdAt = message.createdAt
        expiresAt = message.expiresAt
        sentAt = message.sentAt
        status = message.sentAt != nil ? "sent" : message.lastError != nil ? "failed" : "queued"
        attempts = message.attempts
        lastError = message.lastError
    }
}
