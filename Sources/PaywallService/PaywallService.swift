import Foundation
import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallStore
import PaywallTokens
import Synchronization

/// The service: validates input, orchestrates the store and the cryptography, holds the
/// policy and the key ring, and is the one thing the CLI and the HTTP server talk to.
///
/// Every operation has a synchronous form (for the CLI and tests) and, for those that
/// block (fsync'd writes, scrypt), an `async` form that runs on a bounded pool of threads
/// (``BlockingPool``), never on Swift's cooperative pool.
public final class PaywallService: Sendable {
    /// The account store: reached only through the service.
    let store: Store
    /// The settings in force.
    public let configuration: ServiceConfiguration
    let hasher: PasswordHasher
    let blocking: BlockingPool
    /// The signing key's signer, once its private key has been read (see ``signer(_:)``).
    let heldSigner = Mutex<JWSSigner?>(nil)
    /// Verified access and device tokens, until they expire.
    let tokenCache: VerifiedTokenCache
    /// Delivers queued mail off the request path (``MailCourier``).
    let mailCourier = MailCourier()
    /// Sign-ups per client address: a burst (``ServiceConfiguration/signUpsPerAddress``),
    /// then one a minute.
    let signUps: RateLimiter
    /// Password-reset requests per client address (the same burst, then one a minute):
    /// each may queue a mail to an address the caller names.
    let resetRequests: RateLimiter
    /// Email-address changes per account (``changeOwnEmail(accountID:password:newEmail:client:)``):
    /// each mails a link to an address the reader types, and the per-address mail budget
    /// is counted per spelling; three, then one an hour. Kept in the store: every server
    /// counts alike, and a restart forgets nothing.
    static let emailChanges = StoredRateLimit(scope: "email-change", burst: 3, interval: 3_600)
    /// Data exports per account (``exportOwnData(accountID:password:client:)``): each reads
    /// every row about the reader; three, then one an hour. Kept in the store.
    static let exports = StoredRateLimit(scope: "export", burst: 3, interval: 3_600)
    /// Article grants of access checks, reused while young (see ``GrantCache``).
    let grantCache: GrantCache
    /// The readiness check in flight (``readiness(within:)``).
    let readinessProbe = ReadinessProbe()
    /// The last access decisions, for the admin area (``DecisionLog``).
    public let decisionLog = DecisionLog(capacity: 200)
    /// Loaded on first use, replaced by ``reloadPolicy()`` only with a set that checks;
    /// with the number of the publication it came from (nil: the configured folder). One
    /// lock for both: the policy in force and its number never disagree.
    private let heldPolicy = Mutex<(policy: Policy, publication: Int64?)?>(nil)
    /// Loaded on first use, replaced by ``reloadKeys()`` and after every key change.
    private let heldKeys = Mutex<HeldKeys?>(nil)

    struct HeldKeys: Sendable {
        var ring: KeyRing
        var verifier: TokenVerifier
        /// The SHA-256 of the manifest the ring was read from (``refreshKeysIfChanged()``).
        var manifest: [UInt8]?
    }

    /// Opens the database at the configured path (creating and migrating it as needed).
    public convenience init(configuration: ServiceConfiguration) throws(ServiceError) {
        var storeConfiguration = configuration.store
        storeConfiguration.clock = configuration.clock
        let store = try mapped { try Store(path: configuration.databaseLocation, configuration: storeConfiguration) }
        try self.init(store: store, configuration: configuration)
    }

    /// A service over an open store (whose clock is the service's).
    init(store: Store, configuration: ServiceConfiguration) throws(ServiceError) {
        self.store = store
        var configuration = configuration
        configuration.clock = store.clock
        self.configuration = configuration
        do throws(ServiceError) {
            if !configuration.passwordHashing.isAtLeast(ServiceConfiguration.minimumPasswordHashing), !configuration.testing {
                throw ServiceError.configuration(
                    name: "password hashing", value: configuration.passwordHashing.description,
                    expected: "at least OWASP's \(ServiceConfiguration.minimumPasswordHashing) outside tests")
            }
            self.hasher = try mapped {
                try PasswordHasher(parameters: configuration.passwordHashing, maximumConcurrentHashes: configuration.concurrentPasswordHashes)
            }
        } catch {
            try? store.close()  // opened by the convenience initializer for us
            throw error
        }
        self.blocking = BlockingPool(threads: configuration.blockingThreads, name: "paywall-pool")
        self.tokenCache = VerifiedTokenCache(capacity: configuration.tokenCacheCapacity)
        self.grantCache = GrantCache(capacity: configuration.tokenCacheCapacity)
        self.signUps = RateLimiter(burst: configuration.signUpsPerAddress, interval: 60)
        self.resetRequests = RateLimiter(burst: configuration.signUpsPerAddress, interval: 60)
    }

    /// "Now", from the configured clock.
    public var now: Date { store.clock.now() }

    /// Where the data is: the SQLite file, or the PostgreSQL URL without its password.
    public var databaseLocation: String { store.location }

    /// Runs blocking work on the service's thread pool (see ``BlockingPool``).
    public func blocking<T: Sendable>(_ body: @escaping @Sendable (PaywallService) throws(ServiceError) -> T) async throws(ServiceError) -> T {
        try await blocking.run { () throws(ServiceError) -> T in try body(self) }
    }

    // MARK: - The policy

    /// The policy in force: on first use, the newest policy published to the store, or the
    /// configured folder when none was published (a server loads it at start with
    /// ``prepareToServe()``).
    public func policy() throws(ServiceError) -> Policy {
        try heldPolicy.withLock { (held: inout (policy: Policy, publication: Int64?)?) throws(ServiceError) -> Policy in
            if let held { return held.policy }
            let (loaded, publication) = try loadPolicyInForce()
            held = (loaded, publication)
            return loaded
        }
    }

    /// The number of the publication in force (nil: the configured folder, or not loaded).
    public var policyPublication: Int64? { heldPolicy.withLock { $0?.publication } }

    /// The newest published policy that compiles here and its number, or the folder's and
    /// nil when none was published. A newer publication this version cannot compile (made
    /// by a newer paywall) is passed over, so a restarted server still starts; the policy
    /// watcher then reports it (``refreshPublishedPolicy()`` refuses it with its errors).
    func loadPolicyInForce() throws(ServiceError) -> (Policy, Int64?) {
        if configuration.policyFolderFirst { return (try loadPolicy(directory: configuration.policyDirectory), nil) }
        let history = try mapped { try store.policyHistory(limit: 50) }
        var firstError: ServiceError?
        for published in history {
            do {
                return (try Self.compile(published), published.number)
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }  // publications exist and none compiles
        return (try loadPolicy(directory: configuration.policyDirectory), nil)
    }

    /// Puts `policy` in force (from `publication`, or the folder when nil). A publication
    /// older than the one in force is ignored (two refreshes finishing out of order).
    @discardableResult
    func putInForce(_ policy: Policy, publication: Int64?) -> Bool {
        heldPolicy.withLock { held in
            if let publication, let current = held?.publication, publication < current { return false }
            held = (policy, publication)
            return true
        }
    }

    /// Whether the SQLite file may be read by other users than its owner: made before
    /// paywall created its files 0600, or changed since. It holds password hashes, sessions
    /// and mail waiting to be sent; `serve` warns at start.
    public var databaseReadableByOthers: Bool {
        let location = configuration.databaseLocation
        guard !location.contains("://"),
              let mode = (try? FileManager.default.attributesOfItem(atPath: location))?[.posixPermissions] as? Int
        else { return false }
        return mode & 0o077 != 0
    }

    /// What a server checks before it takes a request: the policy loads and checks, the
    /// key ring loads, and a key signs now (without the development setting none is
    /// made: ``KeyRingError/noSigningKey(path:)``). Returns the development key it made,
    /// if it made one, so the caller can say so.
    @discardableResult
    public func prepareToServe() throws(ServiceError) -> KeyRecord? {
        try reloadPolicy()
        try reloadKeys()
        let created = try mapped { try issuer().1 }
        // Mail already waiting (queued by the CLI, claimed by a server that crashed, due for
        // a retry, queued before sendmail was set) is delivered from the start: the courier
        // otherwise began only with the next message queued.
        nudgeMailCourier()
        return created
    }

    /// Loads the policy again: the newest published to the store, or the configured folder
    /// when none was published. A set that does not check is refused (the error lists
    /// every diagnostic) and the policy in force stays.
    @discardableResult
    public func reloadPolicy() throws(ServiceError) -> Policy {
        let (loaded, publication) = try loadPolicyInForce()
        heldPolicy.withLock { $0 = (loaded, publication) }  // an explicit reload: whatever it found
        return loaded
    }

    /// Loads and checks a policy folder without putting it in force (`policy diff`).
    public func loadPolicy(directory: URL) throws(ServiceError) -> Policy {
        try Self.checkPolicy(directory: directory)
    }

    /// Loads and checks a policy folder; needs no database (`policy check`, `policy test`).
    public static func checkPolicy(directory: URL) throws(ServiceError) -> Policy {
        do {
            return try PolicyLoader.load(directory: directory)
        } catch {
            throw .policy(error)
        }
    }

    /// Refuses a key folder that neither exists nor can be made; needs no database (a
    /// server checks it before it makes one).
    public static func checkKeyFolder(_ directory: URL) throws(ServiceError) {
        do { try KeyRing.checkCanOpen(directory) } catch { throw .keys(error) }
    }

    // MARK: - The key ring

    /// The key ring in force and a verifier trusting its live keys: loaded on first use.
    func keys() throws(ServiceError) -> HeldKeys {
        try heldKeys.withLock { (held: inout HeldKeys?) throws(ServiceError) -> HeldKeys in
            if let held { return held }
            let loaded = try loadKeys()
            held = loaded
            return loaded
        }
    }

    /// Loads the key folder again (after a rotation by another process, say). A folder
    /// that cannot be read is refused and the ring in force stays; so is an empty one while
    /// the ring in force has keys (a folder moved aside for a moment, its manifest not yet
    /// written): swapped in, it refused every token until the next look, served an empty
    /// JWKS that caches keep for minutes, and (with development keys) made a new key. A ring
    /// whose keys were retired is taken: a leaked key must stop verifying at once.
    @discardableResult
    public func reloadKeys() throws(ServiceError) -> KeyRing {
        let loaded = try loadKeys()
        let hadKeys = heldKeys.withLock { $0.map { !$0.ring.records.isEmpty } } ?? false
        if hadKeys, loaded.ring.records.isEmpty {
            throw .keys(.noSigningKey(path: configuration.keysDirectory.path))
        }
        heldKeys.withLock { $0 = loaded }
        heldSigner.withLock { $0 = nil }
        tokenCache.removeAll()
        grantCache.removeAll()
        return loaded.ring
    }

    private func loadKeys() throws(ServiceError) -> HeldKeys {
        // Read before the ring: a change in between is seen (again) at the next look.
        let manifest = keyManifestDigest()
        let ring = try mapped { try KeyRing.load(directory: configuration.keysDirectory) }
        return HeldKeys(ring: ring, verifier: verifier(for: ring), manifest: manifest)
    }

    /// The SHA-256 of the key folder's manifest now; nil when it cannot be read.
    private func keyManifestDigest() -> [UInt8]? {
        let url = configuration.keysDirectory.appendingPathComponent(KeyRing.manifestName)
        return (try? Data(contentsOf: url)).map { SHA256.hash(Array($0)) }
    }

    /// Loads the key ring again when its manifest changed since it was loaded: another
    /// process (`paywall keys rotate`, `paywall keys retire`) or another server's deploy
    /// wrote it. Nil when nothing changed, or when no ring was needed yet (it is read on
    /// first use). Why poll: a key retired because it leaked must stop verifying on every
    /// running server, not only in the process that retired it; the server looks every two
    /// seconds (a file's digest: microseconds).
    public func refreshKeysIfChanged() throws(ServiceError) -> KeyRing? {
        let held: [UInt8]?? = heldKeys.withLock { $0.map(\.manifest) }
        guard let held else { return nil }  // not loaded yet
        // Unreadable now (being replaced): the next look.
        guard let now = keyManifestDigest(), now != held else { return nil }
        return try reloadKeys()
    }

    func verifier(for ring: KeyRing) -> TokenVerifier {
        TokenVerifier(jws: JWSVerifier(keys: ring.verificationKeys(at: now)), issuer: configuration.issuer, leeway: configuration.tokenLeeway, clock: store.clock)
    }

    /// Puts a ring just written in force. Cached verifications are forgotten: a key
    /// retired must stop vouching for its tokens at once.
    func hold(_ ring: KeyRing) {
        heldKeys.withLock { $0 = HeldKeys(ring: ring, verifier: verifier(for: ring), manifest: keyManifestDigest()) }
        heldSigner.withLock { $0 = nil }
        tokenCache.removeAll()
        grantCache.removeAll()
    }

    /// Stops taking blocking work, waits for what is queued and running to finish, then
    /// closes the database.
    public func close() throws(ServiceError) {
        mailCourier.stop()
        blocking.shutdown()
        try mapped { try store.close() }
    }
}
