import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Parallelism
import SocketServers
import Streams
import CurriculumCore
import Threads

/// `swift run -c release benchmarks echo [--connections 50] [--round-trips 2000]`:
/// chapter 3's echo servers under the same load, and the book's asyncio server.
///
/// An ``EchoLoadClient`` (SwiftNIO handlers on its own one-thread event loop)
/// opens N loopback connections, each doing M round trips of a 64-byte line,
/// against each server in turn: the blocking server (one client at a time),
/// the hand-written epoll selector server (one thread), the SwiftNIO async
/// server (`NIOAsyncChannel`, a task per connection: a one-thread event loop
/// by default, as asyncio's single thread), chapter 8's protocol-style
/// server (a `ChannelInboundHandler`, no tasks), the book's listing 3.8
/// asyncio server (`Scripts/asyncio_echo_server.py`) and an asyncio streams
/// server (`Scripts/asyncio_streams_echo_server.py`, asyncio's fastest),
/// both started with python3 as children. `--modes external --port N` measures any
/// server already running.
///
/// Besides messages per second it reports where each server's CPU time goes
/// (user and kernel µs per echo, from `/proc`): the kernel part — a `recv`
/// and a `send` on loopback TCP — is the same for every server, so it is a
/// floor, and it bounds how many times faster than asyncio any one-thread
/// server can be on this machine.
struct EchoBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Echo round trips per second: blocking, selector, async and protocol-style NIO, and asyncio's two servers."
    )

    @Option(help: "Concurrent client connections.")
    var connections: Int = 50

    @Option(help: "Round trips (64-byte lines) per connection.")
    var roundTrips: Int = 2_000

    @Option(help: "Servers to measure, comma-separated: blocking,selector,async,protocol,asyncio,asyncio-streams,external.")
    var modes: String = "blocking,selector,async,protocol,asyncio,asyncio-streams"

    @Option(help: "Event-loop threads of the async server.")
    var serverThreads: Int = 1

    @Option(name: .customLong("port"), help: "Port of an already running echo server, for --modes external.")
    var externalPort: Int?

    func validate() throws {
        guard connections > 0, roundTrips > 0 else { throw ValidationError("--connections and --round-trips must be > 0") }
        guard serverThreads > 0 else { throw ValidationError("--server-threads must be > 0") }
        let known: Set = ["blocking", "selector", "async", "protocol", "asyncio", "asyncio-streams", "external"]
        for mode in modes.split(separator: ",").map(String.init) where !known.contains(mode) {
            throw ValidationError("unknown mode \(mode); known: \(known.sorted().joined(separator: ","))")
        }
        if modes.split(separator: ",").contains("external"), externalPort == nil {
            throw ValidationError("--modes external needs --port")
        }
    }

    /// One server's figures.
    struct Measurement {
        var rate: Double
        var elapsed: Duration
        /// The server's CPU time during the run (nil where it cannot be read).
        var server: CPUSplit?
        var client: CPUSplit?
    }

    func run() async throws {
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientThread = try await clientGroup.next().submit { currentThreadID() }.get()
        let messages = connections * roundTrips
        print("echo load: \(connections) connections × \(roundTrips) round trips of 64 bytes on loopback (\(messages) echoes)")
        print("mode         echoes/s   server CPU µs/echo (user + kernel)   client µs/echo")
        var results: [String: Measurement] = [:]
        for mode in modes.split(separator: ",").map(String.init) {
            let measured: Measurement
            switch mode {
            case "blocking":
                let server = try BlockingEchoServer(mode: .oneClientAtATime)
                measured = try await measure(server.port, clientGroup, clientThread) { nil }
                await server.stop()
            case "selector":
                let server = try SelectorEchoServer()
                let tid = server.serverThread.threadID
                measured = try await measure(server.port, clientGroup, clientThread) { CPUSplit.thread(tid) }
                await server.stop()
            case "async":
                let (serverGroup, tids) = try await serverLoops()
                let server = try await AsyncEchoServer.bind(group: serverGroup)
                let serving = Task { try await server.run() }
                measured = try await measure(server.port, clientGroup, clientThread) {
                    tids.compactMap(CPUSplit.thread).reduce(CPUSplit(user: .zero, system: .zero)) { $0 + $1 }
                }
                serving.cancel()
                _ = await serving.result
                try await serverGroup.shutdownGracefully()
            case "protocol":
                let (serverGroup, tids) = try await serverLoops()
                let server = try await ProtocolEchoServer.start(group: serverGroup)
                measured = try await measure(server.port, clientGroup, clientThread) {
                    tids.compactMap(CPUSplit.thread).reduce(CPUSplit(user: .zero, system: .zero)) { $0 + $1 }
                }
                await server.stop()
                try await serverGroup.shutdownGracefully()
            case "asyncio", "asyncio-streams":
                let child: PythonChild
                let port: Int
                let script = mode == "asyncio" ? "asyncio_echo_server.py" : "asyncio_streams_echo_server.py"
                do {
                    (child, port) = try PythonChild.startServer([try PythonChild.script(script)])
                } catch {
                    print("\(mode.padding(toLength: 12, withPad: " ", startingAt: 0)) not measured: \(error)")
                    continue
                }
                let pid = child.process.pid
                defer { child.stop() }
                measured = try await measure(port, clientGroup, clientThread) { CPUSplit.process(pid) }
            case "external":
                measured = try await measure(externalPort!, clientGroup, clientThread) { nil }
            default:
                throw ValidationError("unknown mode \(mode)")
            }
            results[mode] = measured
            print(line(mode, measured, messages))
        }
        try await clientGroup.shutdownGracefully()
        summarize(results, messages)
    }

    /// The NIO servers' event loops, and their threads' kernel ids (for their CPU time).
    private func serverLoops() async throws -> (MultiThreadedEventLoopGroup, [Int32]) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: serverThreads)
        var tids: [Int32] = []
        for loop in group.makeIterator() { tids.append(try await loop.submit { currentThreadID() }.get()) }
        return (group, tids)
    }

    private func measure(
        _ port: Int, _ group: MultiThreadedEventLoopGroup, _ clientThread: Int32,
        serverCPU: () -> CPUSplit?
    ) async throws -> Measurement {
        let serverBefore = serverCPU(), clientBefore = CPUSplit.thread(clientThread)
        let result = await EchoLoadClient.run(port: port, connections: connections, roundTrips: roundTrips, group: group)
        let serverAfter = serverCPU(), clientAfter = CPUSplit.thread(clientThread)
        let expected = connections * roundTrips
        guard result.completedRoundTrips == expected, result.mismatches == 0 else {
            throw ValidationError("port \(port): \(result.completedRoundTrips)/\(expected) round trips, \(result.mismatches) mismatches")
        }
        return Measurement(
            rate: result.messagesPerSecond, elapsed: result.elapsed,
            server: serverAfter.flatMap { a in serverBefore.map { a - $0 } },
            client: clientAfter.flatMap { a in clientBefore.map { a - $0 } })
    }

    private func line(_ mode: String, _ m: Measurement, _ messages: Int) -> String {
        let perEcho = { (d: Duration) in d.seconds * 1e6 / Double(messages) }
        let server = m.server.map {
            String(format: "%5.1f = %4.1f + %4.1f  (%3.0f%% busy)", perEcho($0.total), perEcho($0.user), perEcho($0.system),
                   100 * $0.total.seconds / m.elapsed.seconds)
        } ?? "    -"
        let client = m.client.map { String(format: "%5.1f", perEcho($0.total)) } ?? "    -"
        return "\(mode.padding(toLength: 11, withPad: " ", startingAt: 0)) \(String(format: "%9.0f", m.rate))   \(server.padding(toLength: 36, withPad: " ", startingAt: 0)) \(client)"
    }

    private func summarize(_ results: [String: Measurement], _ messages: Int) {
        var fields = results.sorted { $0.key < $1.key }.map { "\($0.key)_msgs_per_s=\(Int($0.value.rate))" }
        let python = results["asyncio"] ?? results["external"]
        if let a = results["async"], let p = python {
            print("async vs \(results["asyncio"] != nil ? "asyncio" : "external") server: \(format(a.rate / p.rate))× (target vs asyncio ≥ 5×)")
            fields.append("async_vs_python=\(format(a.rate / p.rate))")
        }
        // Chapter 8: asyncio's fastest echo is its streams server; NIO's two styles against it.
        if let streams = results["asyncio-streams"] {
            for (mode, target) in [("protocol", 1.4), ("async", 1.2), ("selector", 0)] {
                guard let m = results[mode] else { continue }
                let ratio = m.rate / streams.rate
                let goal = target > 0 ? " (target ≥ \(target)×)" : " (the hand-written epoll server: this machine's ceiling)"
                print("\(mode) vs asyncio-streams: \(format(ratio))×" + goal)
                fields.append("\(mode)_vs_asyncio_streams=\(format(ratio))")
            }
        }
        if let a = results["async"], let s = results["selector"] {
            print("selector vs async: \(format(s.rate / a.rate))× (target ≥ 0.5×)")
            fields.append("selector_vs_async=\(format(s.rate / a.rate))")
        }
        // The floor: the least kernel time per echo among the Swift servers
        // measured. A one-thread server handles at most 1 / (its CPU per
        // echo) echoes a second, and its CPU per echo is at least this.
        let floors = ["selector", "async"].compactMap { results[$0]?.server?.system }
        if let floor = floors.min(), floor > .zero, let p = results["asyncio"], let pc = p.server {
            let floorUS = floor.seconds * 1e6 / Double(messages)
            let pythonUS = pc.total.seconds * 1e6 / Double(messages)
            let ceiling = pc.total.seconds / floor.seconds
            print(String(format: "kernel floor: %.1f µs per echo (recv + send on loopback); asyncio spends %.1f µs per echo", floorUS, pythonUS))
            print(String(format: "→ on this machine a one-thread server doing nothing but the system calls would be at most %.2f× asyncio", ceiling))
            fields.append(String(format: "kernel_floor_us=%.2f asyncio_us=%.2f ceiling_vs_asyncio=%.2f", floorUS, pythonUS, ceiling))
        }
        print("RESULT connections=\(connections) round_trips=\(roundTrips) server_threads=\(serverThreads) " + fields.joined(separator: " "))
    }

    private func format(_ x: Double) -> String { String(format: "%.2f", x) }
}
