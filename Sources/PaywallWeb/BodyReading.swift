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

    /// Set by the error middleware around a request: whether a route began reading its
    /// body (``collect(_:upTo:)``); for one never read the connection's input is closed
    /// (``closeUnread(_:mark:)``) rather than read by the server without a deadline.
    @TaskLocal public static var mark: Mark?

    /// Whether a request's body was taken up by a route.
    public final class Mark: Sendable {
        private let begun = Mutex(false)
        public init() {}
        var isBegun: Bool { begun.withLock { $0 } }
        func begin() { begun.withLock { $0 = true } }
    }

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
        mark?.begin()
        guard let reading = current else { return try await request.collectBody(upTo: limit) }
        let watch = BodyDeadlines.shared.begin(reading.channel, within: reading.deadline)
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            if BodyDeadlines.shared.end(watch) { throw await late(reading) }
            if error is NIOTooManyBytesError { reading.channel.close(mode: .input, promise: nil) }
            throw error
        }
        if BodyDeadlines.shared.end(watch) { throw await late(reading) }
        return buffer
    }

    /// The input closed before the 408 goes out: the watcher closes it too, but from its
    /// own thread a moment later, and on a kept-alive connection that close could cut the
    /// client's next request (found in review).
    private static func late(_ reading: (channel: any Channel, deadline: Duration)) async -> Late {
        try? await reading.channel.close(mode: .input)
        return Late(deadline: reading.deadline)
    }

    /// Closes the connection's input after a request whose body no route read (one
    /// refused before its body: a bad token, a wrong content type, an unknown path, a rate
    /// limit): the answer still goes out, then the connection closes. Left open, the server
    /// read the rest of that body itself before the connection's next request, with no
    /// deadline and no limit: a body sent a byte a minute after a 401 held the connection
    /// for good (found in review). Not read away here under the deadline instead: that
    /// would hold the answer until the body came, and a client sending `Expect:
    /// 100-continue` (curl, past 1 KiB) waits a second for a go-ahead before sending it.
    /// Returns whether it closed it (the answer should then say `Connection: close`, so
    /// that no client sends its next request on the connection).
    public static func closeUnread(_ request: Request, mark: Mark) -> Bool {
        guard !mark.isBegun, declaresBody(request.headers), let reading = current else { return false }
        reading.channel.close(mode: .input, promise: nil)
        return true
    }

    /// Whether a request says a body follows (HTTP/1.1: a length above 0, or chunks).
    static func declaresBody(_ headers: HTTPFields) -> Bool {
        if headers[.transferEncoding] != nil { return true }
        guard let length = headers[.contentLength] else { return false }
        return Int(length).map { $0 > 0 } ?? true
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
