import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import CurriculumCore


/// A real HTTP/1.1 server on 127.0.0.1 that stands in for every internet
/// host the book's listings call, so no test or demo ever leaves the machine.
///
/// Built on plain SwiftNIO channel handlers, and every delay is scheduled on
/// the stub's own event loop (`scheduleTask(in:)`), never on Swift's
/// cooperative pool: tests that deliberately saturate or block that pool
/// (listings 2.19–2.20) still get their answers.
///
/// ## Routes
/// - `GET /`, `/repos/`, `/about/`, `/projects/`: 200 with a small HTML page.
/// - `/delay/{ms}`: 200 after `ms` milliseconds.
/// - `/status/{code}`: that status.
/// - `/bytes/{n}`: `n` bytes.
/// - `/barrier/{n}?key=K&timeout_ms=T`: each request waits until `n` requests
///   with key `K` wait at once, then all get 200; one whose `T` (default
///   5000) passes first gets 504 — proof of concurrency with no stopwatch.
/// - `/hang`: never answers (until the client goes away).
/// - `/reset`: closes the connection with a TCP RST, no response.
/// - `/redirect?to=/path`: 302 to `/path`; `/redirect/{code}?to=/path`: that
///   status (300–399) to `/path`.
/// - `/stall-body?bytes=N`: the head announcing N bytes (default 4,096) and
///   half of them, then nothing: only a deadline covering the body ends it.
/// - `/raw/page`: a small HTML page whose body does not end with a newline
///   (chapter 8's unterminated last line).
/// - `/raw/split`: a UTF-8 body written in two parts 20 ms apart, cut inside
///   a multi-byte character.
/// - `/fixtures/<path>`: a file from the package's `Fixtures/` folder.
/// - routes added with ``register(_:status:contentType:headers:body:)``.
/// - anything else: 404.
///
/// Any request may carry `?id=X` (echoed in `X-Request-Id` and in the body)
/// and `?delay_ms=N` (answer after N ms, on any route); a `HEAD` request with
/// `?head_status=C` gets status C (e.g. 405, to refuse HEAD).
///
/// ## Counters
/// ``counters`` counts requests started, completed (answered), aborted (the
/// client went away before the answer: a scheduled answer is cancelled),
/// bodies cut off (the head went out and the client hung up before the last
/// byte: a link check that never downloaded a body), in flight, the **peak**
/// in flight, per path, barrier timeouts, and TCP connections (accepted, and
/// open now). A request with `Connection: close` gets its answer and then
/// the stub closes the connection. The
/// `waitUntil…` methods suspend until a counter reaches a value, without
/// polling.
///
/// Start one with ``withStubServer(fixturesDirectory:_:)``, which always shuts
/// it down, or ``start(fixturesDirectory:threads:)`` and ``shutdown()``.
public final class StubHTTPServer: Sendable {
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// `http://127.0.0.1:PORT`.
    public let baseURL: String
    /// Where `/fixtures/…` reads files from.
    public let fixturesDirectory: URL

    let state: StubState
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    private init(port: Int, fixturesDirectory: URL, state: StubState, group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.port = port
        self.baseURL = "http://127.0.0.1:\(port)"
        self.fixturesDirectory = fixturesDirectory
        self.state = state
        self.group = group
        self.channel = channel
    }

    /// Starts a stub on 127.0.0.1 and a free port.
    ///
    /// - Parameters:
    ///   - fixturesDirectory: served under `/fixtures/`; defaults to
    ///     ``defaultFixturesDirectory``.
    ///   - threads: event-loop threads of its own (1 is plenty for tests).
    public static func start(fixturesDirectory: URL? = nil, threads: Int = 1) async throws -> StubHTTPServer {
        let fixtures = fixturesDirectory ?? defaultFixturesDirectory
        let state = StubState()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 4096)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(StubHandler(state: state, fixtures: fixtures))
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
            let port = channel.localAddress?.port ?? 0
            return StubHTTPServer(port: port, fixturesDirectory: fixtures, state: state, group: group, channel: channel)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Closes the listener and every connection, and stops the stub's threads.
    /// Requests still waiting are dropped (counted as aborted).
    public func shutdown() async throws {
        try? await channel.close()
        try await group.shutdownGracefully()
        state.failWaiters()
    }

    /// `/raw/page`'s body: a small HTML page that does not end with a newline.
    public static let rawPageBody = "<html>\n<head><title>Raw page</title></head>\n<body>\n<p>Streams, line by line.</p>\n</body>\n</html>"
    /// `/raw/split`'s body (UTF-8, ending with a newline).
    public static let rawSplitBody = "Split in two: caf\u{E9} \u{2014} na\u{EF}ve \u{2713}\n"
    /// How many of `rawSplitBody`'s bytes the first write carries: one byte into the `é`.
    public static let rawSplitFirstWrite = Array("Split in two: caf".utf8).count + 1

    /// The package's `Fixtures/` folder: `$CURRICULUM_FIXTURES` if set, else
    /// found from this source file's location (`Sources/LocalServices/…`).
    public static var defaultFixturesDirectory: URL {
        if let env = ProcessInfo.processInfo.environment["CURRICULUM_FIXTURES"] {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures", isDirectory: true)
    }

    /// `baseURL + path`; `path` should start with `/`.
    public func url(_ path: String) -> String { baseURL + path }

    /// A snapshot of the counters.
    public var counters: StubCounters { state.counters }

    /// Zeroes every counter (not the in-flight count, which tracks live requests).
    public func resetCounters() { state.reset() }

    /// Serves a fixed response at `path` (exact match, query ignored).
    public func register(
        _ path: String,
        status: Int = 200,
        contentType: String = "text/plain; charset=utf-8",
        headers: [(String, String)] = [],
        body: [UInt8]
    ) {
        state.register(path, StubResponse(status: status, contentType: contentType, headers: headers, body: body))
    }

    /// Serves a fixed UTF-8 body at `path`.
    public func register(_ path: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8", body: String) {
        register(path, status: status, contentType: contentType, body: Array(body.utf8))
    }

    /// Suspends until `condition` holds for the counters (checked on every
    /// change). Throws `CancellationError` if the caller is cancelled, and
    /// ``StubError/stopped`` if the stub shuts down first.
    public func waitUntil(_ condition: @escaping @Sendable (StubCounters) -> Bool) async throws {
        try await state.waitUntil(condition)
    }

    /// Suspends until at least `n` requests are in flight at once.
    public func waitUntil(inFlight n: Int) async throws { try await waitUntil { $0.inFlight >= n } }
    /// Suspends until at least `n` requests have started.
    public func waitUntil(started n: Int) async throws { try await waitUntil { $0.started >= n } }
    /// Suspends until at least `n` requests have been answered.
    public func waitUntil(completed n: Int) async throws { try await waitUntil { $0.completed >= n } }
    /// Suspends until at least `n` requests were abandoned by their clients.
    public func waitUntil(aborted n: Int) async throws { try await waitUntil { $0.aborted >= n } }
}

/// Starts a ``StubHTTPServer``, passes it to `body`, and always shuts it down.
@discardableResult
public func withStubServer<T>(
    fixturesDirectory: URL? = nil,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (StubHTTPServer) async throws -> T
) async throws -> T {
    let stub = try await StubHTTPServer.start(fixturesDirectory: fixturesDirectory)
    do {
        let value = try await body(stub)
        try await stub.shutdown()
        return value
    } catch {
        try? await stub.shutdown()
        throw error
    }
}

/// Errors of ``StubHTTPServer``'s waits.
public enum StubError: Error, Sendable {
    /// The stub shut down while someone was waiting on its counters.
    case stopped
}

/// A snapshot of a ``StubHTTPServer``'s counters.
public struct StubCounters: Sendable, Equatable {
    /// Requests whose head arrived.
    public var started = 0
    /// Requests answered (counted as the response is written).
    public var completed = 0
    /// Requests whose client closed the connection before the answer (a
    /// `/stall-body` whose client leaves counts here).
    public var aborted = 0
    /// Responses whose head went out and whose body the client never took in
    /// full: the connection closed before the last byte was written (a
    /// completed response whose client hung up after the head, or an aborted
    /// `/stall-body`). Counted when the write fails, after `completed`.
    public var bodiesCutOff = 0
    /// Requests started and neither completed nor aborted.
    public var inFlight = 0
    /// The largest `inFlight` seen since the last reset.
    public var peakInFlight = 0
    /// `/barrier` requests answered 504 because their timeout passed.
    public var barrierTimeouts = 0
    /// Requests started, per path (query excluded).
    public var perPath: [String: Int] = [:]
    /// TCP connections accepted since the last reset.
    public var connections = 0
    /// TCP connections open now (kept across resets).
    public var openConnections = 0
}

struct StubResponse: Sendable {
    var status: Int
    var contentType: String
    var headers: [(String, String)] = []
    var body: [UInt8]
}

/// The stub's shared, lock-protected state: counters that tests wait on,
/// registered routes, and the barriers' waiting rooms.
final class StubState: Sendable {
    struct BarrierWaiter {
        var id: UInt64
        var release: @Sendable (Bool) -> Void  // true: opened, false: timed out
    }

    private struct Inner {
        var nextID: UInt64 = 0
        var routes: [String: StubResponse] = [:]
        var barriers: [String: [BarrierWaiter]] = [:]
    }

    private let inner = Locked(Inner())
    private let watched = Watched(StubCounters())

    var counters: StubCounters { watched.value }

    func register(_ path: String, _ response: StubResponse) {
        inner.withLock { $0.routes[path] = response }
    }

    func route(_ path: String) -> StubResponse? {
        inner.withLock { $0.routes[path] }
    }

    func reset() {
        watched.update { c in
            let (inFlight, open) = (c.inFlight, c.openConnections)
            c = StubCounters()
            c.inFlight = inFlight
            c.peakInFlight = inFlight
            c.openConnections = open
        }
    }

    func started(path: String) {
        watched.update { c in
            c.started += 1
            c.inFlight += 1
            c.peakInFlight = max(c.peakInFlight, c.inFlight)
            c.perPath[path, default: 0] += 1
        }
    }

    func connectionOpened() {
        watched.update { c in
            c.connections += 1
            c.openConnections += 1
        }
    }

    func connectionClosed() { watched.update { $0.openConnections -= 1 } }

    enum Ending { case completed, aborted }

    /// One update, so a waiter never sees the request gone but its body not yet counted.
    func finished(_ ending: Ending, bodyCutOff: Bool = false) {
        watched.update { c in
            c.inFlight -= 1
            if bodyCutOff { c.bodiesCutOff += 1 }
            switch ending {
            case .completed: c.completed += 1
            case .aborted: c.aborted += 1
            }
        }
    }

    func bodyCutOff() { watched.update { $0.bodiesCutOff += 1 } }

    func barrierTimedOut() { watched.update { $0.barrierTimeouts += 1 } }

    /// Adds a barrier waiter; releases all of them once `n` wait under `key`.
    func joinBarrier(key: String, n: Int, release: @escaping @Sendable (Bool) -> Void) -> UInt64 {
        let (id, toRelease) = inner.withLock { s -> (UInt64, [BarrierWaiter]) in
            s.nextID += 1
            let id = s.nextID
            s.barriers[key, default: []].append(BarrierWaiter(id: id, release: release))
            if s.barriers[key]!.count >= n {
                return (id, s.barriers.removeValue(forKey: key)!)
            }
            return (id, [])
        }
        for w in toRelease { w.release(true) }
        return id
    }

    /// Removes a barrier waiter (timeout or client gone); true if it was still waiting.
    func leaveBarrier(key: String, id: UInt64) -> Bool {
        inner.withLock { s in
            guard let i = s.barriers[key]?.firstIndex(where: { $0.id == id }) else { return false }
            s.barriers[key]!.remove(at: i)
            if s.barriers[key]!.isEmpty { s.barriers[key] = nil }
            return true
        }
    }

    func failWaiters() { watched.stop(with: StubError.stopped) }

    func waitUntil(_ condition: @escaping @Sendable (StubCounters) -> Bool) async throws {
        try await watched.waitUntil(condition)
    }
}
