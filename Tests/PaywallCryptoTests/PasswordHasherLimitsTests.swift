import Foundation
import Synchronization
import Testing
@testable import PaywallCrypto

/// A stored hash with the given parameters and random salt and hash (never computed).
func storedHash(_ parameters: String) throws -> String {
    "$scrypt$\(parameters)$\(PasswordHasher.encode(try SecureRandom.bytes(16)))$\(PasswordHasher.encode(try SecureRandom.bytes(32)))"
}

final class FailureCount: Sendable {
    let count = Atomic<Int>(0)
}

@Suite("scrypt limits: stored parameters, password length, concurrency")
struct PasswordHasherLimitsTests {
    @Test("hostile stored parameters are refused, not computed", arguments: [
        "ln=19,r=14,p=16",  // ~900 MiB and 112x OWASP's CPU
        "ln=18,r=16,p=1",   // 512 MiB
        "ln=21,r=8,p=1",    // 2 GiB
        "ln=22,r=1,p=1",    // 512 MiB
        "ln=10,r=8,p=5",    // p above 4
        "ln=4,r=1,p=16",
        "ln=4,r=17,p=1",    // r above 16
    ])
    func hostileStored(_ parameters: String) throws {
        let hasher = try PasswordHasher(parameters: .testing)
        let encoded = try storedHash(parameters)
        do {
            _ = try hasher.verify("whatever password", against: encoded)
            Issue.record("\(parameters) was computed")
        } catch {
            guard case let .unsupportedParameters(reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("refused, not computed"))
        }
        // Not computed: the hash gate never ran (a proof that does not depend on the clock).
        #expect(hasher.gate.runs.load(ordering: .relaxed) == 0)
    }

    @Test("the bounds: 128·r·N ≤ 256 MiB, p ≤ 4, ln ≤ 21, r ≤ 16")
    func bounds() throws {
        for bad in [ScryptParameters(logN: 19, r: 14, p: 16), ScryptParameters(logN: 18, r: 16, p: 1),
                    ScryptParameters(logN: 17, r: 8, p: 5), ScryptParameters(logN: 22, r: 1, p: 1),
                    ScryptParameters(logN: 10, r: 17, p: 1), ScryptParameters(logN: 10, r: 8, p: 0)] {
            #expect(throws: CryptoError.self, "\(bad)") { try bad.validate() }
        }
        for good in [ScryptParameters.owasp, .testing, ScryptParameters(logN: 18, r: 8, p: 1),
                     ScryptParameters(logN: 17, r: 16, p: 4), ScryptParameters(logN: 21, r: 1, p: 1)] {
            try good.validate()
        }
        #expect(throws: CryptoError.self) { try PasswordHasher(parameters: ScryptParameters(logN: 17, r: 8, p: 16)) }
    }

    @Test("a 1 MB password is refused at once, when hashing, verifying and burning")
    func longPassword() throws {
        let hasher = try PasswordHasher(parameters: .testing)
        let huge = String(repeating: "p", count: 1_000_000)
        let stored = try storedHash("ln=17,r=8,p=1")  // OWASP cost if it were computed
        #expect(throws: CryptoError.passwordTooLong(bytes: 1_000_000, limit: 1_024)) { try hasher.verify(huge, against: stored) }
        #expect(throws: CryptoError.passwordTooLong(bytes: 1_000_000, limit: 1_024)) { try hasher.hash(huge) }
        #expect(throws: CryptoError.passwordTooLong(bytes: 1_000_000, limit: 1_024)) { try hasher.burnVerificationTime(huge) }
        #expect(hasher.gate.runs.load(ordering: .relaxed) == 0, "refused before any hashing")
        // Bytes, not characters: 513 two-byte characters are too many; 1024 bytes are fine.
        #expect(throws: CryptoError.passwordTooLong(bytes: 1_026, limit: 1_024)) { try hasher.hash(String(repeating: "é", count: 513)) }
        let longest = String(repeating: "x", count: 1_024)
        #expect(try hasher.verify(longest, against: try hasher.hash(longest)) == .match(needsRehash: false))
        #expect(CryptoError.passwordTooLong(bytes: 1_000_000, limit: 1_024).description.contains("at most 1024 bytes"))
    }

    /// Runs `count` hashes at once on their own threads; returns the gate's peak.
    func concurrentPeak(limit: Int, count: Int) throws -> Int {
        let hasher = try PasswordHasher(parameters: ScryptParameters(logN: 13, r: 8, p: 1), maximumConcurrentHashes: limit)
        let failures = FailureCount()
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                if (try? hasher.hash("password \(index)")) == nil { failures.count.add(1, ordering: .relaxed) }
                group.leave()
            }
            thread.start()
        }
        group.wait()
        #expect(failures.count.load(ordering: .relaxed) == 0)
        #expect(hasher.gate.runs.load(ordering: .relaxed) == count)
        return hasher.gate.peak.load(ordering: .relaxed)
    }

    @Test("with a maximum of 1, concurrent hashes never overlap")
    func serialized() throws {
        #expect(try concurrentPeak(limit: 1, count: 6) == 1)
        // The measure does see overlap when it is allowed.
        #expect(try concurrentPeak(limit: 6, count: 6) > 1)
    }

    @Test("past the waiting limit a hash is refused at once (busy), never queued; there is room again once one ends")
    func busy() throws {
        let gate = HashingGate(limit: 1, maximumWaiting: 1)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        // One computing (held until released), one waiting for its turn.
        for _ in 0..<2 {
            done.enter()
            Thread {
                _ = try? gate.run { () throws(CryptoError) in release.wait() }
                done.leave()
            }.start()
        }
        let deadline = Date().addingTimeInterval(10)
        while gate.inside.load(ordering: .relaxed) < 2, Date() < deadline { usleep(1_000) }
        #expect(gate.inside.load(ordering: .relaxed) == 2)
        // On a thread of its own: one that queued instead would wait for the others.
        let refused = Mutex<CryptoError?>(nil)
        let answered = DispatchSemaphore(value: 0)
        Thread {
            do { _ = try gate.run { () throws(CryptoError) in 0 } } catch { refused.withLock { $0 = error as? CryptoError } }
            answered.signal()
        }.start()
        let atOnce = answered.wait(timeout: .now() + 5) == .success
        #expect(atOnce, "a third hash queued instead of being refused")
        #expect(refused.withLock { $0 } == .busy(waiting: 1))
        #expect(gate.runs.load(ordering: .relaxed) == 0, "the refused one ran nothing")
        for _ in 0..<3 { release.signal() }
        done.wait()
        if !atOnce { answered.wait() }
        #expect(try gate.run { () throws(CryptoError) in 42 } == 42)
        #expect(gate.runs.load(ordering: .relaxed) == (atOnce ? 3 : 4))
        #expect(try PasswordHasher(parameters: .testing, maximumConcurrentHashes: 2).maximumWaitingHashes == 16)
        #expect(CryptoError.busy(waiting: 3).description.contains("try again shortly"))
    }

    @Test("the default maximum is the number of active processors, at least 1")
    func defaultMaximum() throws {
        #expect(try PasswordHasher(parameters: .testing).maximumConcurrentHashes == max(1, ProcessInfo.processInfo.activeProcessorCount))
        #expect(try PasswordHasher(parameters: .testing, maximumConcurrentHashes: 0).maximumConcurrentHashes == 1)
        #expect(try PasswordHasher(parameters: .testing, maximumConcurrentHashes: 3).maximumConcurrentHashes == 3)
    }

    @Test("the unknown-account burn verifies against a dummy hash made once with the configured parameters")
    func burn() throws {
        let parameters = ScryptParameters(logN: 11, r: 8, p: 1)
        let hasher = try PasswordHasher(parameters: parameters)
        #expect(hasher.dummy.value == nil)
        try hasher.burnVerificationTime("guess 1")
        let dummy = try #require(hasher.dummy.value)
        #expect(try PasswordHasher.parameters(of: dummy) == parameters)
        try hasher.burnVerificationTime("guess 2")
        try hasher.burnVerificationTime("guess 3")
        // Made once; one scrypt computation per burn, as for a verification.
        #expect(hasher.dummy.value == dummy)
        #expect(hasher.gate.runs.load(ordering: .relaxed) == 3)
        // Copies share the dummy and the gate.
        let copy = hasher
        try copy.burnVerificationTime("guess 4")
        #expect(hasher.gate.runs.load(ordering: .relaxed) == 4)
    }

    @Test("a burn costs about what verifying a known account's hash costs")
    func burnCost() throws {
        let hasher = try PasswordHasher(parameters: ScryptParameters(logN: 14, r: 8, p: 1))
        let stored = try hasher.hash("the real password")
        try hasher.burnVerificationTime("warm up")
        // Interleaved, so that load from other tests weighs on both alike.
        var verifyTimes: [Duration] = []
        var burnTimes: [Duration] = []
        for _ in 0..<9 {
            var started = ContinuousClock.now
            _ = try hasher.verify("a wrong guess", against: stored)
            verifyTimes.append(ContinuousClock.now - started)
            started = ContinuousClock.now
            try hasher.burnVerificationTime("a wrong guess")
            burnTimes.append(ContinuousClock.now - started)
        }
        let verify = verifyTimes.sorted()[4]
        let burn = burnTimes.sorted()[4]
        let ratio = burn / verify
        #expect(ratio > 0.33 && ratio < 3, "burn \(burn) vs verify \(verify)")
    }
}
