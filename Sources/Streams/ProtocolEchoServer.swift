import NIOCore
import NIOPosix

/// Listing 8.12's echo, written in asyncio's other style: a `Protocol`
/// (here a `ChannelInboundHandler`) whose callbacks run on the event loop,
/// with no task per connection — beside ``AnnouncingEchoServer``'s and
/// ``LineServer``'s stream style (`NIOAsyncChannel`, a task per connection).
///
/// It echoes whole lines, byte for byte: each read's bytes up to its last
/// newline are written back at once (an echo needs no splitting into
/// lines), the unfinished rest waits for more; the writes of one read burst
/// are flushed together when the read completes. At EOF the unterminated
/// tail is echoed (asyncio's last `readline()`), then the connection closes.
/// A line longer than `maxLineLength` closes its connection.
public final class ProtocolEchoServer: Sendable {
    /// The bound port.
    public let port: Int
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    /// Binds and starts serving at once (the loop calls the handlers).
    public static func start(
        host: String = "127.0.0.1", port: Int = 0, maxLineLength: Int = 8 << 20,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ProtocolEchoServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 4096)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(LineEchoHandler(maxLineLength: maxLineLength))
                }
            }
            .bind(host: host, port: port)
            .get()
        return ProtocolEchoServer(port: channel.localAddress?.port ?? 0, channel: channel)
    }

    /// Closes the listener and waits for it (open connections are not waited for).
    public func stop() async {
        try? await channel.close()
    }
}

/// The protocol: `data_received` echoes complete lines; `eof_received` echoes the tail and closes.
final class LineEchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let maxLineLength: Int
    private var partial: ByteBuffer?

    init(maxLineLength: Int) { self.maxLineLength = maxLineLength }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var head = partial {
            head.writeBuffer(&bytes)
            bytes = head
            partial = nil
        }
        guard let last = bytes.readableBytesView.lastIndex(of: UInt8(ascii: "\n")) else {
            return keep(bytes, context: context)
        }
        let complete = last - bytes.readableBytesView.startIndex + 1
        let lines = bytes.readSlice(length: complete)!
        context.write(wrapOutboundOut(lines), promise: nil)
        if bytes.readableBytes > 0 { keep(bytes, context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return context.fireUserInboundEventTriggered(event) }
        if let tail = partial {
            partial = nil
            context.write(wrapOutboundOut(tail), promise: nil)
        }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func keep(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        guard bytes.readableBytes <= maxLineLength else {
            partial = nil
            context.close(promise: nil)
            return
        }
        partial = bytes
    }
}
