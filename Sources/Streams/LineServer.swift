import AsyncPrimitives
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The one skeleton of the package's line-based TCP servers on SwiftNIO
/// (asyncio's `start_server` with a `client_connected_cb`): a listener whose
/// connections arrive as `NIOAsyncChannel`s framed by ``LineFrameDecoder``,
/// each served in its own child task of a discarding task group.
///
/// - Threads: each connection's task prefers its channel's event loop as its
///   executor (``AsyncPrimitives/EventLoopTaskExecutor``), so it runs where
///   its bytes arrive, as an asyncio task runs on its loop; with a one-thread
///   group the whole server is one thread. A handler must never block.
/// - Cancellation: cancelling ``run(onGracefulShutdown:handle:)`` cancels
///   every connection's task; their channels close and the listener closes.
/// - Graceful shutdown (swift-service-lifecycle): the listener closes at once
///   (late clients are refused), `onGracefulShutdown` runs (the place to tell
///   clients), and open connections are served until they end or the
///   `ServiceGroup` cancels the run.
/// - Backpressure: `outbound.write` suspends while a client does not read, and
///   NIO stops reading that client meanwhile, so memory stays bounded.
public struct LineServer: Sendable {
    /// How to bind and frame.
    public struct Configuration: Sendable {
        /// Address to bind; loopback by default.
        public var host: String
        /// Port to bind; 0 for any free port.
        public var port: Int
        /// The longest accepted line: a longer one fails its connection's
        /// inbound sequence with ``LineTooLongError``.
        public var maxLineLength: Int
        /// The listen backlog (1,000 clients connecting at once need room).
        public var backlog: Int32 = 4096

        public init(host: String = "127.0.0.1", port: Int = 0, maxLineLength: Int = 8 << 20) {
            self.host = host
            self.port = port
            self.maxLineLength = maxLineLength
        }
    }

    /// A connection: line-framed `ByteBuffer`s in (newline kept), bytes out.
    public typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// The bound port.
    public let port: Int
    private let serverChannel: NIOAsyncChannel<Connection, Never>

    /// Binds the listener; call ``run(onGracefulShutdown:handle:)`` once.
    /// - Parameters:
    ///   - group: the event loops doing the I/O.
    ///   - childPipeline: adds handlers in front of the line decoder on each
    ///     new connection (on its event loop), e.g. an `IdleStateHandler`.
    public static func bind(
        _ configuration: Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        childPipeline: @escaping @Sendable (any Channel) throws -> Void = { _ in }
    ) async throws -> LineServer {
        let maxLine = configuration.maxLineLength
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: configuration.backlog)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(host: configuration.host, port: configuration.port) { child in
                child.eventLoop.makeCompletedFuture {
                    try childPipeline(child)
                    try child.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineFrameDecoder(maxLineLength: maxLine)))
                    return try Connection(wrappingChannelSynchronously: child)
                }
            }
        return LineServer(port: channel.channel.localAddress?.port ?? 0, serverChannel: channel)
    }

    /// Serves until cancelled, or until graceful shutdown has ended every
    /// connection; returns normally in both cases unless the listener fails.
    /// `handle` runs once per connection, in its own task, and owns it.
    /// `onListenerClosed` runs once the listener is closed (graceful shutdown
    /// or cancellation), while open connections may still be served.
    public func run(
        onGracefulShutdown: @escaping @Sendable () -> Void = {},
        onListenerClosed: () -> Void = {},
        handle: @escaping @Sendable (Connection) async -> Void
    ) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            do {
                try await serverChannel.executeThenClose { inbound in
                    let listener = serverChannel.channel
                    try await withGracefulShutdownHandler {
                        // Ends when the listener closes, after handing out the
                        // clients it had already accepted (they are served too).
                        for try await connection in inbound {
                            let loop = EventLoopTaskExecutor(connection.channel.eventLoop)
                            group.addTask(executorPreference: loop) { await handle(connection) }
                        }
                    } onGracefulShutdown: {
                        listener.close(promise: nil)  // late clients are now refused
                        onGracefulShutdown()
                    }
                }
            } catch is CancellationError {
                // Cancelled while accepting: the listener is closed; the group
                // cancels the connections.
            }
            onListenerClosed()
        }
    }
}
