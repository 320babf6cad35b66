import Logging
import NIOCore
import Streams
import NIOPosix
import Parallelism
import ServiceLifecycle
import AsyncPrimitives
import CurriculumCore
import Threads

/// Listings 3.8 and 3.10: the echo server on SwiftNIO and structured concurrency.
///
/// The book's asyncio server has a listener task that awaits `sock_accept`
/// and starts one echo task per client. Here the listener is a
/// ``Streams/LineServer``: a `NIOAsyncChannel` whose inbound stream yields
/// connections, each in a child task of a `withThrowingDiscardingTaskGroup`
/// (as SwiftNIO's `NIOTCPEchoServer`); each child reads framed lines
/// (``LineFrameDecoder``) and writes them back.
///
/// - Threads: each connection's task prefers its channel's event loop as
///   task executor (``AsyncPrimitives/EventLoopTaskExecutor``), so it runs
///   where its bytes arrive — as an asyncio task runs on its loop — instead
///   of crossing to the cooperative pool and back for every line. With a
///   one-thread group the whole server is one thread, like asyncio's. The
///   price is asyncio's rule: a handler must never block.
///
/// - Cancellation: cancelling the task that runs ``run()`` cancels every
///   connection's task (no list of tasks to keep); their channels close, so
///   clients read EOF, and the listener closes.
/// - Graceful shutdown (listing 3.10): as a swift-service-lifecycle
///   `Service`, on graceful shutdown the accept loop ends and the listener
///   closes at once (late clients are refused); open connections keep being
///   served until the `ServiceGroup` cancels the service after its grace
///   period. One shared deadline, however many clients.
/// - Failures: a connection whose handler fails (a line `boom`, a line
///   longer than the limit, a reset) is closed and logged; the others go on.
/// - Backpressure: `NIOAsyncChannel` stops reading a client whose echoes it
///   cannot write (a client that never reads), so memory stays bounded —
///   where asyncio's `sock_sendall` would buffer.
///
/// Events in the optional event log: `accept(<port>)`, `error(<port>: <error>)`,
/// `closed(<port>)`, `listener closed`.
public struct AsyncEchoServer: Sendable, Service {
    /// How to bind and frame: the line server's configuration.
    public typealias Configuration = LineServer.Configuration

    /// Live counters, readable from anywhere.
    public final class Stats: Sendable {
        private struct Values {
            var accepted = 0, active = 0, peakActive = 0, failed = 0
            var handlerThreads: Set<Int32> = []
        }
        private let values = Locked(Values())
        init() {}
        /// Connections accepted so far.
        public var accepted: Int { values.withLock { $0.accepted } }
        /// Connections open now.
        public var active: Int { values.withLock { $0.active } }
        /// The most connections open at once.
        public var peakActive: Int { values.withLock { $0.peakActive } }
        /// Connections closed by a failing handler.
        public var failed: Int { values.withLock { $0.failed } }
        /// The kernel ids of the threads that handled connections' first lines.
        public var handlerThreads: Set<Int32> { values.withLock { $0.handlerThreads } }
        func handled(on thread: Int32) { values.withLock { _ = $0.handlerThreads.insert(thread) } }
        func opened() {
            values.withLock {
                $0.accepted += 1
                $0.active += 1
                $0.peakActive = max($0.peakActive, $0.active)
            }
        }
        func closed(failed: Bool) {
            values.withLock {
                $0.active -= 1
                if failed { $0.failed += 1 }
            }
        }
    }

    /// The bound port.
    public let port: Int
    /// Live counters.
    public let stats = Stats()
    private let server: LineServer
    private let logger: Logger
    private let log: EventLog?

    /// Binds a listener (the book's `server_socket.bind` + `listen`); call
    /// ``run()`` exactly once to serve and eventually close it.
    /// - Parameters:
    ///   - group: the event loops doing the I/O (a one-thread group mirrors the book).
    ///   - logger: where connections and errors are logged.
    ///   - log: optional ordered evidence for tests.
    public static func bind(
        _ configuration: Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "echo-server", factory: { _ in SwiftLogNoOpLogHandler() }),
        log: EventLog? = nil
    ) async throws -> AsyncEchoServer {
        let server = try await LineServer.bind(configuration, group: group)
        return AsyncEchoServer(port: server.port, server: server, logger: logger, log: log)
    }

    private init(port: Int, server: LineServer, logger: Logger, log: EventLog?) {
        self.port = port
        self.server = server
        self.logger = logger
        self.log = log
    }

    /// Serves until cancelled or until graceful shutdown has ended every
    /// connection: `asyncio.create_task(listen_for_connection(...))`.
    ///
    /// Suspends for the server's whole life. On graceful shutdown it stops
    /// accepting and closes the listener at once, then waits for the open
    /// connections (the `ServiceGroup` cancels it after the grace period). On
    /// cancellation every connection closes. Returns normally in both cases,
    /// unless the listener itself fails.
    public func run() async throws {
        try await server.run(onListenerClosed: {
            log?.record("listener closed")
            logger.info("listener closed", metadata: ["open connections": "\(stats.active)"])
        }) { connection in await handle(connection) }
    }

    /// One client: echo every line until EOF, error or cancellation
    /// (the book's `echo(connection, loop)` task).
    private func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress
        let port = peer?.port ?? 0
        stats.opened()
        log?.record("accept(\(port))")
        logger.info("connection opened", metadata: ["peer": "\(peer.map { "\($0)" } ?? "?")"])
        var failed = false
        do {
            try await connection.executeThenClose { input, output in
                var first = true
                for try await line in input {
                    if first {  // evidence of where connection tasks run (once: it is a syscall)
                        stats.handled(on: currentThreadID())
                        first = false
                    }
                    if Self.isBoom(line) { throw EchoHandlerError.boom }
                    try await output.write(line)
                }
            }
        } catch is CancellationError {
            // Shutdown: the channel is closed; not a failure of this client.
        } catch {
            failed = true
            log?.record("error(\(port): \(error))")
            logger.error("connection handler failed", metadata: ["peer": "\(port)", "error": "\(error)"])
        }
        stats.closed(failed: failed)
        log?.record("closed(\(port))")
        logger.info("connection closed", metadata: ["peer": "\(port)"])
    }

    static func isBoom(_ line: ByteBuffer) -> Bool {
        let bytes = line.readableBytesView
        return bytes.elementsEqual("boom\n".utf8) || bytes.elementsEqual("boom\r\n".utf8)
    }
}

/// The error a connection handler raises on the line `boom` (listing 3.10).
public enum EchoHandlerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The client sent `boom`.
    case boom

    /// What the server logs.
    public var description: String { "boom: the client asked this handler to fail" }
}
