import Foundation
import Testing
import PaywallTestSupport
import PaywallCore
import PaywallService
@testable import PaywallStore

@Suite("Durability")
struct CrashTests {
    @Test("kill -9 in the middle of a stream of acknowledged writes loses none of them")
    func killDuringWrites() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"]).status == 0)

        let child = try ChildProcess(
            executable: CLIHarness.executable.path, arguments: ["meter", "import", "--batch", "1"], environment: cli.environment,
            input: .pipe, output: .pipe)

        // Feed reads from another thread, far more than will be acknowledged before the kill.
        let writer = Thread {
            guard let handle = child.input else { return }
            for index in 0..<100_000 {
                let line = #"{"device":"dev-\#(index % 50)","title":"euronews","article":"a\#(index)"}"# + "\n"
                do { try handle.write(contentsOf: Data(line.utf8)) } catch { return }
            }
        }
        writer.start()

        // Read acknowledgements until enough have arrived, then kill without warning.
        var acknowledged = 0
        var buffer = ""
        guard let reader = child.output else { Issue.record("no output pipe"); return }
        while acknowledged < 300 {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            buffer += String(decoding: chunk, as: UTF8.self)
            while let newline = buffer.firstIndex(of: "\n") {
                let line = buffer[..<newline]
                if line.hasPrefix("committed "), let count = Int(line.dropFirst("committed ".count)) { acknowledged = count }
                buffer.removeSubrange(...newline)
            }
        }
        child.send(SIGKILL)
        #expect(child.wait() == .signal(SIGKILL))
        #expect(acknowledged >= 300)

        let store = try Store(path: cli.database)
        let stored = try store.readCount()
        #expect(stored >= acknowledged, "acknowledged \(acknowledged), found \(stored)")
        let health = try store.health()
        #expect(health.integrity == ["ok"])
        #expect(health.isHealthy)
    }

    @Test("import: a bad line stops with its number; earlier batches stay, its batch does not")
    func importBadLine() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"]).status == 0)
        let input = """
            {"device":"d1","title":"euronews","article":"a1"}
            {"device":"d1","title":"euronews","article":"a2"}
            {"device":"d1","title":"euronews","article":"a3"}
            {"device":"d1","title":"nope","article":"a4"}
            """
        let result = try cli.run(["meter", "import", "--batch", "2"], input: input + "\n")
        #expect(result.status == 1)
        #expect(result.stdout == "committed 2\n")
        #expect(result.stderr.contains("no title 'nope'"))
        #expect(try cli.snapshot()[4] == 2)

        let malformed = try cli.run(["meter", "import"], input: "{\"device\":\"d1\",\"title\":\"euronews\"}\nnot json\n")
        #expect(malformed.status == 1)
        #expect(malformed.stderr.contains("line 1"))
        #expect(try cli.snapshot()[4] == 2)
    }
}
