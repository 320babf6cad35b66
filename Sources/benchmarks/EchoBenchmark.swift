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
/// server (on a one-thread event loop, as asyncio's single thread), and — if
/// `python3` is on the PATH — a small asyncio echo server in the style of the
/// book's listing 3.8 (`sock_accept`/`sock_recv`/`sock_sendall`).
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

    @Option(help: "Servers to measure, comma-separated: blocking,selector,async,python.")
    var modes: String = "blocking,selector,async,python"

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
            case "python":
                guard let python = try? PythonEchoServer() else {
                    print("python: python3 not available, skipped")
                    continue
                }
                result = await load(python.port, clientGroup)
                python.stop()
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
        if let a = rates["async"], let p = rates["python"] {
            print("async vs Python asyncio: \(format(a / p))× (target ≥ 5×)")
            fields.append("async_vs_python=\(format(a / p))")
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

/// The book's listing 3.8 server in CPython, as a child process.
private final class PythonEchoServer {
    static let script = """
        import asyncio, socket, sys
        async def echo(connection, loop):
            try:
                while data := await loop.sock_recv(connection, 1024):
                    await loop.sock_sendall(connection, data)
            finally:
                connection.close()
        async def main():
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(('127.0.0.1', 0))
            server.setblocking(False)
            server.listen(1024)
            print('listening', server.getsockname()[1], flush=True)
            loop = asyncio.get_running_loop()
            while True:
                connection, _ = await loop.sock_accept(server)
                connection.setblocking(False)
                asyncio.create_task(echo(connection, loop))
        asyncio.run(main())
        """

    let process = Process()
    let port: Int

    init() throws {
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script]
        process.standardOutput = out
        try process.run()
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        guard let text = String(data: line, encoding: .utf8), text.hasPrefix("listening "),
              let port = Int(text.dropFirst("listening ".count))
        else {
            process.terminate()
            throw ValidationError("python3 did not start")
        }
        self.port = port
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
