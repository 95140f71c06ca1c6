/// A bounded map for caches (verified tokens and article grants in the service, the SQLite
/// writer's meter state in the store) that never
/// scans itself: entries go into a young generation; when it holds half the capacity it
/// becomes the old one and the previous old generation is dropped whole. A hit in the old
/// generation moves to the young one, so what is used survives and what is not ages out
/// after two turns. At most `capacity` entries (at least one).
///
/// Why: the caches used to drop the expired and then an arbitrary half when full, a pass
/// over every entry (100,000 by default) with the cache's lock held, which stalled every
/// access check on the server each time the cache filled: about 30 ms for the pass and 20
/// more to free the old dictionary, measured here with 100,000 entries (a `swiftc -O`
/// loop). Here an insert is O(1); the generation dropped is handed back to be released
/// after the lock is let go (by the one thread that dropped it, not by all of them).
public struct Generations<Key: Hashable, Value> {
    private(set) var young: [Key: Value] = [:]
    private(set) var old: [Key: Value] = [:]
    /// Size of a generation when it turns old (half the capacity rounded up, at least 1):
    /// the young one holds at most `half - 1` entries and the old one `half`.
    let half: Int

    public init(capacity: Int) {
        half = max(1, (capacity + 1) / 2)
    }

    public var count: Int { young.count + old.count }

    /// The value for `key`; a value found in the old generation moves to the young one
    /// (and what that turns out is returned in `dropped`, for the caller to release).
    public mutating func value(for key: Key, dropped: inout [Key: Value]) -> Value? {
        value(for: key, if: { _ in true }, dropped: &dropped)
    }

    /// ``value(for:dropped:)`` when `usable` accepts the value (nil otherwise); only a
    /// usable value found in the old generation moves to the young one.
    public mutating func value(for key: Key, if usable: (Value) -> Bool, dropped: inout [Key: Value]) -> Value? {
        if let value = young[key] { return usable(value) ? value : nil }
        guard let value = old[key], usable(value) else { return nil }
        old.removeValue(forKey: key)
        dropped = insert(key, value)
        return value
    }

    /// Stores `value`; returns the generation dropped to make room (empty if none), which
    /// the caller should let go of outside its lock.
    @discardableResult
    public mutating func insert(_ key: Key, _ value: Value) -> [Key: Value] {
        old.removeValue(forKey: key)
        young[key] = value
        guard young.count >= half else { return [:] }
        let dropped = old
        old = young
        // Sized for what filled the last one: grown from empty, it was rehashed at each
        // doubling on the way (measured with `perf` on cold-token checks: 0.7% of a check).
        young = Dictionary(minimumCapacity: half)
        return dropped
    }

    /// Takes the value for `key` out of the map (nil if absent): a value changed and put
    /// back with ``insert(_:_:)`` is then not copied, as a copy still held here would make it.
    public mutating func removeValue(forKey key: Key) -> Value? {
        young.removeValue(forKey: key) ?? old.removeValue(forKey: key)
    }

    /// Empties the map; returns what it held, for the caller to release outside its lock.
    @discardableResult
    public mutating func removeAll() -> (young: [Key: Value], old: [Key: Value]) {
        defer { (young, old) = ([:], [:]) }
        return (young, old)
    }
}

extension Generations: Sendable where Key: Sendable, Value: Sendable {}
