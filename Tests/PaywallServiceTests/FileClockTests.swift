import Foundation
import PaywallCore
import PaywallTestSupport
import Testing
@testable import PaywallService

@Suite("The test clock read from a file (PAYWALL_TEST_CLOCK_FILE)")
struct FileClockTests {
    /// Replaces the file atomically, as the end-to-end test does.
    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test("ISO 8601 or epoch seconds; read again when the file changes; a bad write keeps the last instant")
    func moves() throws {
        let folder = try TestFolder("paywall-clock")
        let path = folder.path("now")
        try write("2026-03-02T09:00:00Z\n", to: path)
        let clock = try FileClock(path: path)
        #expect(clock.now() == Date(timeIntervalSince1970: 1_772_442_000))
        #expect(clock.now() == clock.now(), "stopped between writes")
        try write("1772528400", to: path)
        #expect(clock.now() == Date(timeIntervalSince1970: 1_772_528_400), "a rewrite within the same timestamp tick is seen (a new inode)")
        try write("2026-03-04T09:00:00.500+01:00", to: path)
        #expect(clock.now() == Date(timeIntervalSince1970: 1_772_611_200.5))
        try write("soon", to: path)
        #expect(clock.now() == Date(timeIntervalSince1970: 1_772_611_200.5), "unparseable: the last instant stays")
        try FileManager.default.removeItem(atPath: path)
        #expect(clock.now() == Date(timeIntervalSince1970: 1_772_611_200.5), "missing: the last instant stays")
        try write("1772700000", to: path)
        #expect(clock.now() == Date(timeIntervalSince1970: 1_772_700_000), "a good file again is read")
    }

    @Test("resolved only in test mode; a missing or unparseable file is refused with the variable's name")
    func setting() throws {
        let folder = try TestFolder("paywall-clock")
        let path = folder.path("now")
        try write("2026-03-02T09:00:00Z", to: path)
        let resolved = try ServiceConfiguration.resolve(environment: ["PAYWALL_TESTING": "1", "PAYWALL_TEST_CLOCK_FILE": path])
        #expect(resolved.clock.now() == Date(timeIntervalSince1970: 1_772_442_000))
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_TESTING": "1"]).clock is SystemClock)
        try write("yesterday", to: folder.path("bad"))
        let refused: [([String: String], String)] = [
            (["PAYWALL_TEST_CLOCK_FILE": path], "PAYWALL_TESTING=1"),
            (["PAYWALL_TESTING": "0", "PAYWALL_TEST_CLOCK_FILE": path], "tests only"),
            (["PAYWALL_TESTING": "1", "PAYWALL_TEST_CLOCK_FILE": folder.path("missing")], "no such file"),
            (["PAYWALL_TESTING": "1", "PAYWALL_TEST_CLOCK_FILE": folder.path("bad")], "neither an ISO 8601 instant"),
        ]
        for (environment, message) in refused {
            #expect(throws: ServiceError.self, "\(environment)") { try ServiceConfiguration.resolve(environment: environment) }
            do { _ = try ServiceConfiguration.resolve(environment: environment) } catch {
                #expect(error.description.contains("PAYWALL_TEST_CLOCK_FILE") && error.description.contains(message), "\(error)")
            }
        }
    }
}
