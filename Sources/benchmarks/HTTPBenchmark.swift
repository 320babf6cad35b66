import ArgumentParser
import AsyncPrimitives
import Foundation
import LocalServices
import NIOPosix
import WebClients

/// `swift run -c release benchmarks http [--count N] [--url URL]`: N concurrent
/// GETs through `WebClients` (AsyncHTTPClient, a 100-connection pool like
/// aiohttp's) with `gather`, the shape of listing 4.6.
///
/// By default it starts a ``StubHTTPServer`` in-process (its own event-loop
/// thread, separate from the client's) and GETs `/` from it; `--url` targets
/// an already running server instead, e.g. the same stub that
/// `Scripts/aiohttp_bench.py` is pointed at (`--serve` starts one and waits).
///
/// `--client-threads N` gives the client its own event-loop group of N
/// threads instead of SwiftNIO's singleton group.
///
/// Prints the figures and one line
/// `RESULT benchmark=http requests=N seconds=S requests_per_second=R ok=K`.
struct HTTPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "N concurrent GETs against the loopback stub (aiohttp's listing 4.6 shape)."
    )

    @Option(help: "Number of concurrent requests.")
    var count = 1_000

    @Option(help: "Rounds to run; the best round is reported (the first also warms the pool).")
    var rounds = 3

    @Option(help: "Target URL (default: an in-process stub's `/`).")
    var url: String?

    @Option(help: "Event-loop threads of the client (0: SwiftNIO's singleton group, one per core).")
    var clientThreads = 0

    @Flag(help: "Only start a stub, print its URL, and serve until interrupted (for Scripts/aiohttp_bench.py).")
    var serve = false

    func run() async throws {
        if serve {
            let stub = try await StubHTTPServer.start(threads: 1)
            // Unbuffered (stderr), so a script reading a pipe sees the URL at once.
            let banner = """
                stub listening at \(stub.url("/"))
                e.g. python3 Scripts/aiohttp_bench.py \(stub.url("/")) --count \(count)

                """
            FileHandle.standardError.write(Data(banner.utf8))
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        if let url {
            try await measure(url: url)
        } else {
            try await withStubServer { stub in try await measure(url: stub.url("/")) }
        }
    }

    private func measure(url: String) async throws {
        let group = clientThreads > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: clientThreads) : nil
        do {
            try await measure(url: url, group: group ?? MultiThreadedEventLoopGroup.singleton)
        } catch {
            try? await group?.shutdownGracefully()
            throw error
        }
        try await group?.shutdownGracefully()
    }

    private func measure(url: String, group: MultiThreadedEventLoopGroup) async throws {
        try await withHTTPClient(
            configuration: .init(timeout: .seconds(60)),
            eventLoopGroup: group
        ) { client in
            var best: Duration?
            var ok = 0
            for round in 1...max(1, rounds) {
                let operations = (0..<count).map { _ in
                    { @Sendable in try await fetchStatus(client: client, url: url) }
                }
                let start = ContinuousClock.now
                let statuses = try await gather(operations)
                let elapsed = ContinuousClock.now - start
                ok = statuses.filter { $0 == 200 }.count
                print("round \(round): \(count) GETs in \(format(elapsed.seconds)) s (\(format(Double(count) / elapsed.seconds)) req/s), \(ok) × 200")
                best = min(best ?? elapsed, elapsed)
            }
            let seconds = best!.seconds
            let rate = Double(count) / seconds
            print("best: \(count) concurrent GETs of \(url) in \(format(seconds)) s = \(format(rate)) requests/s")
            print("RESULT benchmark=http requests=\(count) seconds=\(format(seconds)) requests_per_second=\(format(rate)) ok=\(ok)")
        }
    }

    private func format(_ x: Double) -> String {
        let scaled = (x * 1000).rounded() / 1000
        return "\(scaled)"
    }
}
