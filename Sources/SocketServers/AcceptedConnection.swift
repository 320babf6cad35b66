import NIOCore
import CurriculumCore

/// The stream of connections a TCP listener accepts, each a
/// ``NIOAsyncChannel`` of raw bytes: the `inbound` that
/// `listener.executeThenClose { inbound in … }` hands out for the channel that
/// `ServerBootstrap.bind(host:port:childChannelInitializer:)` returns when each
/// child is wrapped with `NIOAsyncChannel(wrappingChannelSynchronously:)`.
public typealias AcceptedConnections = NIOAsyncChannelInboundStream<NIOAsyncChannel<ByteBuffer, ByteBuffer>>

/// One accepted client connection, open for the duration of a
/// ``withAcceptedConnection(on:isolation:_:)`` body.
public struct AcceptedConnection {
    /// The bytes the client sends, as they arrive (ends at the client's EOF).
    public let inbound: NIOAsyncChannelInboundStream<ByteBuffer>
    /// Writes bytes to the client.
    public let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    /// The client's address.
    public let remoteAddress: SocketAddress?
}

/// Waits for the next client of a listener, runs `body` with the connection,
/// and closes the connection when `body` returns or throws: the book's
/// listing 4.1 `ConnectedSocket` asynchronous context manager
/// (`async with ConnectedSocket(server_socket) as connection:`).
///
/// Swift has no `async with`, and `defer` cannot `await`, so the scope is a
/// closure; closing is NIO's `NIOAsyncChannel.executeThenClose`.
///
/// Records into `EventLog.current` (when bound), as the book's prints do:
/// `"waiting"` before suspending for a client, `"accepted"` once one
/// connected, and `"closed"` after the connection was closed (also when
/// `body` threw; `body`'s error then propagates unchanged).
///
/// - Parameters:
///   - listener: the listener's stream of connections (its `inbound` inside
///     the listener's own `executeThenClose`, which closes the listening
///     socket). A NIO async stream allows a single iterator, so this consumes
///     it: call it once per listener, as the book does.
///   - isolation: `body` runs on the caller's isolation, so it may touch the
///     caller's state.
///   - body: what to do with the connection.
/// - Returns: `body`'s value.
/// - Throws: ``AcceptError/listenerClosed`` if the listener closed before a
///   client came; `CancellationError` if the caller is cancelled while
///   waiting (the wait for a client is cancellable); `body`'s error.
public func withAcceptedConnection<Result>(
    on listener: AcceptedConnections,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (AcceptedConnection) async throws -> sending Result
) async throws -> sending Result {
    let log = EventLog.current
    log?.record("waiting")
    var clients = listener.makeAsyncIterator()
    guard let channel = try await clients.next(isolation: isolation) else {
        throw AcceptError.listenerClosed
    }
    log?.record("accepted")
    do {
        let result = try await channel.executeThenClose { inbound, outbound in
            let connection = AcceptedConnection(
                inbound: inbound, outbound: outbound, remoteAddress: channel.channel.remoteAddress)
            return try await body(connection)
        }
        log?.record("closed")
        return result
    } catch {
        log?.record("closed")
        throw error
    }
}

/// Why ``withAcceptedConnection(on:isolation:_:)`` got no connection.
public enum AcceptError: Error, Equatable, Sendable {
    /// The listener closed before any client connected.
    case listenerClosed
}
