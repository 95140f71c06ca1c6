import Foundation
import PaywallService
import Synchronization

/// What a program run to its end said.
public struct ProgramRun: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` (a path) with `arguments` to its end, feeding it `input`. Through
/// ``ChildProcess``: Foundation's `Process` crashes now and then in a process with many
/// open files, as a test run is.
public func runProgram(
    _ executable: String, _ arguments: [String], directory: String? = nil, environment: [String: String]? = nil, input: Data = Data()
) throws -> ProgramRun {
    let child = try ChildProcess(executable: executable, arguments: arguments, environment: environment, directory: directory,
                                 input: .pipe, output: .pipe, error: .pipe)
    try? child.input?.write(contentsOf: input)
    try? child.input?.close()
    // Both streams read at once: a program filling one pipe while we wait on the other
    // would never end.
    let errors = Mutex(Data())
    let done = DispatchSemaphore(value: 0)
    Thread {
        let data = child.error?.readDataToEndOfFile() ?? Data()
        errors.withLock { $0 = data }
        done.signal()
    }.start()
    let out = child.output?.readDataToEndOfFile() ?? Data()
    done.wait()
    let exit = child.wait()
    return ProgramRun(status: exit.code, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: errors.withLock { $0 }, as: UTF8.self))
}
