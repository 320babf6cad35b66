import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import SocketServers

/// `swift run -c release benchmarks echo [--connections 50] [--round-trips 1000]`:
/// chapter 3's echo servers under the same load.
///
/// An ``EchoLoadClient`` (SwiftNIO handlers on its own one-thread event loop)
/// opens N loopback connections, each doing M round trips of a 64-byte line,
/// against each server in turn: the blocking server (one client at a time),
/// the hand-written epoll selector server (one thread), the SwiftNIO async
/// server (on a one-thread event loop, as asyncio's single thread), and with
/// `--modes external --port N` any server already running, e.g. the book's
/// listing 3.8 asyncio server (`sock_accept`/`sock_recv`/`sock_sendall`,
/// run with python3).
/// Prints messages per second for each and the ratios the issue asks for.
struct EchoBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Echo round trips per second: blocking, selector, async (NIO) and Python asyncio servers."
    )

    @Option(help: "Concurrent client connections.")
    var connections: Int = 50

    @Option(help: "Round trips (64-byte lines) per connection.")
    var roundTrips: Int = 1_000

    @Option(help: "Servers to measure, comma-separated: blocking,selector,async,external.")
    var modes: String = "blocking,selector,async"

    @Option(name: .customLong("port"), help: "Port of an already running echo server, for --modes external.")
    var externalPort: Int?

    func validate() throws {
        guard connections > 0, roundTrips > 0 else { throw ValidationError("--connections and --round-trips must be > 0") }
    }

    func run() async throws {
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        print("echo load: \(connections) connections × \(roundTrips) round trips of 64 bytes on loopback")
        var rates: [String: Double] = [:]
        for mode in modes.split(separator: ",").map(String.init) {
            let result: EchoLoadClient.Result
            switch mode {
            case "blocking":
                let server = try BlockingEchoServer(mode: .oneClientAtATime)
                result = await load(server.port, clientGroup)
                await server.stop()
            case "selector":
                let server = try SelectorEchoServer()
                result = await load(server.port, clientGroup)
                await server.stop()
            case "async":
                let server = try await AsyncEchoServer.bind(group: serverGroup)
                let serving = Task { try await server.run() }
                result = await load(server.port, clientGroup)
                serving.cancel()
                _ = await serving.result
            case "external":
                guard let port = externalPort else { throw ValidationError("--modes external needs --port") }
                result = await load(port, clientGroup)
            default:
                throw ValidationError("unknown mode \(mode)")
            }
            let expected = connections * roundTrips
            guard result.completedRoundTrips == expected, result.mismatches == 0 else {
                throw ValidationError("\(mode): \(result.completedRoundTrips)/\(expected) round trips, \(result.mismatches) mismatches")
            }
            rates[mode] = result.messagesPerSecond
            print("\(mode.padding(toLength: 9, withPad: " ", startingAt: 0)) \(Int(result.messagesPerSecond)) msg/s  (\(format(result.elapsed.seconds)) s)")
        }
        try await clientGroup.shutdownGracefully()
        try await serverGroup.shutdownGracefully()
        var fields = rates.sorted { $0.key < $1.key }.map { "\($0.key)_msgs_per_s=\(Int($0.value))" }
        if let a = rates["async"], let p = rates["external"] {
            print("async vs external server: \(format(a / p))× (target vs asyncio ≥ 5×)")
            fields.append("async_vs_external=\(format(a / p))")
        }
        if let a = rates["async"], let s = rates["selector"] {
            print("selector vs async: \(format(s / a))× (target ≥ 0.5×)")
            fields.append("selector_vs_async=\(format(s / a))")
        }
        print("RESULT connections=\(connections) round_trips=\(roundTrips) " + fields.joined(separator: " "))
    }

    private func load(_ port: Int, _ group: any EventLoopGroup) async -> EchoLoadClient.Result {
        await EchoLoadClient.run(port: port, connections: connections, roundTrips: roundTrips, group: group)
    }

    private func format(_ x: Double) -> String { String(format: "%.2f", x) }
}
