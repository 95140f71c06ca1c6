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
    /// The request being answered, set by the error middleware (nil: a body read outside
    /// the server's router, with no deadline).
    @TaskLocal public static var current: Reading?

    /// A request's connection, how long a route waits for its whole body
    /// (`PAYWALL_BODY_TIMEOUT`), and what became of the body: whether a route began reading
    /// it (``collect(_:upTo:)``; one never read is settled by ``settleUnread(_:)``) and
    /// whether the connection's input was closed on its account.
    public final class Reading: Sendable {
        let channel: any Channel
        let deadline: Duration
        private let state = Mutex((begun: false, inputClosed: false))

        public init(channel: any Channel, deadline: Duration) {
            self.channel = channel
            self.deadline = deadline
        }

        /// Marks the body taken up; whether it already was.
        func begin() -> Bool { state.withLock { state in defer { state.begun = true }; return state.begun } }

        /// Whether no further request will be read on the connection.
        var inputClosed: Bool { state.withLock { $0.inputClosed } }

        /// Stops reading the connection (the answer still goes out, then it closes).
        func closeInput() async {
            state.withLock { $0.inputClosed = true }
            try? await channel.close(mode: .input)
        }
    }

    /// Thrown when the body did not arrive within the deadline.
    public struct Late: Error {
        public let deadline: Duration
    }

    /// The body, at most `limit` bytes (`NIOTooManyBytesError` past it), within the
    /// deadline (``Late`` past it). Either way the connection's input is closed (the answer
    /// still goes out, then the connection closes): the server would otherwise read the
    /// rest of such a body, however long, before the next request. Closed here too when
    /// late, before the 408 goes out: the deadline's watcher closes it from its own thread a
    /// moment later, and on a kept-alive connection that close could cut the client's next
    /// request (found in review).
    public static func collect(_ request: inout Request, upTo limit: Int) async throws -> ByteBuffer {
        guard let reading = current else { return try await request.collectBody(upTo: limit) }
        _ = reading.begin()
        let watch = BodyDeadlines.shared.begin(reading.channel, within: reading.deadline)
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            let late = BodyDeadlines.shared.end(watch)
            if late || error is NIOTooManyBytesError { await reading.closeInput() }
            if late { throw Late(deadline: reading.deadline) }
            throw error
        }
        if BodyDeadlines.shared.end(watch) {
            await reading.closeInput()
            throw Late(deadline: reading.deadline)
        }
        return buffer
    }

    /// The most of a body no route read that is read away to keep the connection (the
    /// API's bodies are at most 64 KiB).
    static let drainLimit = 64 * 1024

    /// Settles the body of a request no route read (one refused before its body: a bad
    /// token, a wrong content type, an unknown path, a rate limit). Left to the server, the
    /// rest of it was read before the connection's next request with no deadline and no
    /// limit: a body sent a byte a minute after a 401 held the connection for good (found
    /// in review). So it is read away here, within the deadline and up to
    /// ``drainLimit``, and the connection kept; past either, or when the client waits for
    /// a go-ahead before sending it (`Expect: 100-continue`, curl's way past 1 KiB), the
    /// connection's input is closed (the answer still goes out, then the connection
    /// closes). Not closed at once: closing a socket with a body still unread in it sends
    /// a reset, which can erase the answer before the client reads it (RFC 9112 §9.6;
    /// found in review). Returns whether the input was closed, here or by the route's read
    /// (the answer should then say `Connection: close`).
    public static func settleUnread(_ request: Request) async -> Bool {
        guard let reading = current else { return false }
        guard !reading.begin(), declaresBody(request.headers) else { return reading.inputClosed }
        let declared = request.headers[.contentLength].flatMap { Int($0) } ?? 0
        guard request.headers[.expect] == nil, declared <= drainLimit else {
            await reading.closeInput()
            return true
        }
        let watch = BodyDeadlines.shared.begin(reading.channel, within: reading.deadline)
        var seen = 0
        do {
            for try await part in request.body {
                seen += part.readableBytes
                if seen > drainLimit { break }
            }
        } catch {
            seen = .max  // broken off: the connection ends
        }
        let whole = !BodyDeadlines.shared.end(watch) && seen <= drainLimit
        if !whole { await reading.closeInput() }
        return !whole
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
