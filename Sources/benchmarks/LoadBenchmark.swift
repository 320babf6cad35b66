import ArgumentParser
import CurriculumCore
import Foundation
import LocalServices
import TerminalUI
import Threads
import WebClients

/// `benchmarks load`: listing 7.13–7.15's load tester against the in-process
/// stub — requests/s without a UI, and with the UI's work (progress posted to
/// a `UIQueue`, drained and the screen rendered every 25 ms on a thread of its
/// own, written to /dev/null) — beside the book's aiohttp `StressTest`
/// (`Scripts/load_bench.py`) against the same stub.
struct LoadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "The load tester's requests/s, with and without UI drawing, vs aiohttp.")

    @Option(help: "Requests per run.") var requests: Int = 10_000
    @Option(help: "Requests in flight at once (aiohttp's default connector: 100).") var concurrency: Int = 100
    @Option(help: "Runs of each kind; the best counts.") var repeats: Int = 3
    @Flag(help: "Skip the Python peer.") var noPython = false

    func validate() throws {
        guard requests > 0, concurrency > 0, repeats > 0 else { throw ValidationError("all options must be at least 1") }
    }

    func run() async throws {
        try await withStubServer { stub in
            let url = stub.url("/")
            print("\(requests) GETs of the stub's / per run, \(concurrency) in flight, best of \(repeats)")
            var plain = 0.0, drawn = 0.0, plainCPU = 0.0, drawnCPU = 0.0
            var draws = 0
            try await withHTTPClient(configuration: .init(timeout: .seconds(60), maxConnectionsPerHost: concurrency)) { client in
                for _ in 0..<repeats {
                    let (rate, cpu) = try await measure(url: url, client: client, ui: nil)
                    if rate > plain { (plain, plainCPU) = (rate, cpu) }
                    let ui = DrawingUI()
                    let (rateUI, cpuUI) = try await measure(url: url, client: client, ui: ui)
                    if rateUI > drawn { (drawn, drawnCPU, draws) = (rateUI, cpuUI, ui.draws) }
                }
            }
            print(String(format: "Swift LoadTester, no UI:     %8.0f req/s  (this process's CPU %.1f µs/request: client + stub)", plain, plainCPU))
            print(String(format: "Swift LoadTester, UI drawing: %8.0f req/s  (%.1f µs/request, %d redraws)", drawn, drawnCPU, draws))
            let cost = (plain - drawn) / plain * 100
            print(String(format: "drawing costs %.1f %% of the rate (target < 5 %%)", cost))
            var python: Double?
            if !noPython {
                do {
                    let output = try await PythonChild.run([try PythonChild.script("load_bench.py"), url, String(requests)])
                    python = PythonChild.result("requests_per_second", in: output)
                    print(String(format: "Python StressTest (aiohttp): %8.0f req/s  (its own CPU %.1f µs/request)",
                                 python ?? .nan, (PythonChild.result("cpu_s", in: output) ?? .nan) * 1e6 / Double(requests)))
                } catch {
                    print("Python: not measured (\(error); pip install -r Scripts/requirements.txt)")
                }
            }
            if let python { print(String(format: "Swift vs Python: %.1f× (target ≥ 2×)", drawn / python)) }
            print(String(format: "RESULT requests=%d plain_rps=%.0f ui_rps=%.0f ui_cost_pct=%.1f py_rps=%.0f", requests, plain, drawn, cost, python ?? -1))
        }
    }

    private func measure(url: String, client: WebClient, ui: DrawingUI?) async throws -> (rate: Double, cpuMicros: Double) {
        let tester = try LoadTester(url: url, totalRequests: requests, client: client, maxConcurrent: concurrency)
        ui?.start(total: requests)
        let cpu = CPUTime.process()
        let start = ContinuousClock.now
        let summary = await tester.start { p in ui?.queue.post(p) }.summary
        let elapsed = ContinuousClock.now - start
        let used = CPUTime.process() - cpu
        ui?.stop()
        guard summary.byStatus[200] == requests else { throw ValidationError("not every request got a 200: \(summary.description)") }
        return (Double(requests) / elapsed.seconds, used.seconds * 1e6 / Double(requests))
    }
}

/// The UI's share of the work, without a terminal: the app's own key loop
/// (`TerminalApp`, 25 ms ticks) on a thread of its own, its input a pipe that
/// never sends a key, each tick draining the progress queue into a
/// `LoadTesterScreen` and rendering it to /dev/null when it changed.
final class DrawingUI: Sendable {
    let queue = UIQueue<LoadTestProgress>()
    private let running = Locked(false)
    private let redraws = Locked(0)
    private let thread = Locked<JoinHandle<Void>?>(nil)

    var draws: Int { redraws.withLock { $0 } }

    func start(total: Int) {
        running.withLock { $0 = true }
        let (queue, running, redraws) = (queue, running, redraws)
        let handle = spawnThread(name: "ui-bench") {
            var keys: [Int32] = [-1, -1]
            guard pipe(&keys) == 0 else { return }
            let null = open("/dev/null", O_WRONLY)
            defer {
                close(null)
                close(keys[0])
                close(keys[1])
            }
            var screen = LoadTesterScreen(url: "http://stub/", count: String(total))
            _ = screen.handle(key: .enter)
            let count = TerminalApp(input: keys[0], output: null).run(
                handleKey: { _ in .keepGoing },
                onTick: {
                    for p in queue.drain() { screen.handle(completed: p.completed, total: p.total) }
                    return running.withLock { $0 } ? .keepGoing : .quit
                },
                render: { LoadTesterRenderer.render(screen, size: .init(rows: 12, columns: 60)) }
            )
            redraws.withLock { $0 = count }
        }
        thread.withLock { $0 = handle }
    }

    func stop() {
        running.withLock { $0 = false }
        _ = try? thread.withLock({ $0 })?.join()
    }
}
