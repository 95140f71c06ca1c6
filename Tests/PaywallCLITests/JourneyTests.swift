import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The time of a server process, moved by the test: an ISO 8601 instant in a file the
/// server (and every CLI run beside it) reads through `PAYWALL_TEST_CLOCK_FILE`.
final class FileClockDriver: @unchecked Sendable {
    let path: String
    private(set) var now: Date

    init(path: String, start: Date) throws {
        self.path = path
        now = start
        try write()
    }

    func advance(days: Double) throws {
        now = now.addingTimeInterval(days * 86_400)
        try write()
    }

    var iso: String { Self.iso(now) }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// Atomically (a temporary file renamed over it): the server never reads half an
    /// instant, and the new inode tells it the file changed.
    private func write() throws {
        try (Self.iso(now) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// A JSON client over URLSession for the journey: any method, any body, the whole answer.
struct JourneyClient: Sendable {
    let base: String

    struct Answer: @unchecked Sendable, CustomStringConvertible {
        var status: Int
        var object: [String: Any]
        var text: String
        var description: String { "\(status) \(text.prefix(600))" }

        func string(_ key: String) -> String { object[key] as? String ?? "" }
        var errorCode: String { (object["error"] as? [String: Any])?["code"] as? String ?? "" }
    }

    struct BadURL: Error, CustomStringConvertible {
        var path: String
        var description: String { "not a URL: \(path)" }
    }

    func call(_ method: String, _ path: String, _ body: [String: Any]? = nil, token: String? = nil) async throws -> Answer {
        guard let url = URL(string: base + path) else { throw BadURL(path: path) }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, object: object, text: String(decoding: data, as: UTF8.self))
    }

    /// What `POST /v1/access` decided, in the terms the assertions use.
    struct Decision: Equatable, CustomStringConvertible {
        var status: Int
        var access: String
        var teaser: Int
        /// `signUp`, `trial 14 days`… in the policy's order.
        var offers: [String]
        var rules: [String]
        /// The meter's used count when the answer has one.
        var meterUsed: Int?
        var description: String { "\(status) \(access) teaser \(teaser) offers \(offers) rules \(rules) meter \(meterUsed.map(String.init) ?? "-")" }
    }

    func access(_ title: String, _ article: String, token: String? = nil, gift: String? = nil) async throws -> Decision {
        var body: [String: Any] = ["title": title, "article": ["id": article]]
        if let gift { body["gift"] = gift }
        let answer = try await call("POST", "/v1/access", body, token: token)
        let offers = (answer.object["offers"] as? [[String: Any]] ?? []).map { offer in
            let type = offer["type"] as? String ?? "?"
            return (offer["days"] as? Int).map { "\(type) \($0) days" } ?? type
        }
        return Decision(
            status: answer.status, access: answer.status == 200 ? answer.string("access") : answer.errorCode,
            teaser: answer.object["teaserParagraphs"] as? Int ?? -1, offers: offers,
            rules: answer.object["decidingRules"] as? [String] ?? [],
            meterUsed: (answer.object["meter"] as? [String: Any])?["used"] as? Int)
    }
}

/// The end-to-end journey of issue 9: the real `paywall serve` binary on a free loopback
/// port, a temporary database and keys, the demo catalog and the shipped policy, and a
/// clock the test moves. Everything the reader and the admin do goes through HTTP (the
/// admin's token comes from `paywall token admin`, as a back office gets one).
@Suite("A reader's whole journey against the real server", .serialized)
struct JourneyTests {
    /// The shipped policy meters signed-in readers only; the journey must see a device's
    /// reads carried over at sign-up, so devices share that meter here. One rule in a file
    /// of its own beside a copy of the shipped one (rules are order-independent, so files
    /// compose): everything else the test asserts is the shipped policy's.
    static let deviceRule = """
        # Test only: anonymous readers with a device token use the signed-in readers' meter
        # (a reader without a device cannot be counted: meters fail closed, so no change).
        rule "devices get the free articles too" {
          when not user.signedIn
          grant full using meter "free-articles"
        }
        """

    /// A sendmail-compatible script that appends each message to a file.
    func fakeSendmail(in folder: URL) throws -> (script: String, capture: String) {
        let script = folder.appendingPathComponent("sendmail").path
        let capture = folder.appendingPathComponent("mail.txt").path
        try "#!/bin/sh\ncat >> '\(capture)'\nprintf '\\n.END.\\n' >> '\(capture)'\n".write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        return (script, capture)
    }

    /// The token of the newest verification link mailed to `recipient` (the server's mail
    /// courier delivers just after the answer: waits up to 10 s for it).
    func verificationToken(_ capture: String, to recipient: String) async throws -> String {
        var text = ""
        for _ in 0..<200 {
            text = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
            if text.contains("To: \(recipient)") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let message = try #require(text.components(separatedBy: "\n.END.\n").last { $0.contains("To: \(recipient)") }, "no mail to \(recipient) in: \(text.prefix(2000))")
        let range = try #require(message.range(of: "/verify-email#token=[A-Za-z0-9_-]+", options: .regularExpression), "no link in \(message)")
        return String(message[range].split(separator: "=").last ?? "")
    }

    @Test("anonymous → device meter → sign up → verify → metered → trial → subscribe offer → admin membership → grace → gift")
    func journey() async throws {
        let cli = try CLIHarness()
        let folder = cli.folder
        let policies = folder.appendingPathComponent("policies")
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: CLIHarness.repositoryPolicies + "/paywall.policy", toPath: policies.appendingPathComponent("paywall.policy").path)
        try Data(Self.deviceRule.utf8).write(to: policies.appendingPathComponent("devices.policy"))
        let mail = try fakeSendmail(in: folder)
        let start = Date(timeIntervalSince1970: 1_772_442_000)  // 2026-03-02T09:00:00Z
        let clock = try FileClockDriver(path: folder.appendingPathComponent("now").path, start: start)
        // The server and every CLI run share the clock, the database, the keys and the mail.
        let environment = ["PAYWALL_TEST_CLOCK_FILE": clock.path, "PAYWALL_SENDMAIL": "\(mail.script) -t", "PAYWALL_POLICIES": policies.path]
        let server = try ServerProcess(cli, arguments: ["--demo", "--db", cli.database, "--policies", policies.path], environment: environment)
        let api = JourneyClient(base: server.base)
        let euronews = (title: "euronews", teaser: 2)

        // 1. Anonymous, no device: the teaser and the shipped policy's three offers.
        let anonymous = try await api.access(euronews.title, "e1")
        #expect(anonymous == .init(status: 200, access: "teaser", teaser: 2, offers: ["signUp", "signIn", "trial 14 days"],
                                   rules: [#"title "euronews" settings"#], meterUsed: 3), "\(anonymous)")
        // (A reader the server cannot count has the meter used up: meters fail closed.)

        // 2. A device token; the device reads one article of its three.
        let device = try await api.call("POST", "/v1/devices")
        #expect(device.status == 201, "\(device)")
        let deviceToken = device.string("deviceToken")
        let deviceRead = try await api.access(euronews.title, "e1", token: deviceToken)
        #expect(deviceRead.access == "full" && deviceRead.rules == ["devices get the free articles too"] && deviceRead.meterUsed == 1, "\(deviceRead)")

        // 3. Sign up with the device token: its read moves to the account.
        let email = "rita@uni.example.edu"
        let signUp = try await api.call("POST", "/v1/accounts", ["email": email, "password": "a long enough passphrase", "name": "Rita",
                                                                 "deviceToken": deviceToken, "deviceName": "Rita's phone"])
        #expect(signUp.status == 201, "\(signUp)")
        #expect(signUp.object["carriedReads"] as? Int == 1 && signUp.string("verificationMail") == "queued", "\(signUp)")
        var access = signUp.string("accessToken")
        var refresh = signUp.string("refreshToken")
        let accountID = (signUp.object["account"] as? [String: Any])?["id"] as? String ?? ""
        let me = try await api.call("GET", "/v1/me", token: access)
        let meter = (me.object["meters"] as? [[String: Any]])?.first
        #expect(meter?["used"] as? Int == 1 && meter?["remaining"] as? Int == 2, "the device's read counts for the account: \(me)")
        #expect((me.object["account"] as? [String: Any])?["emailVerified"] as? Bool == false)

        // 4. The verification link from the captured mail.
        let verified = try await api.call("POST", "/v1/email/verify", ["token": try await verificationToken(mail.capture, to: email)])
        #expect(verified.status == 200 && (verified.object["account"] as? [String: Any])?["emailVerified"] as? Bool == true, "\(verified)")

        // 5. The two free articles left, then the teaser with the trial and subscribe offers.
        var metered: [String] = []
        for article in ["e2", "e3", "e4"] { metered.append(try await api.access(euronews.title, article, token: access).description) }
        let freeRule = "signed-in readers get three free articles a month"
        #expect(metered == [
            JourneyClient.Decision(status: 200, access: "full", teaser: 2, offers: [], rules: [freeRule], meterUsed: 2).description,
            JourneyClient.Decision(status: 200, access: "full", teaser: 2, offers: [], rules: [freeRule], meterUsed: 3).description,
            JourneyClient.Decision(status: 200, access: "teaser", teaser: euronews.teaser, offers: ["trial 14 days", "subscribe"],
                                   rules: [#"title "euronews" settings"#], meterUsed: 3).description,
        ], "\(metered)")
        #expect(try await api.access(euronews.title, "e2", token: access).access == "full", "a re-read is free")
        // The verified address at the partner university opens its academic titles, meter or not.
        let lancet = try await api.access("the-lancet", "l1", token: access)
        #expect(lancet.access == "full" && lancet.rules == ["staff and students of a partner university"], "\(lancet)")

        // 6. The 14-day trial: full access, no offers.
        let trial = try await api.call("POST", "/v1/trials", token: access)
        #expect(trial.status == 201, "\(trial)")
        let trialEnd = (trial.object["trial"] as? [String: Any])?["endsAt"] as? String
        #expect(trialEnd == FileClockDriver.iso(start.addingTimeInterval(14 * 86_400)), "\(trial)")
        let onTrial = try await api.access(euronews.title, "e4", token: access)
        #expect(onTrial.access == "full" && onTrial.offers.isEmpty && onTrial.rules == ["trial readers read everything"], "\(onTrial)")
        let again = try await api.call("POST", "/v1/trials", token: access)
        #expect(again.status == 409, "one trial per person: \(again)")

        // 7. Past the trial's end (day 15): the access token has expired; the refresh token
        // (30 days) gives a new one. The meter's reads are 15 days old: still counted.
        try clock.advance(days: 15)
        #expect(try await api.call("GET", "/v1/me", token: access).status == 401, "the 15-minute access token expired with the clock")
        var session = try await api.call("POST", "/v1/sessions/refresh", ["refreshToken": refresh])
        #expect(session.status == 200, "\(session)")
        (access, refresh) = (session.string("accessToken"), session.string("refreshToken"))
        let afterTrial = try await api.access(euronews.title, "e5", token: access)
        #expect(afterTrial == .init(status: 200, access: "teaser", teaser: euronews.teaser, offers: ["subscribe"],
                                    rules: [#"title "euronews" settings"#], meterUsed: 3), "\(afterTrial)")

        // 8. An admin grants the news plan through the admin API with a token from the CLI.
        let issued = try cli.run(["token", "admin", "--scope", "members", "--subject", "ops", "--json"], extraEnvironment: environment)
        #expect(issued.status == 0, "\(issued.stderr)")
        let adminToken = try #require((try cli.json(issued.stdout) as? [String: Any])?["token"] as? String, "\(issued.stdout)")
        let grant = try await api.call("POST", "/admin/v1/accounts/\(accountID)/memberships", ["plan": "news-annual"], token: adminToken)
        #expect(grant.status == 201 && grant.string("status") == "active", "\(grant)")
        #expect(try await api.call("POST", "/admin/v1/accounts/\(accountID)/memberships", ["plan": "news-annual"], token: access).status == 403,
                "a reader's token is not an admin's")
        let member = "members read the titles in their plan"
        for title in ["euronews", "le-monde", "the-daily"] {
            let decision = try await api.access(title, "\(title)-m1", token: access)
            #expect(decision.access == "full" && decision.rules == [member], "\(title): \(decision)")
        }
        let outside = try await api.access("el-pais", "p1", token: access)
        #expect(outside == .init(status: 200, access: "teaser", teaser: 3, offers: ["subscribe"], rules: ["defaults"], meterUsed: 3),
                "a title outside the plan: \(outside)")

        // 9. The payment fails: past due with a grace end five days on; full during grace.
        let graceEnd = clock.now.addingTimeInterval(5 * 86_400)
        let pastDue = try await api.call("POST", "/admin/v1/accounts/\(accountID)/memberships/past-due",
                                         ["plan": "news-annual", "graceEnd": FileClockDriver.iso(graceEnd)], token: adminToken)
        #expect(pastDue.status == 200 && pastDue.string("status") == "past_due", "\(pastDue)")
        let inGrace = try await api.access(euronews.title, "e6", token: access)
        #expect(inGrace.access == "full" && inGrace.rules == ["failed payment keeps access through the grace period"], "\(inGrace)")
        try clock.advance(days: 4)
        session = try await api.call("POST", "/v1/sessions/refresh", ["refreshToken": refresh])
        (access, refresh) = (session.string("accessToken"), session.string("refreshToken"))
        #expect(try await api.access(euronews.title, "e7", token: access).access == "full", "day 4 of 5 of grace: \(session)")

        // 10. Past the grace end: the teaser and the subscribe offer (the meter's reads are
        // 20 days old, still in its 30-day window).
        try clock.advance(days: 2)
        session = try await api.call("POST", "/v1/sessions/refresh", ["refreshToken": refresh])
        #expect(session.status == 200, "\(session)")
        access = session.string("accessToken")
        let afterGrace = try await api.access(euronews.title, "e8", token: access)
        #expect(afterGrace == .init(status: 200, access: "teaser", teaser: euronews.teaser, offers: ["subscribe"],
                                    rules: [#"title "euronews" settings"#], meterUsed: 3), "\(afterGrace)")

        // 11. Another member (the demo's all-titles member) signs in and gives an article of a
        // title outside Rita's plan: that article opens in full through the gift, and her
        // meter is untouched; the gift opens nothing else.
        let giver = try await api.call("POST", "/v1/sessions", ["email": "member@example.com", "password": "demo member passphrase"])
        #expect(giver.status == 201, "\(giver)")
        let gift = try await api.call("POST", "/v1/gifts", ["title": "el-pais", "article": "p9"], token: giver.string("accessToken"))
        #expect(gift.status == 201, "\(gift)")
        let giftToken = gift.string("giftToken")
        #expect(try await api.access("el-pais", "p9", token: access).access == "teaser", "without the gift")
        let gifted = try await api.access("el-pais", "p9", token: access, gift: giftToken)
        #expect(gifted.status == 200 && gifted.access == "full" && gifted.rules == ["gift"], "\(gifted)")
        let elsewhere = try await api.access("el-pais", "p10", token: access, gift: giftToken)
        #expect(elsewhere.status == 403 && elsewhere.access == "invalid_gift", "another article: \(elsewhere)")
        let standing = try await api.call("GET", "/v1/me", token: access)
        #expect(((standing.object["meters"] as? [[String: Any]])?.first?["used"] as? Int) == 3, "the gift used none of the meter: \(standing)")
        #expect(((standing.object["memberships"] as? [[String: Any]])?.first?["status"] as? String) == "expired", "\(standing)")
        // A reader without a membership cannot give.
        #expect(try await api.call("POST", "/v1/gifts", ["title": "el-pais", "article": "p9"], token: access).status == 403)
        #expect(server.stop(SIGTERM) == 0)
    }
}

@Suite("The test clock setting and the real binary")
struct TestClockSettingTests {
    @Test("paywall serve refuses PAYWALL_TEST_CLOCK_FILE outside test mode (exit 64, before binding), naming the variable")
    func refusedOutsideTests() throws {
        let cli = try CLIHarness()
        let clock = cli.folder.appendingPathComponent("now").path
        try "2026-03-02T09:00:00Z\n".write(toFile: clock, atomically: true, encoding: .utf8)
        // OWASP's cost, so that the only setting test mode would allow is the clock.
        let result = try cli.run(["serve", "--port", "0", "--demo", "--db", cli.database],
                                 extraEnvironment: ["PAYWALL_TESTING": "0", "PAYWALL_SCRYPT_LN": "17", "PAYWALL_TEST_CLOCK_FILE": clock])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("PAYWALL_TEST_CLOCK_FILE") && result.stderr.contains("PAYWALL_TESTING=1"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.database), "nothing opened")
    }
}
