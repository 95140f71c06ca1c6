import Foundation
import Synchronization

/// A server's copy of the facts an access check reads (accounts, memberships, trials,
/// trial eligibility, titles), on both backends.
///
/// Why: on PostgreSQL each fact is a network round trip and a statement the database
/// parses; a member check made about seven (BENCHMARKS.md, shared store: 1,800 member checks
/// a second against 19,500 on SQLite). On SQLite the facts' reads, with the read
/// transaction they share, were a quarter of a member check's CPU (BENCHMARKS.md, HTTP API).
/// Facts change rarely and are read on every check.
///
/// Exactness: the server drops what changed, wherever it changed. Triggers name the
/// account (`account:ID`), the person (`person:KEY`, trial eligibility) or `catalog`
/// (titles and plans: everything goes) of every change:
/// - PostgreSQL (`v12-facts-notifications`) notifies `paywall_facts` on commit. Each server
///   listens on its pooled connections and serves from the cache only while they are up: on
///   a disconnection the cache empties and is off until it listens again (notifications
///   sent meanwhile are lost).
/// - SQLite (`v13-facts-changes`) appends to a change log in the same file, which the server
///   reads after each of its own writes (but batches of metered reads, which change no
///   fact) and at most every millisecond before a check
///   (``SQLiteFactsChanges``): another process's change (the CLI's) is seen by checks
///   that start a millisecond after its commit.
///
/// A value read before an invalidation is never stored after it: the generation is taken
/// before the read, or before the snapshot the read joins began (``value(group:key:since:_:)``).
/// Entries also expire after ``maximumAge`` as a backstop. The meters are never cached: they
/// are the store's exact part.
final class FactsCache: Sendable {
    private struct State {
        var enabled = false
        var generation: UInt64 = 0
        /// Group (`account:ID`, `person:KEY`, `catalog`) to key to value and when stored.
        var groups: [String: [String: (value: any Sendable, storedAt: ContinuousClock.Instant)]] = [:]
        var count = 0
    }

    private let state = Mutex(State())
    let capacity: Int
    let maximumAge: Duration

    init(capacity: Int = 100_000, maximumAge: Duration = .seconds(60)) {
        self.capacity = capacity
        self.maximumAge = maximumAge
    }

    /// The value cached under `key` of `group`, or the one `load` reads (stored unless
    /// something was invalidated while it read). `since` gives, after the load, the
    /// generation when the transaction the load read in began, if that was earlier (a
    /// snapshot begun before this lookup): a value from an older snapshot is not stored
    /// after an invalidation either.
    func value<T: Sendable, E: Error>(group: String, key: String, since: () -> UInt64? = { nil }, _ load: () throws(E) -> T) throws(E) -> T {
        let now = ContinuousClock.now
        let lookup: (hit: T?, generation: UInt64?) = state.withLock { state in
            guard state.enabled else { return (nil, nil) }
            if let entry = state.groups[group]?[key], now - entry.storedAt < maximumAge, let value = entry.value as? T {
                return (value, nil)
            }
            return (nil, state.generation)
        }
        if let hit = lookup.hit { return hit }
        let loaded = try load()
        if var generation = lookup.generation {
            if let began = since() { generation = min(generation, began) }
            state.withLock { state in
                guard state.enabled, state.generation == generation else { return }
                if state.count >= capacity {
                    state.groups.removeAll()
                    state.count = 0
                }
                if state.groups[group, default: [:]].updateValue((loaded, now), forKey: key) == nil { state.count += 1 }
            }
        }
        return loaded
    }

    /// Drops what a notification names.
    func invalidate(_ payload: String) {
        state.withLock { state in
            state.generation &+= 1
            if payload == "catalog" || payload.isEmpty {
                state.groups.removeAll()
                state.count = 0
            } else if let removed = state.groups.removeValue(forKey: payload) {
                state.count -= removed.count
            }
        }
    }

    /// Serving from the cache on or off (the listening connection is up or down); empties it.
    func setEnabled(_ enabled: Bool) {
        state.withLock { state in
            state.enabled = enabled
            state.generation &+= 1
            state.groups.removeAll()
            state.count = 0
        }
    }

    var isEnabled: Bool { state.withLock { $0.enabled } }

    /// The count of invalidations so far (a transaction that begins now sees every change
    /// invalidated before it).
    var generation: UInt64 { state.withLock { $0.generation } }
}
