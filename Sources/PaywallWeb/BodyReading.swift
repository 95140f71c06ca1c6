import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// Reading a request's body within a deadline, for the API's routes and the web pages'
/// forms alike (both on the router whose error middleware sets ``current``).
///
/// Why: the connection's idle timer starts again with each piece of a body, so a client
/// sending a byte a minute held a connection and a waiting handler for good (found in
/// review). Past the deadline ``BodyDeadlines`` closes the connection's input, which ends
/// the read, and the rest of such a body is never read. Not a task racing a timer per
/// request: two child tasks and a timer would cost every access check a few microseconds
/// of its ~50; a registration here costs a lock (BENCHMARKS.md, eighteenth session).
public enum BodyReading {
    /// The connection a request's body comes on and how long a route waits for all of it
    /// (`PAYWALL_BODY_TIMEOUT`). Nil (a body read outside the server's router): no deadline.
    @TaskLocal public static var current: (channel: any Channel, deadline: Duration)?

    /// Thrown when the body did not arrive within the deadline.
    public struct Late: Error {
        public let deadline: Duration
    }

    /// The body, at most `limit` bytes (`NIOTooManyBytesError` past it), within the
    /// deadline (``Late`` past it). Either way the connection's input is closed (the answer
    /// still goes out, then the connection closes): the server would otherwise read the
    /// rest of such a body, however long, before the next request. Late, the deadline
    /// closed it already.
    public static func collect(_ request: inout Request, upTo limit: Int) async throws -> ByteBuffer {
        guard let reading = current else { return try await request.collectBody(upTo: limit) }
        let watch = BodyDeadlines.shared.begin(reading.channel, within: reading.deadline)
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            if BodyDeadlines.shared.end(watch) { throw Late(deadline: reading.deadline) }
            if error is NIOTooManyBytesError { reading.channel.close(mode: .input, promise: nil) }
            throw error
        }
        if BodyDeadlines.shared.end(watch) { throw Late(deadline: reading.deadline) }
        return buffer
    }
}

/// Request bodies being read, each with its deadline: a thread of its own looks four times
/// a second and closes the input of a connection whose body is late (its read then ends).
/// Registering and ending a read take a lock and no task.
final class BodyDeadlines: Sendable {
    static let shared = BodyDeadlines()

    private struct Watch {
        let channel: any Channel
        let deadline: ContinuousClock.Instant
        var expired = false
    }

    private struct State {
        var watches: [Int: Watch] = [:]
        var next = 0
        var watching = false
    }

    private let state = Mutex(State())

    /// Starts watching a read on `channel`; ``end(_:)`` with what it returns.
    func begin(_ channel: any Channel, within deadline: Duration) -> Int {
        let (id, start) = state.withLock { state in
            let id = state.next
            state.next &+= 1
            state.watches[id] = Watch(channel: channel, deadline: .now + deadline)
            defer { state.watching = true }
            return (id, !state.watching)
        }
        if start {
            Thread.startNamed("paywall-deadline") { [self] in watch() }
        }
        return id
    }

    /// Stops watching; whether the deadline had passed (and the input was closed).
    func end(_ id: Int) -> Bool {
        state.withLock { $0.watches.removeValue(forKey: id)?.expired ?? false }
    }

    private func watch() {
        while true {
            Thread.sleep(forTimeInterval: 0.25)
            let now = ContinuousClock.now
            let late: [any Channel] = state.withLock { state in
                var late: [any Channel] = []
                for (id, watch) in state.watches where !watch.expired && watch.deadline <= now {
                    state.watches[id]?.expired = true
                    late.append(watch.channel)
                }
                return late
            }
            for channel in late { channel.close(mode: .input, promise: nil) }
        }
    }
}
