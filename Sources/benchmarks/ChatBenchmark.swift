import ArgumentParser
import CurriculumCore
import Foundation
import NIOCore
import NIOPosix
import Processes

/// `swift run -c release benchmarks chat [--clients 100] [--messages 100]`:
/// chapter 8's chat servers under a fan-out load — the package's
/// `chat-server` and the book's listing 8.13 (`Scripts/asyncio_chat_server.py`),
/// each a child process, driven by the same load client.
///
/// The load client (SwiftNIO handlers on one event-loop thread of this
/// process) connects `clients` users, waits until each has heard every
/// later user join, then has every user send `messages` lines at once; the
/// run ends when every user has received every user's every line (the
/// sender's own included, as both servers do): clients × clients × messages
/// deliveries. Each delivery costs both servers the same kernel write, so the
/// gap is in user time: both servers' CPU per delivery is printed, user and
/// kernel, from `/proc`.
struct ChatBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Chat fan-out deliveries per second: chat-server vs the book's asyncio chat server.")

    @Option(help: "Connected users.")
    var clients = 100

    @Option(help: "Lines each user sends.")
    var messages = 100

    @Option(help: "Servers to measure, comma-separated: swift,asyncio.")
    var servers = "swift,asyncio"

    func validate() throws {
        guard clients >= 2, messages >= 1 else { throw ValidationError("--clients must be ≥ 2 and --messages ≥ 1") }
        for s in servers.split(separator: ",") where !["swift", "asyncio"].contains(s) {
            throw ValidationError("unknown server \(s); known: swift, asyncio")
        }
    }

    func run() async throws {
        let deliveries = clients * clients * messages
        print("chat fan-out: \(clients) users × \(messages) lines, each to every user: \(deliveries) deliveries")
        print("server     deliveries/s   server CPU µs/delivery (user + kernel)")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var rates: [String: Double] = [:]
        for server in servers.split(separator: ",").map(String.init) {
            let child: ChildProcess
            do {
                child = server == "swift"
                    ? try ChildProcess.spawn(try SiblingExecutable.locate("chat-server"), arguments: ["--port", "0"],
                                             standardError: .null)
                    : try ChildProcess.spawn("/usr/bin/env", arguments: ["python3", "-u", try PythonChild.script("asyncio_chat_server.py")],
                                             standardError: .inherit)
            } catch {
                print("\(server.padding(toLength: 10, withPad: " ", startingAt: 0)) not measured: \(error)")
                continue
            }
            defer {
                child.kill()
                _ = child.waitForExit()
            }
            guard let port = PythonChild.listeningPort(of: child) else {
                print("\(server) not measured: it did not print its port")
                continue
            }
            let before = CPUSplit.process(child.pid)
            let elapsed = try await ChatLoad.run(port: port, clients: clients, messages: messages, group: group)
            let after = CPUSplit.process(child.pid)
            let rate = Double(deliveries) / elapsed.seconds
            rates[server] = rate
            let cpu = after.flatMap { a in before.map { a - $0 } }
            let per = { (d: Duration) in d.seconds * 1e6 / Double(deliveries) }
            let split = cpu.map { String(format: "%5.2f = %5.2f + %5.2f", per($0.total), per($0.user), per($0.system)) } ?? "-"
            print("\(server.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(format: "%12.0f", rate))   \(split)")
        }
        try await group.shutdownGracefully()
        var fields = rates.sorted { $0.key < $1.key }.map { "\($0.key)_deliveries_per_s=\(Int($0.value))" }
        if let s = rates["swift"], let p = rates["asyncio"] {
            print(String(format: "chat-server vs asyncio: %.2f× (target ≥ 3×)", s / p))
            fields.append(String(format: "swift_vs_asyncio=%.2f", s / p))
        }
        print("RESULT clients=\(clients) messages=\(messages) " + fields.joined(separator: " "))
    }
}

/// The chat load client: users on one event loop, each a small handler.
enum ChatLoad {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Connects the users, sends, and returns the time from the first send to the last delivery.
    static func run(port: Int, clients: Int, messages: Int, group: any EventLoopGroup) async throws -> Duration {
        let loop = group.next()
        let (allJoined, allHeard) = (loop.makePromise(of: Void.self), loop.makePromise(of: Void.self))
        let state = try await loop.submit {
            NIOLoopBound(LoadState(clients: clients, messages: messages, joins: allJoined, deliveries: allHeard), eventLoop: loop)
        }.get()
        var channels: [any Channel] = []
        defer { for c in channels { c.close(promise: nil) } }
        for i in 0..<clients {
            let joined = loop.makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ChatLoadHandler(index: i, state: state.value, joined: joined))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            channels.append(channel)
            try await joined.futureResult.get()  // welcomed: the next user joins after this one
        }
        try await withTimeout(allJoined, seconds: 60, what: "the join notices")
        let start = ContinuousClock.now
        let lines = (0..<messages).map { "message \($0) from a user of the load client\n" }.joined()
        for channel in channels {
            channel.writeAndFlush(ByteBuffer(string: lines), promise: nil)
        }
        try await withTimeout(allHeard, seconds: 300, what: "the deliveries")
        return ContinuousClock.now - start
    }

    /// Waits for `promise`, failing it after `seconds` (a stuck server fails the run, never hangs it).
    private static func withTimeout(_ promise: EventLoopPromise<Void>, seconds: Int64, what: String) async throws {
        let timer = promise.futureResult.eventLoop.scheduleTask(in: .seconds(seconds)) {
            promise.fail(Failure(description: "timed out after \(seconds) s waiting for \(what)"))
        }
        defer { timer.cancel() }
        try await promise.futureResult.get()
    }

    /// Shared by the handlers on the one loop (touched only there).
    final class LoadState {
        let clients: Int
        let messages: Int
        var joinsHeard = 0
        var usersDone = 0
        let everyoneHeardEveryJoin: EventLoopPromise<Void>
        let everyoneHeardEverything: EventLoopPromise<Void>

        init(clients: Int, messages: Int, joins: EventLoopPromise<Void>, deliveries: EventLoopPromise<Void>) {
            self.clients = clients
            self.messages = messages
            everyoneHeardEveryJoin = joins
            everyoneHeardEverything = deliveries
        }
    }

    /// One user: CONNECT, then count the lines it hears.
    final class ChatLoadHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let index: Int
        let state: LoadState
        let joined: EventLoopPromise<Void>
        var welcomed = false
        var joinNotices = 0
        var chatLines = 0
        var pending = ByteBuffer()

        init(index: Int, state: LoadState, joined: EventLoopPromise<Void>) {
            self.index = index
            self.state = state
            self.joined = joined
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "CONNECT user\(index)\n")), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            pending.writeBuffer(&chunk)
            while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending.readSlice(length: newline - pending.readableBytesView.startIndex + 1)!
                heard(line)
            }
            pending.discardReadBytes()
        }

        private func heard(_ line: ByteBuffer) {
            let view = line.readableBytesView
            if !welcomed {
                welcomed = true
                joined.succeed()
                return
            }
            if view.firstIndex(of: UInt8(ascii: ":")) != nil {  // "userN: text"
                chatLines += 1
                if chatLines == state.clients * state.messages {
                    state.usersDone += 1
                    if state.usersDone == state.clients { state.everyoneHeardEverything.succeed() }
                }
            } else if view.count > 12, view.suffix(12).elementsEqual(" connected!\n".utf8) {
                joinNotices += 1
                // User i hears its own join and every later one: clients - i notices.
                if joinNotices == state.clients - index {
                    state.joinsHeard += 1
                    if state.joinsHeard == state.clients { state.everyoneHeardEveryJoin.succeed() }
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            state.everyoneHeardEverything.fail(Failure(description: "user\(index): \(error)"))
            context.close(promise: nil)
        }
    }
}
