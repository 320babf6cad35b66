import ArgumentParser
import Foundation
import LocalServices
import NIOPosix
import Parallelism
import WebClients
import AsyncPrimitives
import CurriculumCore

/// `swift run -c release benchmarks http [--count N]`: N concurrent GETs
/// through `WebClients` (AsyncHTTPClient, a 100-connection limit like
/// aiohttp's) with `gather`, the shape of listing 4.6 — and the same with
/// aiohttp (`Scripts/aiohttp_bench.py`, a python3 child) against the same stub.
///
/// It starts a ``StubHTTPServer`` in-process (its own event-loop thread,
/// separate from the client's) and GETs `/` from it; `--url` targets an
/// already running server instead; `--serve` only starts a stub and waits.
///
/// The two clients take turns (`--repeats` pairs of Swift then aiohttp, each
/// `--rounds` rounds), so a busy moment of the machine hits both alike; the
/// best round of each is reported, and their ratio. `--no-python` skips aiohttp.
///
/// Prints the figures and one line
/// `RESULT benchmark=http requests=N seconds=S requests_per_second=R ok=K [aiohttp_requests_per_second=A speedup_vs_aiohttp=X]`.
struct HTTPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "N concurrent GETs against the loopback stub: WebClients vs aiohttp (listing 4.6's shape)."
    )

    @Option(help: "Number of concurrent requests.")
    var count = 1_000

    @Option(help: "Rounds per turn; the best round counts (the first also warms the pool).")
    var rounds = 3

    @Option(help: "Turns of (Swift, aiohttp).")
    var repeats = 3

    @Option(help: "Target URL (default: an in-process stub's `/`).")
    var url: String?

    @Option(help: "Event-loop threads of the client (0: SwiftNIO's singleton group, one per core).")
    var clientThreads = 0

    @Flag(help: "Do not run aiohttp (Scripts/aiohttp_bench.py) for comparison.")
    var noPython = false

    @Flag(help: "Only start a stub, print its URL, and serve until interrupted (for Scripts/aiohttp_bench.py).")
    var serve = false

    func validate() throws {
        guard count > 0, rounds > 0, repeats > 0, clientThreads >= 0 else {
            throw ValidationError("--count, --rounds and --repeats must be > 0, --client-threads >= 0")
        }
    }

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
        let group = clientThreads > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: clientThreads) : nil
        do {
            if let url {
                try await compare(url: url, group: group ?? .singleton, stubInProcess: false)
            } else {
                try await withStubServer { stub in try await compare(url: stub.url("/"), group: group ?? .singleton, stubInProcess: true) }
            }
        } catch {
            try? await group?.shutdownGracefully()
            throw error
        }
        try await group?.shutdownGracefully()
    }

    private func compare(url: String, group: MultiThreadedEventLoopGroup, stubInProcess: Bool) async throws {
        print("\(count) concurrent GETs of \(url), \(rounds) rounds per turn, \(repeats) turns")
        var swift: Round?
        var python: Round?
        var stubCPU: [Duration] = []  // this process's CPU while aiohttp ran: the stub's share
        var pythonFailure: String?
        for turn in 1...repeats {
            let round = try await measureSwift(url: url, group: group)
            if round.rate > swift?.rate ?? 0 { swift = round }
            print("turn \(turn): WebClients (AsyncHTTPClient) best round \(format(round.rate)) req/s, \(round.ok) × 200")
            guard !noPython, pythonFailure == nil else { continue }
            do {
                let before = CPUTime.process()
                let round = try await measurePython(url: url)
                stubCPU.append((CPUTime.process() - before) / (count * rounds))
                if round.rate > python?.rate ?? 0 { python = round }
                print("turn \(turn): aiohttp best round \(format(round.rate)) req/s")
            } catch {
                pythonFailure = "\(error)"
                print("aiohttp: not measured: \(error) (`pip install -r Scripts/requirements.txt`)")
            }
        }
        guard let swift else { return }
        print("best: WebClients \(format(swift.rate)) requests/s = \(format(Double(count) / swift.rate)) s for \(count)")
        var result = "RESULT benchmark=http requests=\(count) seconds=\(format(Double(count) / swift.rate)) requests_per_second=\(format(swift.rate)) ok=\(swift.ok)"
        if let python {
            let speedup = swift.rate / python.rate
            print("best: aiohttp \(format(python.rate)) requests/s → WebClients is \(format(speedup))× aiohttp (target ≥ 3×)")
            result += " aiohttp_requests_per_second=\(format(python.rate)) speedup_vs_aiohttp=\(format(speedup))"
            // Where the time goes. The stub serves both clients; while aiohttp
            // ran, this process did nothing but serve, so its CPU then is the
            // stub's. A client costing nothing would still be held to one stub
            // thread's pace, 1 / (stub CPU per request).
            if let stub = stubCPU.min(), let pythonCPU = python.cpuPerRequest, stubInProcess {
                let client = swift.cpuPerRequest.map { $0 - stub }
                let ceiling = 1 / stub.seconds
                print(String(format: "CPU per request: stub %.1f µs, WebClients %@ µs (2 event loops + the task pool), aiohttp %.1f µs (one Python thread)",
                             stub.micros, client.map { String(format: "%.1f", $0.micros) } ?? "?", pythonCPU.micros))
                print(String(format: "→ the stub alone caps any client at %.0f req/s = %.2f× aiohttp on this machine", ceiling, ceiling / python.rate))
                result += String(format: " stub_us=%.1f client_us=%.1f aiohttp_us=%.1f stub_ceiling_vs_aiohttp=%.2f",
                                 stub.micros, client?.micros ?? 0, pythonCPU.micros, ceiling / python.rate)
            }
        }
        print(result)
    }

    /// One turn's best round: its rate, 200s, and CPU time per request.
    struct Round {
        var rate: Double
        var ok: Int = 0
        /// This process's CPU per request (client and in-process stub), or
        /// the Python process's own.
        var cpuPerRequest: Duration?
    }

    /// `rounds` rounds of `gather` over `count` GETs; the best round.
    private func measureSwift(url: String, group: MultiThreadedEventLoopGroup) async throws -> Round {
        try await withHTTPClient(configuration: .init(timeout: .seconds(60)), eventLoopGroup: group) { client in
            var best = Round(rate: 0)
            for _ in 1...rounds {
                let operations = (0..<count).map { _ in
                    { @Sendable in try await fetchStatus(client: client, url: url) }
                }
                let start = ContinuousClock.now, cpu = CPUTime.process()
                let statuses = try await gather(operations)
                let elapsed = ContinuousClock.now - start, used = CPUTime.process() - cpu
                let rate = Double(count) / elapsed.seconds
                if rate > best.rate {
                    best = Round(rate: rate, ok: statuses.filter { $0 == 200 }.count, cpuPerRequest: used / count)
                }
            }
            return best
        }
    }

    /// The same with aiohttp, in a python3 child.
    private func measurePython(url: String) async throws -> Round {
        let script = try PythonChild.script("aiohttp_bench.py")
        let arguments = [script, url, "--count", "\(count)", "--rounds", "\(rounds)"]
        let output = try await PythonChild.run(arguments)
        guard let rate = PythonChild.result("requests_per_second", in: output) else {
            throw PythonChild.Failure(description: "no RESULT line from \(script)")
        }
        let cpu = PythonChild.result("cpu_us_per_request", in: output).map { Duration.microseconds($0) }
        return Round(rate: rate, cpuPerRequest: cpu)
    }

    private func format(_ x: Double) -> String { String(format: "%.1f", x) }
}


extension Duration {
    /// Microseconds as a `Double`, for the per-request CPU figures.
    fileprivate var micros: Double { seconds * 1e6 }
}
