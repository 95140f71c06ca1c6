import Foundation
import PaywallCore
import PaywallStore
import Testing

@Suite("paywall mail", .serialized)
struct MailCLITests {
    /// A database with one queued verification mail (queued through the store, as the
    /// server queues it).
    func queued() throws -> (CLIHarness, String) {
        let cli = try CLIHarness()
        #expect(try cli.run(["db", "migrate"]).status == 0)
        let store = try Store(path: cli.database)
        let account = try store.createAccount(email: EmailAddress("rita@example.com"), displayName: "Rita", passwordHash: "$scrypt$x", actor: .system)
        var link = ""
        _ = try store.issueEmailLink(accountID: account.id, purpose: .verifyEmail, lifetime: 3_600, actor: .system) { account, token in
            link = token
            return OutgoingMail(recipient: account.email, subject: "Confirm your email address", body: "open #token=\(token)")
        }
        try store.close()
        return (cli, link)
    }

    @Test("the outbox lists messages without their bodies; deliver hands them to the sendmail command once")
    func deliver() throws {
        let (cli, link) = try queued()
        let listed = try cli.run(["mail", "outbox"])
        #expect(listed.status == 0 && listed.stdout.contains("rita@example.com") && listed.stdout.contains("queued"))
        #expect(!listed.stdout.contains(link), "never the link")
        let json = try cli.run(["mail", "outbox", "--json"])
        #expect(!json.stdout.contains(link) && !json.stdout.contains("body"))

        let capture = cli.folder.appendingPathComponent("mail.txt").path
        let script = cli.folder.appendingPathComponent("sendmail").path
        try "#!/bin/sh\ncat >> '\(capture)'\n".write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let delivered = try cli.run(["mail", "deliver"], extraEnvironment: ["PAYWALL_SENDMAIL": "\(script) -t"])
        #expect(delivered.status == 0 && delivered.stdout.contains("1 sent, 0 failed"), "\(delivered.stderr)")
        let mail = try String(contentsOfFile: capture, encoding: .utf8)
        #expect(mail.contains("To: rita@example.com") && mail.contains("#token=\(link)"))
        let again = try cli.run(["mail", "deliver"], extraEnvironment: ["PAYWALL_SENDMAIL": "\(script) -t"])
        #expect(again.stdout.contains("0 sent, 0 failed"))
        #expect(try cli.run(["mail", "outbox"]).stdout.contains("sent"))
    }

    @Test("deliver refuses without a sendmail command, and fails (exit 2) when the command refuses")
    func refusals() throws {
        let (cli, _) = try queued()
        let before = try cli.snapshot()
        let unconfigured = try cli.run(["mail", "deliver"])
        #expect(unconfigured.status == 64 && unconfigured.stderr.contains("PAYWALL_SENDMAIL") && unconfigured.stdout.isEmpty)
        #expect(try cli.snapshot() == before)
        let refused = try cli.run(["mail", "deliver"], extraEnvironment: ["PAYWALL_SENDMAIL": "/bin/false"])
        #expect(refused.status == 2 && refused.stderr.contains("refused 1 message"), "\(refused.stderr)")
        let relative = try cli.run(["mail", "deliver"], extraEnvironment: ["PAYWALL_SENDMAIL": "sendmail -t"])
        #expect(relative.status != 0 && relative.stderr.contains("PAYWALL_SENDMAIL"))
    }
}
