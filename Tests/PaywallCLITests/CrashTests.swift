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
        #expect(result.stderr.contains("line 4: no title 'nope'"), "the line at fault, not only its batch: \(result.stderr)")
        #expect(result.stderr.contains("nothing of lines 3–4 was stored"), "\(result.stderr)")
        #expect(try cli.snapshot()[4] == 2)

        let malformed = try cli.run(["meter", "import"], input: "{\"device\":\"d1\",\"title\":\"euronews\"}\nnot json\n")
        #expect(malformed.status == 1)
        #expect(malformed.stderr.contains("line 1"))
        #expect(try cli.snapshot()[4] == 2)
    }

    @Test("import reads each line strictly: an unknown or repeated member, a wrong type or a time ahead stops it, nothing of its batch stored", arguments: [
        (#"{"device":"d1","title":"euronews","article":"a9","At":"2026-01-01T00:00:00Z"}"#, "unknown member \"At\""),
        (#"{"device":"d1","title":"euronews","article":"a9","device":"d2"}"#, "duplicate member name \"device\""),
        (#"{"device":"d1","title":"euronews","article":9}"#, "wrong type at \"article\""),
        (#"{"device":"d1","title":"euronews","article":"a9","at":"2099-01-01T00:00:00Z"}"#, "no later than now"),
        (#"["device","d1"]"#, "a JSON object on each line"),
    ])
    func importStrict(line: String, words: String) throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"]).status == 0)
        let input = #"{"device":"d1","title":"euronews","article":"a1"}"# + "\n" + line + "\n"
        let result = try cli.run(["meter", "import"], input: input)
        #expect(result.status == 1)
        #expect(result.stderr.contains("line 2: ") && result.stderr.contains(words), "\(result.stderr)")
        #expect(try cli.snapshot()[4] == 0)
        // The same refusal for one read recorded by hand ahead of time.
        let ahead = try cli.run(["meter", "record", "--device", "d1", "--title", "euronews", "--article", "a1", "--at", "2099-01-01"])
        #expect(ahead.status == 1 && ahead.stderr.contains("no later than now"), "\(ahead.stderr)")
        #expect(try cli.snapshot()[4] == 0)
    }

    @Test("import: an explicit null is an absent member (exporters write them)")
    func importNulls() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"]).status == 0)
        let input = #"{"account":null,"device":"d1","title":"euronews","article":"a1","at":null}"# + "\n"
        let result = try cli.run(["meter", "import", "--json"], input: input)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "{\"committed\":1}\n")
        #expect(try cli.snapshot()[4] == 1)
    }

    @Test("--actor is checked before anything is written: the audit log is append-only")
    func badActor() throws {
        let cli = try CLIHarness()
        #expect(try cli.run(["title", "add", "euronews", "--name", "Euronews", "--publisher", "E"]).status == 0)
        let before = try cli.snapshot()
        for actor in ["", "a\nb", "two words", String(repeating: "x", count: 65)] {
            let result = try cli.run(["title", "add", "t2", "--name", "T", "--publisher", "P", "--actor", actor])
            #expect(result.status == 64 && result.stderr.contains("--actor must be"), "\(actor.debugDescription): \(result.stderr)")
        }
        #expect(try cli.snapshot() == before)
        #expect(try cli.run(["title", "add", "t2", "--name", "T", "--publisher", "P", "--actor", "ops.alice@example.com"]).status == 0)
    }
}
