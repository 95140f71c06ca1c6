import Foundation
@testable import PaywallCore
import Testing

/// The bounded map behind the verified-token and grant caches.
@Suite("Generations: a bounded cache map that never scans itself")
struct GenerationsTests {
    @Test("never holds more than its capacity, however many are inserted")
    func bounded() {
        var map = Generations<Int, Int>(capacity: 100)
        var droppedTotal = 0
        for key in 0..<10_000 {
            droppedTotal += map.insert(key, key * 2).count
            #expect(map.count <= 100)
        }
        // Everything inserted is either held or was handed back, once.
        #expect(droppedTotal + map.count == 10_000)
        // The newest are kept; the oldest are gone.
        var dropped: [Int: Int] = [:]
        #expect(map.value(for: 9_999, dropped: &dropped) == 19_998)
        #expect(map.value(for: 0, dropped: &dropped) == nil)
    }

    @Test("an entry in use survives while new ones pass through; one not used ages out after two turns")
    func hotEntriesStay() {
        var map = Generations<String, Int>(capacity: 10)
        map.insert("hot", 1)
        map.insert("cold", 2)
        var dropped: [String: Int] = [:]
        for index in 0..<1_000 {
            map.insert("passing \(index)", index)
            // Used now and then (more often than every two turns of 5 inserts).
            if index % 4 == 0 { #expect(map.value(for: "hot", dropped: &dropped) == 1, "lost at \(index)") }
        }
        #expect(map.value(for: "hot", dropped: &dropped) == 1)
        #expect(map.value(for: "cold", dropped: &dropped) == nil)
    }

    @Test("a value moved up from the old generation is found once, not twice; inserting again replaces")
    func noDuplicates() {
        var map = Generations<String, Int>(capacity: 4)
        map.insert("a", 1)
        map.insert("b", 2)  // young is full (2): a and b turn old
        #expect(map.young.isEmpty && map.old.count == 2)
        var dropped: [String: Int] = [:]
        #expect(map.value(for: "a", dropped: &dropped) == 1)
        #expect(map.young["a"] == 1 && map.old["a"] == nil)
        #expect(map.count == 2)
        map.insert("b", 20)  // young turns old again: a and the new b
        #expect(map.count == 2, "b replaced, not held twice")
        #expect(map.value(for: "b", dropped: &dropped) == 20)
        map.removeAll()
        #expect(map.count == 0)
        #expect(map.value(for: "a", dropped: &dropped) == nil)
    }

    @Test("a value the caller refuses (expired, another kind) is not returned and not kept in use")
    func refusedValuesAgeOut() {
        var map = Generations<String, Int>(capacity: 4)
        map.insert("expired", -1)
        map.insert("other", 2)  // young turns old: both are old now
        var dropped: [String: Int] = [:]
        let usable = { (value: Int) in value >= 0 }
        #expect(map.value(for: "expired", if: usable, dropped: &dropped) == nil)
        #expect(map.old["expired"] == -1 && map.young["expired"] == nil, "left where it was, not moved up")
        #expect(map.value(for: "other", if: usable, dropped: &dropped) == 2)
        map.insert("new", 3)  // young (other, new) turns old: the old one, with the refused entry, is handed back
        #expect(map.value(for: "expired", dropped: &dropped) == nil)
        #expect(map.value(for: "other", dropped: &dropped) == 2)
        // In the young generation too, a refused value is not returned.
        map.insert("young", -5)
        #expect(map.value(for: "young", if: usable, dropped: &dropped) == nil)
        let emptied = map.removeAll()
        #expect(emptied.young.count + emptied.old.count == 2)
        #expect(map.count == 0)
    }

    @Test("capacity rounds up: 3 holds up to 3, 2 up to 2")
    func oddCapacity() {
        for capacity in [2, 3, 5] {
            var map = Generations<Int, Int>(capacity: capacity)
            var most = 0
            for key in 0..<50 {
                map.insert(key, key)
                most = max(most, map.count)
            }
            #expect(most <= capacity, "capacity \(capacity)")
            #expect(most >= capacity - 1, "capacity \(capacity): holds \(most)")
        }
    }

    @Test("a capacity of 0 or 1 still works (a generation of one)")
    func tiny() {
        var map = Generations<Int, Int>(capacity: 0)
        map.insert(1, 1)
        map.insert(2, 2)
        #expect(map.count == 1)
        var dropped: [Int: Int] = [:]
        #expect(map.value(for: 2, dropped: &dropped) == 2)
    }

    @Test("a value taken out is gone from either generation, and put back is found once")
    func removeValue() {
        var map = Generations<String, [Int]>(capacity: 4)
        map.insert("old", [1])
        map.insert("older", [2])  // the young generation holds 2 = half: it turns old
        map.insert("young", [3])
        #expect(map.old["old"] != nil && map.young["young"] != nil)
        #expect(map.removeValue(forKey: "old") == [1])
        #expect(map.removeValue(forKey: "young") == [3])
        #expect(map.removeValue(forKey: "absent") == nil)
        #expect(map.count == 1)
        var dropped: [String: [Int]] = [:]
        #expect(map.value(for: "old", dropped: &dropped) == nil)
        var taken = map.removeValue(forKey: "older") ?? []
        taken.append(4)
        map.insert("older", taken)
        #expect(map.value(for: "older", dropped: &dropped) == [2, 4])
        #expect(map.count == 1)
    }
}
