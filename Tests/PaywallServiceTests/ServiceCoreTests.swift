import Foundation
import Testing
import PaywallTestSupport
import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallTokens
@testable import PaywallService
@testable import PaywallStore

@Suite("Configuration, held policy and keys, errors, the blocking pool")
struct ServiceCoreTests {
    // MARK: - Readiness

    @Test("a readiness probe is answered within its deadline while the database is locked, and ready once the lock goes", .timeLimit(.minutes(5)))
    func readinessDeadline() async throws {
        // A busy timeout far past the deadline, and the lock held until the probes are
        // answered: only the deadline can answer them (not ready); without it the test
        // would wait for ever (its time limit fails it). No wall-clock assertion: the whole
        // suite runs at once on two cores, and a timer may fire late there.
        let f = try ServiceFixture(configure: { $0.store.busyTimeout = 600 })
        _ = try f.service.generateKey(.es256, actor: f.admin)
        _ = try f.service.readiness()  // policy and keys loaded: only the database can hold it up
        let locker = try LockHolder(path: f.path)
        defer { locker.release() }
        func probe() async -> Result<Readiness, ServiceError> {
            do throws(ServiceError) { return .success(try await f.service.readiness(within: .seconds(2))) } catch { return .failure(error) }
        }
        async let first = probe()
        async let second = probe()
        let answers = await [first, second]
        for answer in answers {
            guard case let .failure(error) = answer, case .notReady = error else {
                Issue.record("expected not ready, got \(answer)")
                continue
            }
            #expect(error.code == "not_ready")
            #expect(error.category == .unavailable)
        }
        #expect((1...2).contains(f.service.readinessProbe.checksStarted), "at most one check per probe (sharing: readinessProbesShare)")
        locker.release()
        // A new check once the deadline has passed for the stuck one; ready now.
        let ready = try await f.service.readiness(within: .seconds(120))
        #expect(ready.signingKey == (try f.service.readiness().signingKey))
    }

    /// Holds readiness checks until opened.
    actor Gate {
        private var open = false
        private var waiting: [CheckedContinuation<Void, Never>] = []
        func wait() async {
            if open { return }
            await withCheckedContinuation { waiting.append($0) }
        }
        func release() {
            open = true
            for continuation in waiting { continuation.resume() }
            waiting = []
        }
    }

    @Test("readiness probes share the check in flight; one past its deadline is not ready while a later one still gets the check's answer", .timeLimit(.minutes(5)))
    func readinessProbesShare() async throws {
        let probe = ReadinessProbe()
        let gate = Gate()
        // Each probe brings its own check; which one answers tells whether it joined.
        func ask(_ deadline: Duration, _ name: String) async -> Result<Readiness, ServiceError> {
            do throws(ServiceError) {
                return .success(try await probe.answer(within: deadline) {
                    await gate.wait()
                    return .success(Readiness(policyRevision: "r", signingKey: name))
                })
            } catch {
                return .failure(error)
            }
        }
        // In order, so no timing decides it: the first starts a check and is answered by
        // its deadline; the second, whose deadline that check has not outrun, joins it.
        let hasty = await ask(.milliseconds(100), "hasty")
        guard case .failure(.notReady) = hasty else {
            Issue.record("the hasty probe: \(hasty)")
            return
        }
        let patient = Task { await ask(.seconds(600), "patient") }
        while probe.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        await gate.release()
        guard case let .success(answer) = await patient.value else {
            Issue.record("the patient probe was not answered")
            return
        }
        #expect(answer.signingKey == "hasty", "answered by the check in flight, not one of its own")
        #expect(probe.checksStarted == 1)
    }

    @Test("a successful check answers the probes of the next second without another; a failure is never reused")
    func readinessReused() async throws {
        let probe = ReadinessProbe(reuse: .seconds(600))
        let checks = ManagedAtomicCounter()
        let ready: ReadinessProbe.Check = {
            checks.increment()
            return .success(Readiness(policyRevision: "r", signingKey: "k\(checks.value)"))
        }
        for _ in 0..<5 { #expect(try await probe.answer(within: .seconds(60), ready).signingKey == "k1") }
        #expect(checks.value == 1 && probe.checksStarted == 1)
        // A request met the database unavailable meanwhile: the next probe checks.
        probe.forgetSuccess()
        #expect(try await probe.answer(within: .seconds(60), ready).signingKey == "k2")
        #expect(probe.checksStarted == 2)
        let failing = ReadinessProbe(reuse: .seconds(600))
        for _ in 0..<3 {
            do throws(ServiceError) {
                _ = try await failing.answer(within: .seconds(60)) { .failure(.notReady("down")) }
                Issue.record("ready")
            } catch {
                #expect(error.code == "not_ready")
            }
        }
        #expect(failing.checksStarted == 3, "a failure was reused")
        // With no reuse, each probe checks.
        let eager = ReadinessProbe(reuse: .zero)
        for _ in 0..<3 { _ = try await eager.answer(within: .seconds(60), ready) }
        #expect(eager.checksStarted == 3)
    }

    @Test("a success found by a check begun before an outage was seen is given to its probes, not kept for the next ones")
    func readinessForgetDuringCheck() async throws {
        let probe = ReadinessProbe(reuse: .seconds(600))
        let gate = Gate()
        let checks = ManagedAtomicCounter()
        let check: ReadinessProbe.Check = {
            checks.increment()
            let number = checks.value
            if number == 1 { await gate.wait() }
            return .success(Readiness(policyRevision: "r", signingKey: "k\(number)"))
        }
        let first = Task { () async throws(ServiceError) -> Readiness in try await probe.answer(within: .seconds(600), check) }
        while probe.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        // A request meets the database unavailable while the check is in its transaction:
        // a probe now does not join that check, but starts its own.
        probe.forgetSuccess()
        #expect(try await probe.answer(within: .seconds(600), check).signingKey == "k2", "joined the check begun before the outage")
        await gate.release()
        #expect(try await first.value.signingKey == "k1")
        #expect(try await probe.answer(within: .seconds(600), check).signingKey == "k2", "the stale success was kept")
        #expect(probe.checksStarted == 2)
    }

    @Test("a stuck check does not keep a server not ready: a probe past its deadline starts another, at most three at once")
    func readinessStuckCheck() async throws {
        let probe = ReadinessProbe()
        let gate = Gate()
        let stuck: ReadinessProbe.Check = {
            await gate.wait()
            return .failure(.notReady("stuck"))
        }
        for _ in 0..<5 {
            do throws(ServiceError) {
                _ = try await probe.answer(within: .milliseconds(50), stuck)
                Issue.record("ready while every check is stuck")
            } catch {
                #expect(error.code == "not_ready")
            }
        }
        #expect(probe.checksStarted == ReadinessProbe.maximumInFlight, "a new check per stale one, up to the bound")
        await gate.release()
        // The stuck ones end; the next probe starts a check that answers.
        var answered = false
        for _ in 0..<100 where !answered {
            do throws(ServiceError) {
                _ = try await probe.answer(within: .seconds(5)) { .success(Readiness(policyRevision: "r", signingKey: "k")) }
                answered = true
            } catch {
                try await Task.sleep(for: .milliseconds(20))  // a stuck check still ending: joined it
            }
        }
        #expect(answered)
    }

    @Test("a check that fails at once is answered with its own error, not not_ready", .timeLimit(.minutes(5)))
    func readinessFailsAtOnce() async {
        let probe = ReadinessProbe()
        do throws(ServiceError) {
            // A deadline past the test's time limit: an answer at all is the check's.
            _ = try await probe.answer(within: .seconds(600)) { .failure(.keys(.noSigningKey(path: "Keys"))) }
            Issue.record("ready without a key")
        } catch {
            #expect(error == .keys(.noSigningKey(path: "Keys")))
        }
    }

    // MARK: - Configuration

    @Test("the environment is read in one place; flags win; bad values name the variable")
    func configuration() throws {
        let env = ["PAYWALL_DB": "/data/p.sqlite", "PAYWALL_KEYS": "/keys", "PAYWALL_POLICIES": "/pol", "PAYWALL_ISSUER": "news-paywall",
                   "PAYWALL_AUDIENCE": "web", "PAYWALL_BUSY_TIMEOUT": "2.5"]
        let fromEnv = try ServiceConfiguration.resolve(environment: env)
        #expect(fromEnv.databaseLocation == "/data/p.sqlite" && fromEnv.keysDirectory.path == "/keys" && fromEnv.policyDirectory.path == "/pol")
        #expect(fromEnv.issuer == "news-paywall" && fromEnv.audience == "web" && fromEnv.store.busyTimeout == 2.5)
        #expect(!fromEnv.developmentKeys && !fromEnv.testing, "production defaults: no development key, no test mode")

        var overrides = ServiceConfiguration.Overrides()
        overrides.databaseLocation = "flag.sqlite"
        overrides.keysDirectory = "flag-keys"
        overrides.developmentKeysByDefault = true
        let flagged = try ServiceConfiguration.resolve(environment: env, overrides: overrides)
        #expect(flagged.databaseLocation == "flag.sqlite" && flagged.keysDirectory.lastPathComponent == "flag-keys" && flagged.developmentKeys)
        #expect(try !ServiceConfiguration.resolve(environment: ["PAYWALL_DEV_KEYS": "0"], overrides: overrides).developmentKeys)

        let bad: [([String: String], String)] = [
            (["PAYWALL_BUSY_TIMEOUT": "soon"], "PAYWALL_BUSY_TIMEOUT"),
            (["PAYWALL_BUSY_TIMEOUT": "-1"], "PAYWALL_BUSY_TIMEOUT"),
            (["PAYWALL_SCRYPT_LN": "12"], "OWASP"),
            (["PAYWALL_SCRYPT_LN": "abc", "PAYWALL_TESTING": "1"], "PAYWALL_SCRYPT_LN"),
            (["PAYWALL_TESTING": "maybe"], "PAYWALL_TESTING"),
            (["PAYWALL_DEV_KEYS": "2"], "PAYWALL_DEV_KEYS"),
            (["PAYWALL_ISSUER": ""], "PAYWALL_ISSUER"),
            (["PAYWALL_AUDIENCE": "a\nb"], "PAYWALL_AUDIENCE"),
        (["PAYWALL_SCRYPT_LN": "19"], "17 to 18"),
        (["PAYWALL_ACCESS_TTL": "2d"], "PAYWALL_ACCESS_TTL"),
        (["PAYWALL_DEVICE_TTL": "soon"], "PAYWALL_DEVICE_TTL"),
        (["PAYWALL_SCRYPT_LN": "99999999999999999999"], "PAYWALL_SCRYPT_LN"),
        ]
        for (environment, named) in bad {
            do {
                _ = try ServiceConfiguration.resolve(environment: environment)
                Issue.record("accepted \(environment)")
            } catch {
                #expect(error.category == .invalid && error.code == "invalid_configuration")
                #expect(error.description.contains(named), "\(error.description)")
            }
        }
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_SCRYPT_LN": "12", "PAYWALL_TESTING": "1"]).passwordHashing.logN == 12)
        let lifetimes = try ServiceConfiguration.resolve(environment: ["PAYWALL_ACCESS_TTL": "30m", "PAYWALL_GRANT_TTL": "1m", "PAYWALL_DEVICE_TTL": "7d"])
        #expect(lifetimes.accessTokenLifetime == 1_800 && lifetimes.articleGrantLifetime == 60 && lifetimes.deviceTokenLifetime == 7 * 86_400)
    }

    @Test("a service refuses weak scrypt outside test mode")
    func weakHashingRefused() throws {
        #expect(throws: ServiceError.self) {
            _ = try ServiceFixture { $0.testing = false }
        }
    }

    // MARK: - Errors

    @Test("every error has a category adapters map from, and a stable code")
    func categories() {
        let table: [(ServiceError, ServiceErrorCategory, String)] = [
            (.invalidInput(.invalidEmail("x", reason: "r")), .invalid, "invalid_email"),
            (.store(.accountNotFound("x")), .notFound, "account_not_found"),
            (.store(.titleNotFound("x")), .notFound, "title_not_found"),
            (.store(.duplicateEmail("x")), .conflict, "email_taken"),
            (.store(.trialAlreadyUsed(email: "x")), .conflict, "trial_already_used"),
            (.invalidCredentials, .unauthorized, "invalid_credentials"),
            (.sessionReused, .unauthorized, "session_reused"),
            (.token(.wrongAudience), .unauthorized, "invalid_token"),
            (.store(.locked(path: "p", timeoutSeconds: 1)), .unavailable, "database_locked"),
            (.store(.corrupt(path: "p", detail: "d")), .unavailable, "database_unavailable"),
            (.keys(.noSigningKey(path: "k")), .unavailable, "keys_unavailable"),
            (.keys(.retiringSigningKey("k")), .conflict, "key_refused"),
            (.store(.sqlite(path: "p", code: 1, message: "m", sql: nil)), .internal, "database_error"),
            (.shuttingDown, .unavailable, "shutting_down"),
            // Too many password hashes waiting: 503 overloaded, not an internal fault.
            (.wrapping(CryptoError.busy(waiting: 8)), .unavailable, "overloaded"),
        ]
        for (error, category, code) in table {
            #expect(error.category == category, "\(error)")
            #expect(error.code == code, "\(error)")
        }
        // Messages of the lower layers name no CLI command: adapters add their own hints.
        for error in [ServiceError.store(.titleNotFound("x")), .store(.schemaOutdated(path: "p", pendingMigrations: ["v9"])), .keys(.noSigningKey(path: "k")),
                      .keys(.unknownKey("k")), .keys(.tooSoonToRetire(kid: "k", until: Date()))] {
            #expect(!error.description.contains("paywall "), "\(error.description)")
            #expect(!error.description.contains("--"), "\(error.description)")
        }
    }

    // MARK: - The held policy

    func policyFolder() throws -> TestFolder {
        let folder = try TestFolder("paywall-policies")
        try FileManager.default.copyItem(
            at: repositoryRoot.appendingPathComponent("Policies/paywall.policy"), to: folder.url.appendingPathComponent("paywall.policy"))
        return folder
    }

    @Test("the policy is loaded once; a reload that does not check is refused and the old one stays")
    func policyReload() async throws {
        let policies = try policyFolder()
        let f = try ServiceFixture { $0.policyDirectory = policies.url }
        let first = try f.service.policy()
        #expect(try f.service.policy() === first, "held, not loaded per call")
        let file = policies.url.appendingPathComponent("paywall.policy")
        let original = try String(contentsOf: file, encoding: .utf8)

        try (original + "\nrule \"broken\" { when user.signedin; grant full }\n").write(to: file, atomically: true, encoding: .utf8)
        do {
            try f.service.reloadPolicy()
            Issue.record("a broken policy was loaded")
        } catch {
            #expect(error.category == .invalid)
            #expect(error.description.contains("paywall.policy:"), "names file:line:column")
        }
        #expect(try f.service.policy() === first, "the old policy stays in force")

        try (original + "\nrule \"new\" { when request.channel == \"email\"; grant full }\n").write(to: file, atomically: true, encoding: .utf8)
        // Readers keep deciding while it is replaced.
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<50 {
                        let decision = try f.service.decide(reader: .anonymous(device: "d1"), title: "euronews", article: ArticleInput(id: "a"))
                        #expect(decision.access == .teaser)
                    }
                }
            }
            group.addTask { _ = try f.service.reloadPolicy() }
            try await group.waitForAll()
        }
        let second = try f.service.policy()
        #expect(second.revision != first.revision)
        #expect(second.ruleNames.contains("new"))
    }

    // MARK: - The held key ring

    @Test("no key is created without the development setting; the ring is held until reloaded")
    func keysHeldAndReloaded() throws {
        let f = try ServiceFixture { $0.developmentKeys = false }
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        do {
            _ = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
            Issue.record("issued without a key")
        } catch {
            #expect(error == .keys(.noSigningKey(path: f.service.configuration.keysDirectory.path)))
            #expect(error.category == .unavailable)
        }
        #expect(!FileManager.default.fileExists(atPath: f.service.configuration.keysDirectory.path), "nothing written")

        // Another process (here: another service on the same folder) makes a key; with none
        // held, the next signature looks at the folder again and finds it.
        let admin = try PaywallService(store: f.service.store, configuration: f.service.configuration)
        let record = try admin.generateKey(.es256, actor: f.admin)
        let issued = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        #expect(issued.kid == record.kid)

        // A rotation by the other process: this service keeps its ring (and its verifier)
        // until reloaded, so the new key's tokens verify only after reloadKeys().
        let rotated = try admin.rotateKey(.es256, publishAhead: 0, actor: f.admin)
        let fromOther = try admin.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil)
        #expect(fromOther.kid == rotated.kid)
        #expect(try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil).kid == record.kid, "held ring")
        #expect(throws: ServiceError.self) { try f.service.verifyToken(fromOther.token, kinds: [.access]) }
        try f.service.reloadKeys()
        #expect(try f.service.verifyToken(fromOther.token, kinds: [.access]).kind == .access)
        #expect(try f.service.verifyToken(issued.token, kinds: [.access]).kind == .access)
        #expect(throws: ServiceError.self) { try f.service.verifyToken(issued.token, kinds: [.articleGrant]) }

        // A rotation made here is in force here at once, without a reload.
        let next = try f.service.rotateKey(.ed25519, publishAhead: 0, actor: f.admin)
        #expect(try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil).kid == next.kid)
        #expect(try f.service.verifyToken(issued.token, kinds: [.access]).kind == .access, "the superseded key still verifies")
        #expect(try f.service.jwks().keys.count == 3)

        // A folder that no longer loads is refused on reload; the ring in force stays.
        let manifest = f.service.configuration.keysDirectory.appendingPathComponent("keyring.json")
        let saved = try Data(contentsOf: manifest)
        try Data("{ not json".utf8).write(to: manifest)
        #expect(throws: ServiceError.self) { try f.service.reloadKeys() }
        #expect(try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil).kid == next.kid)
        try saved.write(to: manifest)
        #expect(try f.service.reloadKeys().records.count == 3)
    }

    // MARK: - The blocking pool

    @Test("blocking work runs on the service's bounded threads, never on the cooperative pool")
    func blockingPool() async throws {
        let f = try ServiceFixture { $0.blockingThreads = 2 }
        let names = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<8 {
                group.addTask {
                    try await f.service.blocking { service throws(ServiceError) in
                        _ = try service.signUp(email: "r\(index)@example.com", password: "correct horse battery", displayName: nil, actor: .system)
                        Thread.sleep(forTimeInterval: 0.02)
                        return BlockingPool.currentThread ?? "not a pool thread"
                    }
                }
            }
            var names: [String] = []
            for try await name in group { names.append(name) }
            return names
        }
        #expect(names.count == 8)
        #expect(BlockingPool.currentThread == nil, "the test itself runs on the cooperative pool")
        #expect(names.allSatisfy { $0.hasPrefix("paywall-pool-") }, "\(names)")
        #expect(f.service.blocking.peakConcurrency == 2, "eight jobs of 20 ms on two threads: both busy at once, never three")
        #expect(try f.service.accounts(limit: 100, offset: 0).count == 8)

        // The async face: the same operations, same errors.
        let account = try await f.service.signUp(email: "async@example.com", password: "correct horse battery", displayName: nil, actor: .system)
        let signIn = try await f.service.signIn(email: "async@example.com", password: "correct horse battery")
        #expect(signIn.account.id == account.id)
        do {
            _ = try await f.service.signIn(email: "async@example.com", password: "wrong password here")
            Issue.record("signed in with a wrong password")
        } catch {
            #expect(error == .invalidCredentials)
        }
        try f.service.close()
        do {
            _ = try await f.service.signIn(email: "async@example.com", password: "correct horse battery")
            Issue.record("work accepted after close")
        } catch {
            #expect(error == .shuttingDown)
        }
    }

    @Test("the pool refuses work past its queue limit, and close waits for queued work")
    func poolLimits() async throws {
        let pool = BlockingPool(threads: 1, queueLimit: 2, name: "test-pool")
        let gate = DispatchSemaphore(value: 0)
        let finished = ManagedAtomicCounter()
        var tasks: [Task<Result<Int, ServiceError>, Never>] = []
        for index in 0..<4 {
            tasks.append(Task {
                do throws(ServiceError) {
                    return .success(try await pool.run { () throws(ServiceError) -> Int in
                        gate.wait()
                        finished.increment()
                        return index
                    })
                } catch { return .failure(error) }
            })
            try await Task.sleep(for: .milliseconds(30))  // one running, then two queued, then refused
        }
        for _ in 0..<4 { gate.signal() }
        var refused = 0
        for task in tasks { if case .failure(.overloaded) = await task.value { refused += 1 } }
        #expect(refused == 1)
        #expect(finished.value == 3)

        // close(): queued work still runs to the end; nothing runs after.
        let f = try ServiceFixture { $0.blockingThreads = 1 }
        let slow = Task { try await f.service.blocking { service throws(ServiceError) in
            Thread.sleep(forTimeInterval: 0.2)
            return try service.addTitle(id: "late", name: "Late", publisher: "P", actor: .system).id.rawValue
        } }
        try await Task.sleep(for: .milliseconds(50))
        try f.service.close()
        #expect(try await slow.value == "late", "the running job finished before the store closed")
        #expect(try rowCounts(path: f.path)["titles"] == 1)
    }

    @Test("messages for outsiders: the caller's mistakes in full; our internals and token reasons never")
    func publicMessages() {
        #expect(ServiceError.store(.accountNotFound("x")).publicMessage == "no account 'x'")
        let sql = ServiceError.store(.sqlite(path: "/srv/paywall.sqlite", code: 1, message: "no such table", sql: "SELECT secret FROM t"))
        #expect(!sql.publicMessage.contains("/srv") && !sql.publicMessage.contains("SELECT"))
        let key = ServiceError.keys(.insecurePermissions(path: "/srv/Keys/k.pem", mode: "644"))
        #expect(!key.publicMessage.contains("/srv"))
        let token = ServiceError.token(.wrongAudience)
        #expect(token.publicMessage == "the token was refused")
        #expect(ServiceError.crypto(.malformedPasswordHash("bad")).category == .internal, "a stored hash we cannot use is our fault")
        #expect(ServiceError.crypto(.passwordTooLong(bytes: 2000, limit: 1024)).category == .invalid)
    }

    @Test("a server refuses to start without a signing key; with the development setting it makes one and says so")
    func prepareToServe() throws {
        let production = try ServiceFixture { $0.developmentKeys = false }
        #expect(throws: ServiceError.keys(.noSigningKey(path: production.service.configuration.keysDirectory.path))) {
            try production.service.prepareToServe()
        }
        let demo = try ServiceFixture { $0.developmentKeys = true }
        let created = try demo.service.prepareToServe()
        #expect(created != nil)
        #expect(try demo.service.prepareToServe() == nil, "made once")
        let broken = try TestFolder("paywall-broken-policy")
        try Data("rule \"x\" { when nope; grant full }".utf8).write(to: broken.url.appendingPathComponent("a.policy"))
        let badPolicy = try ServiceFixture { $0.policyDirectory = broken.url }
        #expect(throws: ServiceError.self) { try badPolicy.service.prepareToServe() }
    }

    @Test("a decision in the past does not count a membership that did not exist yet")
    func pastDecision() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        _ = try f.service.addPlan(id: "all", name: "All", period: "month", titles: nil, actor: f.admin)
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let before = f.clock.now()
        f.clock.advance(by: 86_400)
        _ = try f.service.grantMembership(account: "ada@example.com", plan: "all", until: nil, source: .admin, actor: f.admin)
        let then = try f.service.decide(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a"), at: before)
        #expect(then.decidingRules != ["members read the titles in their plan"])
        let now = try f.service.decide(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a"))
        #expect(now.decidingRules == ["members read the titles in their plan"])
    }

    @Test("a decision in the past does not count a trial that had not begun: the reader was still eligible")
    func pastDecisionBeforeTrial() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let before = f.clock.now()
        f.clock.advance(by: 86_400)
        _ = try f.service.startTrial(account: "ada@example.com", actor: f.admin)
        let policy = try f.service.policy()
        let then = try f.service.facts(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a"), request: RequestFacts(), at: before, policy: policy)
        #expect(!then.trial.active && then.trial.eligible, "\(then.trial)")
        let now = try f.service.facts(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a"), request: RequestFacts(), at: f.clock.now(), policy: policy)
        #expect(now.trial.active && !now.trial.eligible)
        #expect(try f.service.decide(reader: .account("ada@example.com"), title: "euronews", article: ArticleInput(id: "a"), at: before).decidingRules != ["trial readers read everything"])
    }

    @Test("verified tokens are cached until they expire, per kind and audience; a key change empties the cache")
    func tokenCache() throws {
        let f = try ServiceFixture()
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let access = try f.service.issueAccessToken(account: "ada@example.com", lifetime: 60, audience: nil).token
        #expect(f.service.tokenCache.count == 0)
        let reader = try f.service.accessReader(bearer: access)
        guard case .account = reader else { Issue.record("not an account reader"); return }
        #expect(f.service.tokenCache.count == 1)
        #expect(try f.service.accessReader(bearer: access) == reader)
        #expect(f.service.tokenCache.count == 1, "a hit, not a second entry")
        // Another kind is never taken from the cache: an access token is not a device token.
        #expect(throws: ServiceError.self) { try f.service.issueDeviceToken(renewing: access) }
        // Past its expiry the cached entry is not used: verification refuses it.
        f.clock.advance(by: 120)
        #expect(throws: ServiceError.self) { try f.service.accessReader(bearer: access) }
        // A key change forgets every cached verification.
        let fresh = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil).token
        _ = try f.service.accessReader(bearer: fresh)
        #expect(f.service.tokenCache.count >= 1)
        _ = try f.service.rotateKey(.es256, publishAhead: 0, actor: f.admin)
        #expect(f.service.tokenCache.count == 0)
    }

    // MARK: - Facts fed from the store

    @Test("a verified email and title tags reach the policy: the shipped university rule matches")
    func verifiedEmailAndTags() throws {
        let f = try ServiceFixture()
        let s = f.service
        _ = try s.addTitle(id: "the-lancet", name: "The Lancet", publisher: "Elsevier", tags: ["Academic", "science"], actor: f.admin)
        _ = try s.addTitle(id: "the-daily", name: "The Daily", publisher: "D", actor: f.admin)
        _ = try s.signUp(email: "prof@uni.example.edu", password: "correct horse battery", displayName: nil, actor: f.admin)
        for n in 1...3 { try s.recordRead(subject: .account(try s.account("prof@uni.example.edu").id), title: "the-daily", article: "used-\(n)") }
        let article = ArticleInput(id: "paper")

        var decision = try s.decide(reader: .account("prof@uni.example.edu"), title: "the-lancet", article: article)
        #expect(decision.access == .teaser, "not verified yet")
        let verified = try s.markEmailVerified(account: "prof@uni.example.edu", method: "admin", actor: f.admin)
        #expect(verified.emailVerifiedAt == f.clock.now())
        f.clock.advance(by: 60)
        #expect(try s.markEmailVerified(account: "prof@uni.example.edu", method: "admin", actor: f.admin).emailVerifiedAt == verified.emailVerifiedAt,
                "idempotent: the first time stays")
        decision = try s.decide(reader: .account("prof@uni.example.edu"), title: "the-lancet", article: article)
        #expect(decision.access == .full)
        #expect(decision.decidingRules == ["staff and students of a partner university"])
        #expect(try s.decide(reader: .account("prof@uni.example.edu"), title: "the-daily", article: article).access == .teaser, "untagged title")
        #expect(try s.store.auditEntries().contains { $0.action == "account.verify-email" })

        // Tags: validated, replaced whole, audited; bad input writes nothing.
        #expect(try s.titles().first { $0.id.rawValue == "the-lancet" }?.tags == ["academic", "science"])
        let before = try f.snapshot()
        for bad in [["a b"], ["-x"], [""], [String(repeating: "t", count: 65)], (0...32).map { "t\($0)" }] {
            #expect(throws: ServiceError.self) { try s.setTitleTags(id: "the-lancet", tags: bad, actor: f.admin) }
        }
        #expect(throws: ServiceError.store(.titleNotFound("nope"))) { try s.setTitleTags(id: "nope", tags: ["a"], actor: f.admin) }
        #expect(try f.snapshot() == before)
        #expect(try s.setTitleTags(id: "the-lancet", tags: [], actor: f.admin).tags.isEmpty)
        #expect(try s.decide(reader: .account("prof@uni.example.edu"), title: "the-lancet", article: article).access == .teaser)
    }

    @Test("an anonymous reader without a device id has no free articles: the meter fails closed")
    func noMeterSubject() throws {
        let f = try ServiceFixture()
        _ = try f.service.addTitle(id: "euronews", name: "Euronews", publisher: "E", actor: f.admin)
        let policy = try PolicyLoader.compile([PolicySource(name: "t.policy", text: """
            meter "anon" { limit 5 per 30 days }
            rule "anonymous readers get five articles" { when not user.signedIn; grant full using meter "anon" }
            """)])
        let facts = try f.service.facts(reader: .anonymous(device: nil), title: "euronews", article: ArticleInput(id: "a"), request: RequestFacts(), at: f.clock.now(), policy: policy)
        #expect(facts.meters == [MeterFacts(used: 5, alreadyRead: false)])
        let before = try f.snapshot()
        let decision = try f.service.decide(reader: .anonymous(device: nil), title: "euronews", article: ArticleInput(id: "a"), policy: policy, record: true)
        #expect(decision.access == .teaser)
        #expect(try f.snapshot() == before, "nothing recorded")
        let withDevice = try f.service.decide(reader: .anonymous(device: "d1"), title: "euronews", article: ArticleInput(id: "a"), policy: policy, record: true)
        #expect(withDevice.access == .full)
    }
}

/// A counter shared by threads (tests only).
final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

@Suite("Rate limiter and token cache generations")
struct LimiterAndCacheTests {
    @Test("a bucket per key; a full table lets newcomers in, keeps a limited client that keeps asking, and forgets a quiet one")
    func limiter() {
        let limiter = RateLimiter(burst: 2, interval: 60, maximumKeys: 8)
        let t = Date(timeIntervalSince1970: 1_000_000)
        #expect(limiter.take("a", at: t) == nil)
        #expect(limiter.take("a", at: t) == nil)
        #expect(limiter.take("a", at: t) != nil, "burst spent")
        #expect(limiter.take("quiet", at: t) == nil)  // one of its two spent
        // Many more clients than the table holds (an attacker's addresses): each gets in,
        // "a" asking between them stays limited, the table stays bounded.
        for i in 0..<100 {
            #expect(limiter.take("n\(i)", at: t) == nil, "newcomer \(i) refused")
            #expect(limiter.take("a", at: t) != nil, "a limited client forgotten at \(i)")
            #expect(limiter.count <= 8)
        }
        // The quiet client was forgotten: a full bucket again (two at once).
        #expect(limiter.take("quiet", at: t) == nil)
        #expect(limiter.take("quiet", at: t) == nil)
        #expect(limiter.take("quiet", at: t) != nil)
        // Refilled with time, as before.
        #expect(limiter.take("a", at: t.addingTimeInterval(60)) == nil)
    }

    @Test("a verification made against keys that changed meanwhile is not cached")
    func staleGeneration() throws {
        let f = try ServiceFixture()
        _ = try f.service.signUp(email: "ada@example.com", password: "correct horse battery", displayName: nil, actor: f.admin)
        let token = try f.service.issueAccessToken(account: "ada@example.com", lifetime: nil, audience: nil).token
        let verified = try f.service.verifyToken(token, kinds: [.access])
        let cache = f.service.tokenCache
        let before = cache.generation
        cache.removeAll()  // the keys changed while it was being verified
        cache.insert(.init(SHA256.hash(token)), verified, at: f.clock.now(), generation: before)
        #expect(cache.count == 0)
        cache.insert(.init(SHA256.hash(token)), verified, at: f.clock.now(), generation: cache.generation)
        #expect(cache.count == 1)
    }
}
