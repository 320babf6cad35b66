import NIOCore
import NIOPosix
import CurriculumCore

/// A load generator for echo servers: `connections` clients on loopback, each
/// doing `roundTrips` round trips of a `messageSize`-byte line (send, wait for
/// the whole echo, check it byte for byte, send the next).
///
/// Plain SwiftNIO channel handlers on an event-loop group, so the client's
/// own cost stays small and identical for every server it measures (the
/// book's asyncio server included). Used by the `benchmarks echo` command and
/// by the tests (1,000 concurrent clients).
public enum EchoLoadClient {
    /// What a run measured.
    public struct Result: Sendable {
        /// Clients that connected.
        public var connected = 0
        /// Clients that failed to connect or were cut off.
        public var failed = 0
        /// Round trips whose echo matched exactly.
        public var completedRoundTrips = 0
        /// Echoes that differed from what was sent.
        public var mismatches = 0
        /// Wall time from the first connect to the last echo.
        public var elapsed: Duration = .zero
        /// Completed round trips per second.
        public var messagesPerSecond: Double {
            elapsed > .zero ? Double(completedRoundTrips) / elapsed.seconds : 0
        }
    }

    /// Runs the load and returns when every client has finished (or failed).
    ///
    /// - Parameters:
    ///   - holdAfterFirstEcho: every client waits after its first echo until
    ///     all clients have had theirs, so all are connected at once (proof
    ///     of *concurrent* connections, not merely many sequential ones).
    /// - Cancellation: not cancellable mid-run; the clients close when done.
    public static func run(
        host: String = "127.0.0.1", port: Int, connections: Int, roundTrips: Int, messageSize: Int = 64,
        holdAfterFirstEcho: Bool = false,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> Result {
        precondition(messageSize >= 16, "messages carry an id")
        let barrier = holdAfterFirstEcho ? LoadBarrier(parties: connections) : nil
        let start = ContinuousClock.now
        var result = Result()
        await withTaskGroup(of: Outcome.self) { tasks in
            for id in 0..<connections {
                tasks.addTask {
                    let promise = group.next().makePromise(of: Outcome.self)
                    let bootstrap = ClientBootstrap(group: group)
                        .channelOption(.socketOption(.tcp_nodelay), value: 1)
                        .connectTimeout(.seconds(20))
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(
                                    LoadHandler(id: id, roundTrips: roundTrips, size: messageSize,
                                                barrier: barrier, promise: promise))
                            }
                        }
                    do {
                        let channel = try await bootstrap.connect(host: host, port: port).get()
                        let outcome = try await promise.futureResult.get()
                        try? await channel.close().get()
                        return outcome
                    } catch {
                        barrier?.arrive {}
                        promise.fail(error)
                        return Outcome(connected: false, completed: 0, mismatches: 0, cutOff: true)
                    }
                }
            }
            for await outcome in tasks {
                if outcome.connected { result.connected += 1 }
                if outcome.cutOff { result.failed += 1 }
                result.completedRoundTrips += outcome.completed
                result.mismatches += outcome.mismatches
            }
        }
        result.elapsed = .now - start
        return result
    }

    /// The line client `id` sends (the load client uses round 0 throughout):
    /// unique per client, `size` bytes, ends in `\n`.
    public static func message(id: Int, round: Int, size: Int) -> [UInt8] {
        var bytes = Array("c\(id)r\(round):".utf8)
        let fill = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        while bytes.count < size - 1 { bytes.append(fill[bytes.count % fill.count]) }
        bytes = Array(bytes.prefix(size - 1))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    struct Outcome: Sendable {
        var connected: Bool
        var completed: Int
        var mismatches: Int
        var cutOff: Bool
    }
}

/// Releases every party once all have arrived.
final class LoadBarrier: Sendable {
    private let state: Locked<(arrived: Int, waiting: [@Sendable () -> Void])>
    private let parties: Int

    init(parties: Int) {
        self.parties = parties
        state = Locked((0, []))
    }

    func arrive(_ then: @escaping @Sendable () -> Void) {
        let release: [@Sendable () -> Void] = state.withLock { s in
            s.arrived += 1
            s.waiting.append(then)
            if s.arrived >= parties {
                defer { s.waiting = [] }
                return s.waiting
            }
            return []
        }
        for action in release { action() }
    }
}

/// One load client's protocol, on its channel's event loop.
final class LoadHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let id: Int
    let roundTrips: Int
    let size: Int
    let barrier: LoadBarrier?
    let promise: EventLoopPromise<EchoLoadClient.Outcome>
    var round = 0
    var mismatches = 0
    var received: [UInt8] = []
    var expected: [UInt8] = []
    var arrived = false
    var done = false

    init(id: Int, roundTrips: Int, size: Int, barrier: LoadBarrier?, promise: EventLoopPromise<EchoLoadClient.Outcome>) {
        self.id = id
        self.roundTrips = roundTrips
        self.size = size
        self.barrier = barrier
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        if roundTrips == 0 { finish(cutOff: false); return }
        send(context: context)
    }

    private var outgoing: ByteBuffer?

    private func send(context: ChannelHandlerContext) {
        // One message per client (built once: the client's cost must stay
        // small next to the server's), so its echo is still unique to it.
        if outgoing == nil {
            expected = EchoLoadClient.message(id: id, round: 0, size: size)
            outgoing = context.channel.allocator.buffer(bytes: expected)
        }
        context.writeAndFlush(wrapOutboundOut(outgoing!), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.append(contentsOf: buffer.readableBytesView)
        guard received.count >= size, !done else { return }
        if received.count > size || received != expected { mismatches += 1 }
        received.removeAll(keepingCapacity: true)
        round += 1
        if round >= roundTrips {
            finish(cutOff: false)
            return
        }
        if round == 1, let barrier, !arrived {
            arrived = true
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let loop = context.eventLoop
            barrier.arrive {
                loop.execute {
                    let (handler, context) = bound.value
                    if !handler.done { handler.send(context: context) }
                }
            }
            return
        }
        send(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(cutOff: true)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(cutOff: true)
        context.close(promise: nil)
    }

    private func finish(cutOff: Bool) {
        guard !done else { return }
        done = true
        if !arrived, let barrier {
            arrived = true
            barrier.arrive {}
        }
        promise.succeed(.init(connected: true, completed: round - mismatches, mismatches: mismatches, cutOff: cutOff))
    }
}
