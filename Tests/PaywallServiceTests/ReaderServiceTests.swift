import Foundation
import Testing
import PaywallTestSupport
import PaywallCore
import PaywallPolicy
@testable import PaywallService
@testable import PaywallStore

@Suite("Readers' accounts in the service")
struct ReaderServiceTests {
    @Test("no key to sign with: sign-up, sign-in and refresh answer keys_unavailable having written nothing (no account, no session, nothing evicted, the refresh token unspent)")
    func noSigningKey() throws {
        let f = try ServiceFixture { $0.developmentKeys = false; $0.maximumSessions = 1 }
        let account = try f.service.signUp(email: "reader@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let (refresh, _) = try f.service.store.createSession(accountID: account.id, lifetime: 86_400)
        let before = try f.snapshot()
        let refusals: [@Sendable () throws -> Void] = [
            { _ = try f.service.signUpReader(email: "new@example.com", password: "correct horse battery", name: nil, deviceToken: nil, deviceName: nil, client: "c") },
            { _ = try f.service.signInReader(email: "reader@example.com", password: "correct horse battery", deviceName: "Phone", client: "c") },
            { _ = try f.service.refreshReader(token: refresh) },
        ]
        for refuse in refusals {
            do {
                try refuse()
                Issue.record("answered without a signing key")
            } catch let error as ServiceError {
                #expect(error.code == "keys_unavailable", "\(error)")
            }
        }
        let after = try f.snapshot()
        #expect(after == before, "nothing written: \(after.filter { before[$0.key] != $0.value })")
        #expect(try f.service.store.session(token: refresh) != nil, "the refresh token is not spent")
        #expect(try f.service.store.account(email: EmailAddress("new@example.com")) == nil)
    }

    @Test("reader settings come from PAYWALL_* variables; bad values name the variable")
    func configuration() throws {
        let defaults = try ServiceConfiguration.resolve(environment: [:])
        #expect(defaults.maximumSessions == 5 && defaults.sendmailCommand == nil)
        let set = try ServiceConfiguration.resolve(environment: [
            "PAYWALL_MAX_SESSIONS": "2", "PAYWALL_SENDMAIL": "/bin/cat -t  -i", "PAYWALL_MAIL_FROM": "news@example.com",
            "PAYWALL_LINK_BASE": "https://app.example.com/",
        ])
        #expect(set.maximumSessions == 2)
        #expect(set.sendmailCommand == ["/bin/cat", "-t", "-i"], "split on spaces, no shell")
        #expect(set.mailFrom == "news@example.com" && set.linkBase == "https://app.example.com")
        let bad: [([String: String], String)] = [
            (["PAYWALL_MAX_SESSIONS": "0"], "PAYWALL_MAX_SESSIONS"),
            (["PAYWALL_MAX_SESSIONS": "many"], "PAYWALL_MAX_SESSIONS"),
            (["PAYWALL_SENDMAIL": "sendmail -t"], "PAYWALL_SENDMAIL"),
            (["PAYWALL_SENDMAIL": "/no/such/sendmail -t"], "PAYWALL_SENDMAIL"),
            (["PAYWALL_MAIL_FROM": "not an address"], "PAYWALL_MAIL_FROM"),
            (["PAYWALL_LINK_BASE": "ftp://example.com"], "PAYWALL_LINK_BASE"),
            (["PAYWALL_LINK_BASE": "https://example.com/?x=1"], "PAYWALL_LINK_BASE"),
            (["PAYWALL_LINK_BASE": "https://user:hunter2@example.com"], "PAYWALL_LINK_BASE"),
        ]
        for (environment, named) in bad {
            #expect(throws: ServiceError.self, "\(environment)") { try ServiceConfiguration.resolve(environment: environment) }
            do { _ = try ServiceConfiguration.resolve(environment: environment) } catch {
                #expect(error.description.contains(named) && error.code == "invalid_configuration", "\(error)")
                #expect(!error.description.contains("hunter2"), "credentials are not echoed: \(error)")
            }
        }
    }

    @Test("PAYWALL_METER_COMMITTERS: 1 to 8 on PostgreSQL; more than one refused with a SQLite file, which has one writer")
    func meterCommitters() throws {
        #expect(try ServiceConfiguration.resolve(environment: [:]).store.meterCommitters == 1)
        let postgres = try ServiceConfiguration.resolve(environment: ["PAYWALL_DB": "postgres://paywall@db.example.com/paywall", "PAYWALL_METER_COMMITTERS": "3"])
        #expect(postgres.store.meterCommitters == 3)
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_METER_COMMITTERS": "1"]).store.meterCommitters == 1, "1 is SQLite's own")
        let bad: [([String: String], String)] = [
            (["PAYWALL_METER_COMMITTERS": "2"], "SQLite"),
            (["PAYWALL_DB": "./x.sqlite", "PAYWALL_METER_COMMITTERS": "4"], "SQLite"),
            (["PAYWALL_DB": "postgres://paywall@db.example.com/paywall", "PAYWALL_METER_COMMITTERS": "0"], "1 to 8"),
            (["PAYWALL_DB": "postgres://paywall@db.example.com/paywall", "PAYWALL_METER_COMMITTERS": "9"], "1 to 8"),
            (["PAYWALL_DB": "postgres://paywall@db.example.com/paywall", "PAYWALL_METER_COMMITTERS": "two"], "1 to 8"),
        ]
        for (environment, says) in bad {
            do {
                _ = try ServiceConfiguration.resolve(environment: environment)
                Issue.record("accepted \(environment)")
            } catch {
                #expect(error.code == "invalid_configuration" && error.description.contains("PAYWALL_METER_COMMITTERS") && error.description.contains(says), "\(error)")
            }
        }
    }

    @Test("PAYWALL_METER_STATE: readers the SQLite writer keeps, 0 to 10,000,000; anything else refused by name")
    func meterState() throws {
        #expect(try ServiceConfiguration.resolve(environment: [:]).store.meterStateCapacity == 50_000)
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_METER_STATE": "0"]).store.meterStateCapacity == 0)
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_METER_STATE": "200000"]).store.meterStateCapacity == 200_000)
        for text in ["-1", "10000001", "lots", "", "1e5"] {
            do {
                _ = try ServiceConfiguration.resolve(environment: ["PAYWALL_METER_STATE": text])
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.code == "invalid_configuration" && error.description.contains("PAYWALL_METER_STATE"), "\(error)")
            }
        }
    }

    @Test("the throttle: free failures, then doubling waits, then refusal for the window")
    func throttle() {
        let throttle = SignInThrottle()
        let waits = (1...11).map { throttle.wait(failures: $0, free: 5, refuseAfter: 10) }
        #expect(waits == [0, 0, 0, 0, 0, 1, 2, 4, 8, 900, 900])
        #expect(throttle.wait(failures: Int.max, free: 5, refuseAfter: Int.max) == 900, "capped at the window, never trapping")
    }

    @Test("new errors: categories, codes, Retry-After")
    func errors() {
        let table: [(ServiceError, ServiceErrorCategory, String)] = [
            (.tooManyAttempts(retryAfter: 3), .rateLimited, "too_many_attempts"),
            (.tooMuchMail(retryAfter: 3_600), .rateLimited, "too_much_mail"),
            (.linkInvalid, .invalid, "link_invalid"),
            (.trialNotOffered, .conflict, "trial_not_offered"),
            (.mailNotDelivered(count: 2), .unavailable, "mail_not_delivered"),
        ]
        for (error, category, code) in table {
            #expect(error.category == category && error.code == code, "\(error)")
            if category != .unavailable { #expect(error.publicMessage == error.description) }
        }
        #expect(ServiceError.tooManyAttempts(retryAfter: 0.2).retryAfter == 1)
        #expect(ServiceError.linkInvalid.retryAfter == nil)
        #expect(ServiceError.seconds(.nan) == 86_400 && ServiceError.seconds(1e300) == 86_400 && ServiceError.seconds(2.1) == 3)
    }

    @Test("the policy names the trial's length; a policy without a trial offer refuses trials, writing nothing")
    func trialOffer() throws {
        let f = try ServiceFixture()
        #expect(try f.service.policy().offeredTrialDays == 14)

        let folder = try TestFolder("paywall-no-trial")
        try """
            meter "free" { limit 3 per 30 days }
            defaults {
              access teaser
              teaser 3 paragraphs
            }
            rule "members" {
              when membership.active
              grant full
            }
            rule "subscribe" {
              when not membership.entitled
              offer subscribe
            }
            """.write(toFile: folder.path("paywall.policy"), atomically: true, encoding: .utf8)
        let g = try ServiceFixture { $0.policyDirectory = folder.url }
        #expect(try g.service.policy().offeredTrialDays == nil)
        let account = try g.service.signUp(email: "a@example.com", password: "a long enough passphrase", displayName: nil, actor: g.admin)
        let before = try g.snapshot()
        #expect(throws: ServiceError.trialNotOffered) { try g.service.startOfferedTrial(accountID: account.id) }
        #expect(try g.snapshot() == before)
    }

    @Test("sign-up checks everything before writing; a device token of another kind is refused")
    func signUpChecksFirst() throws {
        let f = try ServiceFixture()
        let account = try f.service.signUp(email: "old@example.com", password: "a long enough passphrase", displayName: nil, actor: f.admin)
        let access = try f.service.issueAccessToken(account: account.id.rawValue, lifetime: nil, audience: nil).token
        let before = try f.snapshot()
        #expect(throws: ServiceError.self) {
            try f.service.signUpReader(email: "new@example.com", password: "a long enough passphrase", name: "N", deviceToken: access, deviceName: nil)
        }
        #expect(throws: ServiceError.self) {
            try f.service.signUpReader(email: "new@example.com", password: "a long enough passphrase", name: "N", deviceToken: nil, deviceName: "bad\u{7}name")
        }
        #expect(try f.snapshot() == before)
        let session = try f.service.signUpReader(email: "new@example.com", password: "a long enough passphrase", name: "N", deviceToken: nil, deviceName: "phone")
        let queued = try f.service.outbox().first
        #expect(session.mail?.sendmailConfigured == false && queued != nil && queued?.sentAt == nil)
        #expect(try f.service.signedInAccount(bearer: session.accessToken.token) == session.account.id)
    }

    @Test("the message handed to sendmail: headers from validated values only")
    func message() {
        let message = OutboxMessage(
            id: 1, recipient: "a@example.com", subject: "Confirm\r\nBcc: x@evil.example", body: "Hello\nlink", createdAt: Date(), expiresAt: Date(),
            sentAt: nil, attempts: 0, lastError: nil)
        let text = String(decoding: PaywallService.rfc5322(message, from: "paywall@example.com", at: Date(timeIntervalSince1970: 0)), as: UTF8.self)
        #expect(text.hasPrefix("From: paywall@example.com\nTo: a@example.com\nSubject: ConfirmBcc: x@evil.example\nDate: Thu, 01 Jan 1970 00:00:00 +0000\n"))
        #expect(!text.contains("\nBcc:"), "a line break cannot add a header")
        #expect(text.hasSuffix("\n\nHello\nlink"))
        #expect(PaywallService.runSendmail(["/bin/true"], message: Data(text.utf8)) == nil)
        #expect(PaywallService.runSendmail(["/bin/false"], message: Data(text.utf8))?.contains("status 1") == true)
        #expect(PaywallService.runSendmail(["/no/such/program"], message: Data()) != nil)
    }

    @Test("a sendmail that stops reading a message larger than its pipe is killed at the timeout", .timeLimit(.minutes(1)))
    func stalledSendmail() {
        let started = Date()
        let outcome = PaywallService.runSendmail(["/bin/sleep", "30"], message: Data(repeating: UInt8(ascii: "x"), count: 512 * 1024), timeout: 1)
        #expect(outcome?.contains("did not finish within 1 seconds") == true, "\(outcome ?? "sent")")
        #expect(Date().timeIntervalSince(started) < 10)
    }
}

@Suite("The sign-in throttle's key")
struct SignInThrottleKeyTests {
    @Test("every spelling that reaches an account's password shares its budget")
    func variantsShareBudget() throws {
        let f = try ServiceFixture()
        let s = f.service
        _ = try s.signUp(email: "victim@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        // Each spelling below is the victim's account to EmailAddress (trimmed, case-folded).
        let variants = ["victim@example.com", "VICTIM@example.com", " victim@example.com ", "victim@example.com \u{301}", "Victim@Example.com\u{301}"]
        var refusals = 0
        for attempt in 0..<14 {
            // Each from its own address, so only the account's budget can run out.
            do {
                _ = try s.signInReader(email: variants[attempt % variants.count], password: "wrong password \(attempt)", deviceName: nil, client: "client-\(attempt)")
                Issue.record("a wrong password was accepted")
            } catch .tooManyAttempts {
                refusals += 1
            } catch .invalidCredentials {
                // counted
            }
            f.clock.advance(by: 20)  // past the doubling waits (at most 8 s), within the window
        }
        // 12 of the 14 reach the account (the last variant is no ASCII address): refused
        // once the tenth has failed.
        #expect(refusals == 2, "the variants shared one budget and ran it out")
        do {
            _ = try s.signInReader(email: "victim@example.com", password: "correct horse battery", deviceName: nil, client: "elsewhere")
            Issue.record("signed in while the account's budget is spent")
        } catch {
            #expect(error.code == "too_many_attempts")
        }
        // Text that is no address reaches no password: only the client's budget counts it.
        for attempt in 0..<12 {
            #expect(throws: ServiceError.invalidCredentials) {
                try s.signInReader(email: "not an address \(attempt)", password: "x", deviceName: nil, client: "other-\(attempt)")
            }
        }
    }
}

@Suite("The password asked again of a signed-in reader")
struct ReverificationThrottleTests {
    @Test("has a budget of its own: a stranger's failed sign-ins do not lock the owner out of its account's settings; the owner's own failures are throttled")
    func budgetOfItsOwn() throws {
        let f = try ServiceFixture()
        let s = f.service
        let owner = try s.signUp(email: "owner@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        // A stranger spends the email's budget from the sign-in form.
        for attempt in 0..<12 {
            _ = try? s.signInReader(email: "owner@example.com", password: "wrong \(attempt)", deviceName: nil, client: "stranger-\(attempt)")
            f.clock.advance(by: 20)
        }
        do {
            _ = try s.signInReader(email: "owner@example.com", password: "correct horse battery", deviceName: nil, client: "owner")
            Issue.record("signed in while the email's budget is spent")
        } catch {
            #expect(error.code == "too_many_attempts")
        }
        // The owner, signed in elsewhere, still exports (the password asked again).
        let export = try s.exportOwnData(accountID: owner.id, password: "correct horse battery", client: "owner")
        #expect(export.account.id == owner.id)
        // Wrong passwords asked again count on the account's own budget, from any address.
        var refusals = 0
        for attempt in 0..<12 {
            do {
                try s.deleteOwnAccount(accountID: owner.id, password: "wrong \(attempt)", client: "thief-\(attempt)")
                Issue.record("deleted with a wrong password")
            } catch .tooManyAttempts {
                refusals += 1
            } catch .invalidCredentials {
                // counted
            }
            f.clock.advance(by: 20)
        }
        #expect(refusals == 2, "refused once the tenth had failed")
        do {
            try s.deleteOwnAccount(accountID: owner.id, password: "correct horse battery", client: "owner")
            Issue.record("deleted while the budget is spent")
        } catch {
            #expect(error.code == "too_many_attempts")
        }
        #expect(try s.account("owner@example.com").id == owner.id, "nothing deleted")
    }
}

@Suite("The sign-in throttle under concurrent guesses")
struct SignInThrottleRaceTests {
    @Test("guesses sent at once are counted before they are hashed: one past the free five is tried, the rest refused", arguments: TestBackend.all)
    func concurrentGuesses(backend: TestBackend) async throws {
        let f = try ServiceFixture(backend: backend)
        let s = f.service
        _ = try await s.signUp(email: "victim@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let outcomes = await withTaskGroup(of: String.self) { group -> [String] in
            for attempt in 0..<20 {
                group.addTask {
                    do throws(ServiceError) {
                        _ = try await s.blocking { service throws(ServiceError) in
                            try service.signInReader(email: "victim@example.com", password: "wrong \(attempt)", deviceName: nil, client: "client-\(attempt)")
                        }
                        return "accepted"
                    } catch {
                        return error.code
                    }
                }
            }
            var all: [String] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        // Five free failures, the sixth sets a wait: six reach the hash, whatever the timing.
        #expect(outcomes.filter { $0 == "invalid_credentials" }.count == 6, "\(outcomes)")
        #expect(outcomes.filter { $0 == "too_many_attempts" }.count == 14, "\(outcomes)")
    }

    @Test("a right password takes its attempt back: an address's good sign-ins never use its budget")
    func successRefunds() throws {
        let f = try ServiceFixture { $0.signInThrottle.clientFree = 2; $0.signInThrottle.clientRefuseAfter = 3 }
        let s = f.service
        for index in 0..<6 {
            _ = try s.signUp(email: "reader\(index)@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        }
        // Six good sign-ins from one address, past its three-attempt limit: none is refused.
        for index in 0..<6 {
            _ = try s.signInReader(email: "reader\(index)@example.com", password: "correct horse battery", deviceName: nil, client: "office")
        }
        // Its failures still count: two free, the third is refused after.
        for attempt in 0..<3 {
            #expect(throws: ServiceError.invalidCredentials) {
                try s.signInReader(email: "reader0@example.com", password: "wrong \(attempt)", deviceName: nil, client: "office")
            }
            f.clock.advance(by: 2)
        }
        do {
            _ = try s.signInReader(email: "reader1@example.com", password: "correct horse battery", deviceName: nil, client: "office")
            Issue.record("signed in while the address is blocked")
        } catch {
            #expect(error.code == "too_many_attempts")
        }
    }

    @Test("past the free attempts, a right password leaves no wait behind for the next reader at the address")
    func successLeavesNoWait() throws {
        let f = try ServiceFixture { $0.signInThrottle.clientFree = 2; $0.signInThrottle.clientRefuseAfter = 100 }
        let s = f.service
        for index in 0..<3 {
            _ = try s.signUp(email: "reader\(index)@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        }
        for attempt in 0..<3 {  // the third failure sets a one-second wait
            #expect(throws: ServiceError.invalidCredentials) {
                try s.signInReader(email: "reader0@example.com", password: "wrong \(attempt)", deviceName: nil, client: "office")
            }
        }
        f.clock.advance(by: 2)  // the wait is over
        // Counted at first (a two-second wait set), then taken back with its wait.
        _ = try s.signInReader(email: "reader1@example.com", password: "correct horse battery", deviceName: nil, client: "office")
        _ = try s.signInReader(email: "reader2@example.com", password: "correct horse battery", deviceName: nil, client: "office")
    }
}

@Suite("The database file's mode")
struct DatabaseModeTests {
    @Test("a database paywall makes is its owner's alone; one others may read is reported (serve warns)")
    func mode() throws {
        let f = try ServiceFixture()
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: f.path)[.posixPermissions] as? Int)
        #expect(mode & 0o077 == 0, "made \(String(mode, radix: 8))")
        #expect(!f.service.databaseReadableByOthers)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: f.path)
        #expect(f.service.databaseReadableByOthers)
    }
}

@Suite("Pruning what only grows")
struct PruneTests {
    @Test("expired session rows, orphaned device names, expired links and old mail go; live sessions, their refresh and unexpired mail stay")
    func prune() throws {
        let f = try ServiceFixture()
        let s = f.service
        for email in ["old@example.com", "new@example.com"] {
            _ = try s.signUp(email: email, password: "correct horse battery", displayName: nil, actor: f.admin)
        }
        // A family refreshed twice (three rows), a reset link and its mail, all at t0.
        let old = try s.signInReader(email: "old@example.com", password: "correct horse battery", deviceName: "old phone", client: "c")
        let second = try s.refreshReader(token: old.refreshToken)
        _ = try s.refreshReader(token: second.refreshToken)
        _ = try s.requestPasswordReset(email: "old@example.com")
        let before = try f.snapshot()
        #expect(before["sessions"] == 3 && before["email_links"] == 1 && before["outbox"] == 1)
        #expect(try s.prune(actor: f.admin) == PruneReport(), "nothing is old yet")
        #expect(try f.snapshot() == before, "and nothing audited")

        // 38 days on: the old family expired 8 days ago; a new reader signs in now.
        f.clock.advance(by: 38 * 86_400)
        let live = try s.signInReader(email: "new@example.com", password: "correct horse battery", deviceName: "new phone", client: "c")
        let report = try s.prune(actor: f.admin)
        #expect(report.sessions == 3 && report.sessionDevices == 1 && report.emailLinks == 1 && report.outbox == 1)
        let after = try f.snapshot()
        #expect(after["sessions"] == 1 && after["session_devices"] == 1 && after["email_links"] == 0 && after["outbox"] == 0)
        #expect(after["accounts"] == before["accounts"])
        // The live session still refreshes; the pruned tokens are refused.
        #expect(try s.refreshReader(token: live.refreshToken).account.email == "new@example.com")
        #expect(throws: ServiceError.self) { try s.refreshReader(token: second.refreshToken) }
        #expect(try s.store.auditEntries(filter: AuditFilter(action: "db.prune"), limit: 5).count == 1)
    }
}
