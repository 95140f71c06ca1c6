import Foundation
import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallStore
import PaywallTokens
import Metrics
import Synchronization

/// One access check, as a reader's app or page asks it.
public struct AccessRequest: Sendable {
    public var title: String
    public var article: ArticleInput
    public var request: RequestFacts
    /// A gift link's token (`paywall-gift+jwt`): full access to its one article, decided
    /// apart from the policy (see ``checkGiftAccess(_:gift:reader:)``).
    public var gift: String?
    /// A comp grant's token (`paywall-comp+jwt`, issued by support staff to this reader):
    /// full access to the titles it lists until it expires, decided apart from the policy
    /// (see ``checkCompAccess(_:comp:reader:)``). On other titles, and once it has expired,
    /// it changes nothing.
    public var comp: String?
    public init(title: String, article: ArticleInput, request: RequestFacts = RequestFacts(), gift: String? = nil, comp: String? = nil) {
        self.title = title
        self.article = article
        self.request = request
        self.gift = gift
        self.comp = comp
    }
}

/// Who asked, as established from their token.
public enum AccessReader: Sendable, Equatable {
    /// A signed-in reader: the account id, and from an access token the account's sign-outs
    /// everywhere it was issued under (``Account/signOutsEverywhere``: once the account's
    /// count is higher, the token opens nothing). Nil for a reader known from a live session
    /// (the web page's cookie).
    case account(AccountID, signOuts: Int? = nil)
    /// An anonymous reader with a device token; the device id.
    case device(String)
    /// No token: nothing can be counted, so metered grants give nothing.
    case anonymous

    var reader: Reader {
        switch self {
        case let .account(id, signOuts): .tokenAccount(id, signOuts: signOuts)
        case let .device(id): .anonymous(device: id)
        case .anonymous: .anonymous(device: nil)
        }
    }

    var meterSubject: MeterSubject? {
        switch self {
        case let .account(id, _): .account(id)
        case let .device(id): .device(id)
        case .anonymous: nil
        }
    }
}

/// The answer to an access check: the decision, when its meter frees a unit again, and
/// the article grant a content server accepts when the access is full.
public struct AccessAnswer: Sendable {
    public var reader: AccessReader
    public var title: TitleID
    public var articleID: String
    public var decision: Decision
    /// When the oldest read counted by the decision's meter leaves the window.
    public var meterResetsAt: Date?
    /// An article grant (`paywall-article+jwt`) when the access is full.
    public var articleGrant: IssuedToken?
}

extension PaywallService {
    // MARK: - Readers from tokens

    /// The reader a bearer token names: an access token is a signed-in reader, a device
    /// token an anonymous device; no token is an anonymous reader without a device. Any
    /// other token, or one that fails verification, is refused (``ServiceError/token(_:)``).
    /// Verified tokens are cached until they expire (``VerifiedTokenCache``).
    public func accessReader(bearer: String?) throws(ServiceError) -> AccessReader {
        guard let bearer else { return .anonymous }
        switch try verifyCached(bearer, kinds: [.access, .device]) {
        case let .access(claims): return .account(AccountID(rawValue: claims.registered.subject), signOuts: claims.signOutsEverywhere)
        case let .device(claims): return .device(claims.deviceID)
        default: throw .token(.wrongType(expected: TokenKind.access.rawValue, actual: nil))
        }
    }

    /// Verifies through the cache of verified tokens (keyed by the token's SHA-256).
    func verifyCached(_ token: String, kinds: Set<TokenKind>) throws(ServiceError) -> VerifiedToken {
        let key = VerifiedTokenCache.Key(SHA256.hash(token))
        let at = now
        if let hit = tokenCache.lookup(key, kinds: kinds, audience: configuration.audience, at: at) {
            TokenCounters.cacheHits.increment()
            return hit
        }
        do {
            // Taken before verifying: if the keys change meanwhile, this result is not cached.
            let generation = tokenCache.generation
            let verified = try verifyToken(token, kinds: kinds)
            TokenCounters.valid.increment()
            tokenCache.insert(key, verified, at: at, generation: generation)
            return verified
        } catch {
            TokenCounters.refused.increment()
            throw error
        }
    }

    // MARK: - Access checks

    /// Decides for the reader and records a metered read exactly once (the check and the
    /// insert in one transaction; a second identical check at once is a free re-read).
    /// When the access is full, an article grant proves it.
    ///
    /// The facts come from one snapshot on a hot reader and the policy is pure, so they run
    /// on the caller's task; a metered read's durable write (fsync) is the store's group
    /// commit thread's, and the check suspends until it is committed. Measured
    /// (Benchmarks/HTTPBenchmark): hopping every check to the blocking pool cost members
    /// about half their throughput in thread switches. On PostgreSQL the facts are network
    /// round trips, which must not hold a cooperative thread: they run on the blocking pool.
    public func checkAccess(_ request: AccessRequest, reader: AccessReader) async throws(ServiceError) -> AccessAnswer {
        if let gift = request.gift { return try await checkGiftAccess(request, gift: gift, reader: reader) }
        if let comp = request.comp, let answer = try await checkCompAccess(request, comp: comp, reader: reader) { return answer }
        let at = now
        let policy = try policy()
        var (facts, decision, pending) = try await offCooperativePoolIfShared { service throws(ServiceError) in
            try service.plan(
                reader: reader.reader, title: request.title, article: request.article, request: request.request, at: at, policy: policy, explain: false,
                optimistic: true)
        }
        // The grant's key must be usable before a unit is spent on it; read once, used below.
        // Also when a read is to be recorded on a teaser: the read may end full (its meter
        // spent meanwhile, a second meter's rule then grants it).
        var grantIssuer: TokenIssuer?
        var noGrant: ServiceError?
        if decision.access == .full || pending != nil {
            do {
                grantIssuer = try mapped { () throws -> TokenIssuer in try self.issuer().0 }
            } catch {
                noGrant = error
            }
        }
        if let error = noGrant, decision.access == .full {
            // No grant can be issued. A meter taken as unused may in fact be spent (a
            // teaser, which needs no grant): decide on the counted meter, and fail only if
            // that is full too.
            guard pending != nil else { throw error }
            (facts, decision, pending) = try await offCooperativePoolIfShared { service throws(ServiceError) in
                try service.plan(
                    reader: reader.reader, title: request.title, article: request.article, request: request.request, at: at, policy: policy, explain: false)
            }
            if decision.access == .full { throw error }
        }
        // When the oldest read a meter counts was made, known from a recorded read's own
        // transaction (by meter index).
        var oldestCounted: (index: Int, at: Date?)?
        if let pending {
            let settled = try await complete(pending, noFullAnswer: noGrant)
            decision = settled.decision
            facts = pending.facts
            oldestCounted = (settled.meterIndex, settled.oldestCounted)
            // A full answer always carries its grant.
            if decision.access == .full, let noGrant { throw noGrant }
        }
        // The ids were validated and the title found when the facts were gathered.
        let title = TitleID(rawValue: facts.title.id)
        var answer = AccessAnswer(reader: reader, title: title, articleID: facts.article.id, decision: decision)
        if let meter = decision.meter, let subject = reader.meterSubject, let index = policy.meters.firstIndex(where: { $0.name == meter.name }) {
            let window = policy.meters[index].window
            if let known = oldestCounted, known.index == index {
                answer.meterResetsAt = known.at?.addingTimeInterval(window)
            } else {  // nothing recorded (a teaser on a spent meter): read it
                answer.meterResetsAt = try await offCooperativePoolIfShared { service throws(ServiceError) in
                    try mapped { try service.store.oldestCountedRead(subject: subject, window: window, at: at)?.addingTimeInterval(window) }
                }
            }
        }
        if decision.access == .full, let issuer = grantIssuer {
            let subject = reader.meterSubject ?? .device("anonymous")
            let lifetime = configuration.articleGrantLifetime
            let key = GrantCache.Key(subject: subject.key, title: title.rawValue, article: facts.article.id, kid: issuer.signer.kid)
            // A unit spent now is the article's first read in the meter's window, so a grant
            // of it is waiting only by chance (one given while the reader was a member):
            // not looked for, since the look was a miss on nearly every metered check.
            let firstRead = decision.meter?.consumed == true
            if !firstRead, let reused = grantCache.reusable(key, lifetime: lifetime, at: at) {
                answer.articleGrant = reused
            } else {
                let issued = try mapped { try articleGrant(issuer, subject: subject, title: title, article: facts.article.id, lifetime: lifetime) }
                grantCache.insert(key, issued)
                answer.articleGrant = issued
            }
        }
        logDecision(answer)
        return answer
    }

    /// At most this many articles in one preview.
    public static let maximumPreview = 100

    /// Runs `body` on the caller's task over SQLite (local reads, measured cheaper than a
    /// thread hop); over PostgreSQL, on the caller's task too when it needs no round trip
    /// (its facts cached), else again on the blocking pool (network waits).
    func offCooperativePoolIfShared<T: Sendable>(_ body: @escaping @Sendable (PaywallService) throws(ServiceError) -> T) async throws(ServiceError) -> T {
        if let done = try store.withoutWaiting({ () throws(ServiceError) -> T in try body(self) }) { return done }
        return try await blocking(body)
    }

    /// Decides for several articles at once without consuming or recording anything
    /// (a list page's locks and "free" badges). A title not in the catalog fails the whole
    /// list (the site's own pages list only catalog titles); the API answers each item
    /// (``previewAnswers(_:reader:)``).
    public func previewAccess(_ requests: [AccessRequest], reader: AccessReader) throws(ServiceError) -> [Decision] {
        try previewAnswers(requests, reader: reader).map { (answer: PreviewAnswer) throws(ServiceError) -> Decision in
            switch answer {
            case let .decided(decision): decision
            case let .unavailable(error): throw error
            }
        }
    }

    /// One article's answer in a preview: a decision, or why its title has none.
    public enum PreviewAnswer: Sendable {
        case decided(Decision)
        /// The title is not in the catalog: never was (``StoreError/titleNotFound(_:)``) or
        /// left it (``StoreError/titleRetired(_:)``). An app's cached list outlives a title;
        /// one such item must not take the badges of the rest with it.
        case unavailable(ServiceError)
    }

    /// ``previewAccess(_:reader:)`` answering each item: a title not in the catalog is that
    /// item's answer. Anything else wrong (a malformed id, the database) fails the list.
    public func previewAnswers(_ requests: [AccessRequest], reader: AccessReader) throws(ServiceError) -> [PreviewAnswer] {
        guard (1...Self.maximumPreview).contains(requests.count) else {
            throw .invalidInput(.invalidValue(field: "articles", value: "\(requests.count) articles", expected: "1 to \(Self.maximumPreview)"))
        }
        let at = now
        var answers: [PreviewAnswer] = []
        answers.reserveCapacity(requests.count)
        for request in requests {
            do throws(ServiceError) {
                answers.append(.decided(try decide(reader: reader.reader, title: request.title, article: request.article, request: request.request, at: at)))
            } catch {
                switch error {
                case .store(.titleNotFound), .store(.titleRetired): answers.append(.unavailable(error))
                default: throw error
                }
            }
        }
        return answers
    }

    // MARK: - Device tokens

    /// A device token for an anonymous reader: a new device, or the same device again when
    /// `renewing` is a valid device token (so its meter carries on).
    public func issueDeviceToken(renewing: String?) throws(ServiceError) -> IssuedToken {
        let device: String
        if let renewing {
            guard case let .device(claims) = try verifyCached(renewing, kinds: [.device]) else {
                throw .token(.wrongType(expected: TokenKind.device.rawValue, actual: nil))
            }
            device = claims.deviceID
        } else {
            device = try mapped { Base64URL.encode(try SecureRandom.bytes16()) }
        }
        return try mapped {
            let (issuer, created) = try issuer()
            let (token, claims) = try issuer.deviceToken(device: device, audience: configuration.audience, lifetime: configuration.deviceTokenLifetime)
            return IssuedToken(token: token, kind: .device, kid: issuer.signer.kid, claims: claims.registered, createdKey: created)
        }
    }
}

/// The token counters, made once (on first use, after the server set up its metrics):
/// every access check touches one, and making a counter looks it up in the registry.
enum TokenCounters {
    static let cacheHits = Counter(label: "paywall_token_cache_hits_total")
    static let valid = Counter(label: "paywall_token_verifications_total", dimensions: [("result", "valid")])
    static let refused = Counter(label: "paywall_token_verifications_total", dimensions: [("result", "refused")])
}

/// Verified tokens by the SHA-256 of their text, until they expire: a reader's repeated
/// checks pay one signature verification (about 50 µs for ES256) per token, not per
/// request. Bounded (``Generations``: the tokens in use stay, the rest age out).
final class VerifiedTokenCache: Sendable {
    private struct Entry: Sendable {
        var token: VerifiedToken
        var expiresAt: Date
    }

    /// A token's SHA-256, as four words: hashed and compared as such (as a `[UInt8]` key
    /// each lookup and insert hashed 32 bytes one at a time and held an array: measured
    /// with `perf`, the cache's inserts were 2% of a cold-token check).
    struct Key: Hashable, Sendable {
        let w0, w1, w2, w3: UInt64

        init(_ digest: [UInt8]) {
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &words) { raw in
                raw.copyBytes(from: digest.prefix(32))
            }
            (w0, w1, w2, w3) = words
        }

        /// The digest is uniformly random already: one word of it is a hash.
        func hash(into hasher: inout Hasher) { hasher.combine(w0) }
    }

    private struct State: Sendable {
        var entries: Generations<Key, Entry>
        /// Bumped whenever the keys change: a verification made against the old keys is
        /// not cached after it.
        var generation = 0
    }

    private let state: Mutex<State>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        state = Mutex(State(entries: Generations(capacity: capacity)))
    }

    /// A cached token of one of `kinds` for `audience`, still within its lifetime.
    func lookup(_ key: Key, kinds: Set<TokenKind>, audience: String, at now: Date) -> VerifiedToken? {
        guard capacity > 0 else { return nil }
        var dropped: [Key: Entry] = [:]
        // Only a usable entry is kept in use (moved to the young generation): an expired
        // token resent for ever ages out like any other.
        let usable = { (entry: Entry) in
            now < entry.expiresAt && kinds.contains(entry.token.kind) && entry.token.registered.audience.contains(audience)
        }
        return state.withLock { $0.entries.value(for: key, if: usable, dropped: &dropped) }?.token
    }

    var generation: Int { state.withLock { $0.generation } }

    func insert(_ key: Key, _ token: VerifiedToken, at now: Date, generation: Int) {
        guard capacity > 0, now < token.registered.expiresAt else { return }
        let dropped = state.withLock { state -> [Key: Entry] in
            guard state.generation == generation else { return [:] }
            return state.entries.insert(key, Entry(token: token, expiresAt: token.registered.expiresAt))
        }
        _ = dropped  // released here, after the lock
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Forgets every token (after a key is retired, tokens it signed must stop passing).
    func removeAll() {
        let dropped = state.withLock { state in
            state.generation += 1
            return state.entries.removeAll()
        }
        _ = dropped  // released here, after the lock
    }
}

/// Article grants made by access checks, handed out again to the same reader for the same
/// article while at least half their lifetime is left: a reader's app asks again on every
/// open and scroll back, and signing a grant is the largest single cost of a member's
/// check (ES256, 14% of it, measured with `perf`). A grant only says "this subject may read
/// this article until exp"; the decision itself is made afresh on every check, and only a
/// full one gets a grant. Keyed by the signing key too: after a rotation grants are new;
/// forgotten whenever the keys change. Bounded (``Generations``).
final class GrantCache: Sendable {
    /// Compared and hashed byte by byte (`String.hasSameBytes(as:)`): an article id written
    /// precomposed and decomposed is two articles to the store and to a content server
    /// comparing the grant's claim, so each gets a grant naming it as asked. The key id is
    /// compared, not hashed: it changes only at a rotation, which empties the cache.
    struct Key: Hashable, Sendable {
        var subject: String
        var title: String
        var article: String
        var kid: String

        static func == (a: Key, b: Key) -> Bool {
            a.subject.hasSameBytes(as: b.subject) && a.title.hasSameBytes(as: b.title)
                && a.article.hasSameBytes(as: b.article) && a.kid.hasSameBytes(as: b.kid)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(bytesOf: subject)
            hasher.combine(bytesOf: title)
            hasher.combine(bytesOf: article)
        }
    }

    private let grants: Mutex<Generations<Key, IssuedToken>>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        grants = Mutex(Generations(capacity: capacity))
    }

    /// The grant issued for `key`, if at least half of `lifetime` is left at `now` (and it
    /// was issued no later than `now`: a clock set back does not get a grant from its future).
    func reusable(_ key: Key, lifetime: TimeInterval, at now: Date) -> IssuedToken? {
        guard capacity > 0 else { return nil }
        var dropped: [Key: IssuedToken] = [:]
        let usable = { (grant: IssuedToken) in grant.claims.issuedAt <= now && grant.claims.expiresAt.timeIntervalSince(now) >= lifetime / 2 }
        return grants.withLock { $0.value(for: key, if: usable, dropped: &dropped) }
    }

    func insert(_ key: Key, _ grant: IssuedToken) {
        guard capacity > 0 else { return }
        let dropped = grants.withLock { $0.insert(key, grant) }
        _ = dropped  // released here, after the lock
    }

    var count: Int { grants.withLock { $0.count } }

    func removeAll() {
        let dropped = grants.withLock { $0.removeAll() }
        _ = dropped  // released here, after the lock
    }
}
