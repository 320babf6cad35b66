import CurriculumCore
import NIOCore
import NIOPosix

/// Listing 8.1: asyncio's `Protocol` on a `Transport`, as SwiftNIO's
/// `ChannelInboundHandler` on a `Channel`.
///
/// | asyncio callback | NIO callback (on the channel's event loop) |
/// |---|---|
/// | `connection_made` — write the request | `channelActive` |
/// | `data_received` — append to the buffer | `channelRead` |
/// | `eof_received` | `userInboundEventTriggered(ChannelEvent.inputClosed)` (half-closure allowed) |
/// | `connection_lost(exc)` | `errorCaught` then `channelInactive` |
///
/// It writes `GET {path} HTTP/1.1` with `Connection: close` and `Host` as
/// soon as the connection is made, keeps every chunk, and completes its
/// promise with the whole response, decoded as UTF-8 once at the end (so a
/// character split across two reads decodes intact); a connection lost with
/// an error fails it. The promise is completed exactly once, whichever of
/// end-of-stream, error or close comes first.
///
/// Confined to its event loop like every handler: create it inside the
/// channel initializer, never share it.
public final class RawHTTPGetHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let request: String
    private let promise: EventLoopPromise<String>
    private let log: EventLog?
    private var response: ByteBuffer?
    private var completed = false

    /// - Parameters:
    ///   - host: the `Host` header.
    ///   - path: the path to get.
    ///   - promise: completed with the whole response, or failed.
    ///   - log: optional evidence of the callbacks: `connection made`,
    ///     `data received(<bytes>)`, `eof received`, `connection lost`.
    public init(host: String, path: String = "/", promise: EventLoopPromise<String>, log: EventLog? = nil) {
        request = "GET \(path) HTTP/1.1\r\nConnection: close\r\nHost: \(host)\r\n\r\n"
        self.promise = promise
        self.log = log
    }

    public func channelActive(context: ChannelHandlerContext) {
        log?.record("connection made")
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        log?.record("data received(\(chunk.readableBytes))")
        if response == nil {
            response = chunk
        } else {
            response!.writeBuffer(&chunk)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            log?.record("eof received")
            complete(.success(response.map { String(buffer: $0) } ?? ""))
            context.close(promise: nil)  // asyncio: eof_received returning False closes
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(.failure(error))
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        log?.record("connection lost")
        complete(.success(response.map { String(buffer: $0) } ?? ""))
        context.fireChannelInactive()
    }

    private func complete(_ result: Result<String, any Error>) {
        guard !completed else { return }
        completed = true
        promise.completeWith(result)
    }
}

/// Listing 8.2's `make_request`: connects, lets a ``RawHTTPGetHandler`` do
/// the talking, and awaits its promise — the bridge from callbacks back to
/// code that awaits. Returns after the connection has closed.
/// - Throws: ``StreamConnectError`` when the connection cannot be made; the
///   handler's error (e.g. a reset) when it is lost.
public func makeRawRequest(
    host: String, port: Int, path: String = "/",
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    log: EventLog? = nil
) async throws -> String {
    let loop = group.next()
    let promise = loop.makePromise(of: String.self)
    let channel: any Channel
    do {
        channel = try await ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RawHTTPGetHandler(host: host, path: path, promise: promise, log: log))
                }
            }
            .connect(host: host, port: port)
            .get()
    } catch {
        promise.fail(error)
        throw StreamConnectError(host: host, port: port, underlying: error)
    }
    do {
        let text = try await promise.futureResult.get()
        try? await channel.closeFuture.get()
        return text
    } catch {
        try? await channel.closeFuture.get()
        throw error
    }
}

/// A connection to `host:port` could not be made.
public struct StreamConnectError: Error, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// NIO's error (refused, unreachable, timed out …).
    public var underlying: any Error

    public init(host: String, port: Int, underlying: any Error) {
        self.host = host
        self.port = port
        self.underlying = underlying
    }

    public var description: String { "cannot connect to \(host):\(port): \(underlying)" }
}

/// Listing 8.3's `open_connection` with its `try/finally: writer.close();
/// await writer.wait_closed()`: connects, gives `body` the connection's
/// inbound bytes and outbound writer, and closes the connection when `body`
/// ends, returns or throws (`executeThenClose`).
///
/// `outbound.write` suspends while the socket is not writable: `drain()`
/// is built in. Read lines with ``lines(of:maxLineLength:)``.
/// - Throws: ``StreamConnectError`` when the connection cannot be made, or `body`'s error.
public func withConnection<R: Sendable>(
    host: String, port: Int,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    _ body: (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> R
) async throws -> R {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    do {
        channel = try await ClientBootstrap(group: group)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    } catch {
        throw StreamConnectError(host: host, port: port, underlying: error)
    }
    return try await channel.executeThenClose { inbound, outbound in
        try await body(inbound, outbound)
    }
}
