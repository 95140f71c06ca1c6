import Foundation
import PaywallCore
import Testing

@Suite struct ThreadNameTests {
    /// What the kernel calls the thread running the caller (`top -H`, `perf` show it).
    private static func kernelName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
    }

    private static func nameSeen(starting name: String) async -> String {
        await withCheckedContinuation { (done: CheckedContinuation<String, Never>) in
            Thread.startNamed(name) { done.resume(returning: kernelName()) }
        }
    }

    @Test func theKernelSeesTheName() async {
        #expect(await Self.nameSeen(starting: "paywall-commit") == "paywall-commit")
    }

    /// Linux refuses a name over 15 bytes outright (the thread kept Dispatch's or its
    /// parent's): it is cut to 15 instead, and never inside a character.
    @Test func aLongNameIsCut() async {
        #expect(await Self.nameSeen(starting: "paywall-body-deadlines") == "paywall-body-de")
        let cut = await Self.nameSeen(starting: "paywall-pool-ééééé")
        #expect(cut.utf8.count <= 15 && cut.hasPrefix("paywall-pool-"), "\(cut)")
    }
}
