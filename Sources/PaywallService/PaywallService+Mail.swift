import Foundation
import Metrics
import PaywallCore
import PaywallStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Mail just queued: its outbox id, and whether a sendmail command will take it (the mail
/// courier delivers it; without a command it waits in the outbox).
public struct MailDelivery: Sendable, Equatable {
    /// The outbox id of the message just queued.
    public var queued: Int64
    /// Whether a sendmail command is configured (without one, mail waits in the outbox).
    public var sendmailConfigured: Bool
}

extension PaywallService {
    // MARK: - Links by mail

    /// Queues a new email verification link for the account (the previous one stops
    /// working); the mail courier delivers it.
    public func sendVerificationLink(accountID: AccountID, actor: AuditActor) throws(ServiceError) -> MailDelivery {
        let lifetime = configuration.verificationLinkLifetime
        return try sendLink(accountID: accountID, purpose: .verifyEmail, lifetime: lifetime, actor: actor) { account, token in
            OutgoingMail(
                recipient: account.email, subject: "Confirm your email address",
                // No display name: whoever signs up chooses it and the address alike, and
                // text of theirs in our mail to a stranger is a phishing channel.
                body: """
                    Hello,

                    To confirm that \(account.email) is your address, open this link within \(Int(lifetime / 3_600)) hours:

                    \(configuration.mailLinkBase)/verify-email#token=\(token)

                    If you did not sign up, ignore this message.

                    """)
        }
    }

    /// Asks for a password reset link for `email`. Answers nothing about whether the email
    /// has an account: nil when it has none, or when that address already had its share of
    /// mail this hour (the caller answers the same either way).
    /// `client` (the adapter's address key) is held to the per-address limit
    /// (``ServiceConfiguration/signUpsPerAddress``, then one a minute), known email or not.
    public func requestPasswordReset(email rawEmail: String, client: String? = nil) throws(ServiceError) -> MailDelivery? {
        if let client, let wait = resetRequests.take(client, at: now) { throw .tooManyResetRequests(retryAfter: wait) }
        guard let email = try? EmailAddress(rawEmail) else {
            throw .invalidInput(.invalidEmail(String(rawEmail.prefix(254)), reason: "it is not an email address"))
        }
        guard let account = try mapped({ try store.account(email: email) }) else { return nil }
        let lifetime = configuration.resetLinkLifetime
        do {
            return try sendLink(accountID: account.id, purpose: .resetPassword, lifetime: lifetime, actor: .system) { account, token in
                OutgoingMail(
                    recipient: account.email, subject: "Reset your password",
                    body: """
                        Hello,

                        Someone asked to reset the password of \(account.email). To choose a new one, open this link within \(Int(lifetime / 60)) minutes:

                        \(configuration.mailLinkBase)/reset-password#token=\(token)

                        The link works once. If it was not you, ignore this message: your password stays as it is.

                        """)
            }
        } catch .tooMuchMail {
            return nil
        }
    }

    private func sendLink(
        accountID: AccountID, purpose: EmailLinkPurpose, lifetime: TimeInterval, actor: AuditActor,
        compose: (Account, String) -> OutgoingMail
    ) throws(ServiceError) -> MailDelivery {
        let id: Int64 = try mapped {
            guard let account = try store.account(id: accountID) else { throw StoreError.accountNotFound(accountID.rawValue) }
            let since = now.addingTimeInterval(-3_600)
            if try store.mailCount(recipient: account.email, since: since) >= configuration.mailsPerAddressPerHour {
                throw ServiceError.tooMuchMail(retryAfter: 3_600)
            }
            return try store.issueEmailLink(accountID: accountID, purpose: purpose, lifetime: lifetime, actor: actor, compose: compose)
        }
        // Delivered by the courier, not here (see ``MailCourier``).
        nudgeMailCourier()
        return MailDelivery(queued: id, sendmailConfigured: configuration.sendmailCommand != nil)
    }

    /// Wakes the mail courier for what was just queued (without a sendmail command, mail
    /// waits in the outbox).
    func nudgeMailCourier() {
        if configuration.sendmailCommand != nil { mailCourier.nudge { [weak self] in self?.deliverMail() } }
    }

    /// Waits until the mail courier has made a delivery pass that started after this call
    /// (at most `timeout`): whatever was queued before is sent or waiting for a retry.
    @discardableResult
    public func flushMail(timeout: TimeInterval = 60) -> Bool {
        guard configuration.sendmailCommand != nil else { return true }
        return mailCourier.flush({ [weak self] in self?.deliverMail() }, timeout: timeout)
    }

    /// Uses an email verification link: the account's email is verified from now on
    /// (`user.emailVerified` for the policy).
    public func verifyEmail(token: String) throws(ServiceError) -> Account {
        guard !token.isEmpty, token.utf8.count <= ReaderLimits.token else { throw .linkInvalid }
        guard let account = try mapped({ try store.verifyEmail(token: token) }) else { throw .linkInvalid }
        return account
    }

    /// Uses a password reset link: sets the new password (checked against the policy) and
    /// ends every session of the account. Returns the account and how many sessions ended.
    public func resetPassword(token: String, password: String) throws(ServiceError) -> (Account, Int) {
        guard !token.isEmpty, token.utf8.count <= ReaderLimits.token else { throw .linkInvalid }
        return try mapped {
            // Checked before the (slow) hashing; used, atomically, after it.
            guard let id = try store.emailLinkAccount(token: token, purpose: .resetPassword),
                  let account = try store.account(id: id)
            else { throw ServiceError.linkInvalid }
            try configuration.passwordPolicy.validate(password, email: try? EmailAddress(account.email))
            let hash = try hasher.hash(password)
            guard let (_, ended) = try store.resetPassword(token: token, hash: hash) else { throw ServiceError.linkInvalid }
            // Whoever proved they hold the mailbox may sign in at once: failed guesses by
            // others before the reset no longer hold the account.
            try store.clearSignInFailures(key: Store.signInThrottleKey(email: EmailAddress(stored: account.email)))
            return (account, ended)
        }
    }

    /// Uses the link of an email change's notice (sent to the address the account had):
    /// that address becomes the account's again, confirmed, with `password` (checked against
    /// the policy) as the new password, and every session and access token ends. For the
    /// owner of an account whose address someone else changed: they had the password.
    /// ``ServiceError/linkInvalid`` when the link is not live; 409 `email_taken` when
    /// another account has taken the address since. Returns the account and how many
    /// sessions ended.
    public func revertEmail(token: String, password: String) throws(ServiceError) -> (Account, Int) {
        guard !token.isEmpty, token.utf8.count <= ReaderLimits.token else { throw .linkInvalid }
        return try mapped {
            // Checked before the (slow) hashing; used, atomically, after it.
            guard let address = try store.emailRevertAddress(token: token) else { throw ServiceError.linkInvalid }
            try configuration.passwordPolicy.validate(password, email: try? EmailAddress(address))
            let hash = try hasher.hash(password)
            // The address being replaced is told: if its holder moved the account there
            // honestly, they learn at once that whoever reads the old mailbox took it back.
            let notice = { (replaced: Account, restored: EmailAddress) in
                OutgoingMail(
                    recipient: replaced.email, subject: "Your email address was changed back",
                    body: """
                        Hello,

                        The email address of the account \(replaced.email) was changed back to \(Self.masked(restored)) with the link mailed there when it was changed, a new password was chosen, and every device was signed out.

                        If you did not expect this, write to the publisher's support from this address at once.

                        """)
            }
            guard let (account, ended) = try store.revertEmail(token: token, hash: hash, notice: notice) else { throw ServiceError.linkInvalid }
            // The notice to the replaced address is queued: deliver it now, as every other.
            nudgeMailCourier()
            // Whoever proved they hold the mailbox may sign in at once (as after a reset).
            try store.clearSignInFailures(key: Store.signInThrottleKey(email: EmailAddress(stored: account.email)))
            return (account, ended)
        }
    }

    // MARK: - Delivery

    /// Hands due outbox messages to the sendmail command, one process each; a message the
    /// command refuses is tried again later (a minute per attempt so far). Without a
    /// command, does nothing: mail waits in the outbox. Returns (sent, failed).
    ///
    /// Each message is claimed just before it is handed over, for ``mailLease`` seconds:
    /// longer than one sendmail run may take (its timeout, then the kill), so no other
    /// courier (another server, `paywall mail deliver`) claims it meanwhile and sends it
    /// twice. Claiming many at once would let the last ones' leases run out while the
    /// first are sent.
    @discardableResult
    public func deliverMail(limit: Int = 20) -> (Int, Int) {
        guard let command = configuration.sendmailCommand, !command.isEmpty else { return (0, 0) }
        var sent = 0
        var failed = 0
        for _ in 0..<max(0, limit) {
            // Stopping (SIGTERM, the end of a CLI command): nothing more is claimed.
            if mailCourier.stopRequested { break }
            guard let claimed = try? store.claimMail(limit: 1, lease: Self.mailLease) else { return (sent, failed + 1) }
            guard let message = claimed.first else { break }
            let marked: Bool
            if let error = Self.runSendmail(command, message: Self.rfc5322(message, from: configuration.mailFrom, at: now)) {
                failed += 1
                // Seen on /metrics (a broken sendmail otherwise failed silently), and in
                // 'paywall mail list' with the command's own error.
                MailCounters.failed.increment()
                marked = Self.retrying { () throws(StoreError) in try store.markMailFailed(id: message.id, error: error, retryAfter: 60 * Double(message.attempts + 1)) }
            } else {
                sent += 1
                MailCounters.sent.increment()
                marked = Self.retrying { () throws(StoreError) in try store.markMailSent(id: message.id) }
            }
            // Unmarked, the message is claimed again when its lease ends and sent twice (a
            // single-use link mailed twice; its body, with the live token, kept meanwhile).
            // The store is failing: this pass stops rather than risk that for the rest.
            if !marked { break }
        }
        return (sent, failed)
    }

    /// Runs `mark` up to three times, 50 and 250 ms apart (a lock held past the busy
    /// timeout, a database restarting); whether it succeeded.
    static func retrying(_ mark: () throws(StoreError) -> Void) -> Bool {
        for pause in [0, 50_000, 250_000] as [UInt32] {
            if pause > 0 { usleep(pause) }
            do {
                try mark()
                return true
            } catch {
                continue
            }
        }
        return false
    }

    /// How long a claimed message is left to its courier (seconds): a sendmail run's
    /// timeout, the grace before it is killed, and room to spare.
    static let mailLease: TimeInterval = 4 * (sendmailTimeout + 2)
    /// How long the sendmail command may take with one message (seconds).
    static let sendmailTimeout: TimeInterval = 30

    /// One delivery pass for an operator (`paywall mail deliver`): refused without a
    /// sendmail command, so a cron job without one fails loudly instead of doing nothing.
    public func deliverPendingMail() throws(ServiceError) -> (Int, Int) {
        guard configuration.sendmailCommand != nil else {
            throw .configuration(name: "PAYWALL_SENDMAIL", value: "", expected: "a sendmail-compatible command to deliver mail with, its absolute path then its arguments, e.g. '/usr/sbin/sendmail -t'")
        }
        return deliverMail(limit: 1_000)
    }

    /// The outbox, newest first (bodies of sent messages are erased).
    public func outbox(limit: Int = 100) throws(ServiceError) -> [OutboxMessage] {
        try mapped { try store.outbox(limit: limit) }
    }

    /// A plain-text message: the headers sendmail `-t` reads its recipient from. Every
    /// header value is one we validated (an ASCII address, a fixed subject): nothing a
    /// reader typed can add a header.
    static func rfc5322(_ message: OutboxMessage, from: String, at date: Date) -> Data {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        // By scalar: "\r\n" is one Character in Swift, equal to neither "\r" nor "\n".
        let oneLine = { (text: String) in
            String(String.UnicodeScalarView(text.unicodeScalars.filter { !CharacterSet.newlines.contains($0) }))
        }
        let text = """
            From: \(oneLine(from))
            To: \(oneLine(message.recipient))
            Subject: \(oneLine(message.subject))
            Date: \(formatter.string(from: date))
            MIME-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            \(message.body)
            """
        return Data(text.utf8)
    }

    /// Runs the command with `message` on its standard input: nil when it exits 0, else
    /// why not. Never through a shell. Gives up (and kills it) after `timeout` seconds.
    static func runSendmail(_ command: [String], message: Data, timeout: TimeInterval = sendmailTimeout) -> String? {
        ignoreSIGPIPE
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: command[0], arguments: Array(command.dropFirst()), input: .pipe)
        } catch {
            return "could not start the sendmail command"
        }
        // Written on a thread of its own, so the timeout also covers a command that stops
        // reading (a message larger than the pipe would block the write for ever). A
        // command that exits without reading closes the pipe: the write fails (EPIPE,
        // SIGPIPE ignored), and the exit status says what happened.
        let input = child.input
        Thread {
            try? input?.write(contentsOf: message)
            try? input?.close()
        }.start()
        guard let exit = child.wait(timeout: timeout) else {
            child.send(SIGTERM)
            // A command that ignores SIGTERM must not hold the courier for ever.
            if child.wait(timeout: 2) == nil {
                child.send(SIGKILL)
                _ = child.wait()
            }
            return "the sendmail command did not finish within \(Int(timeout)) seconds"
        }
        guard exit == .status(0) else {
            return "the sendmail command exited with status \(exit.code)"
        }
        return nil
    }

    /// Writing to a command that exited must fail with EPIPE, not kill the server.
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
}

/// Mail handed to the sendmail command, by result (`paywall_mail_deliveries_total`).
enum MailCounters {
    static let sent = Counter(label: "paywall_mail_deliveries_total", dimensions: [("result", "sent")])
    static let failed = Counter(label: "paywall_mail_deliveries_total", dimensions: [("result", "failed")])
}
