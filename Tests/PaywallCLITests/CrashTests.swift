import Foundation
import Testing
import PaywallTestSupport
import PaywallCore
@testable import PaywallStore

@Suite("Durability")
struct CrashTests {
    @Test("kill -9 in the middle of a stream of acknowledged writes loses none of them")
    func killDuringWrites() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"]).status == 0)

        let process = Process()
        process.executableURL = CLIHarness.executable
        process.arguments = ["meter", "import", "--batch", "1"]
        process.environment = cli.environment
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try launch(process)

        // Feed reads from another thread, far more than will be acknowledged before the kill.
        let writer = Thread {
            let handle = stdin.fileHandleForWriting
            for index in 0..<100_000 {
                let line = #"{"device":"dev-\#(index % 50)","title":"euronews","article":"a\#(index)"}"# + "\n"
                do { try handle.write(contentsOf: Data(line.utf8)) } catch { return }
            }
        }
        writer.start()

        // Read acknowledgements until enough have arrived, then kill without warning.
        var acknowledged = 0
        var buffer = ""
        let reader = stdout.fileHandleForReading
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
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
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
