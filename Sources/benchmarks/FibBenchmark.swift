import ArgumentParser
import Parallelism

/// `swift run -c release benchmarks fib [--n 40]`: listings 1.5, 1.6 and 1.6a.
///
/// Computes the naive `fib(n)` and `fib(n + 1)` (the book's 40 and 41) three
/// ways — one after the other on one thread, on two threads at once, and in
/// two `curriculum-worker` child processes at once — and prints the wall
/// times and the speedups over the serial run. The seed's CPython took
/// 52.1 s serially, 51.8 s with threads (the GIL) and 33.1 s with processes.
struct FibBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fib",
        abstract: "fib(n) + fib(n+1): serial vs two threads vs two processes (listings 1.5–1.6a)."
    )

    @Option(help: "The first Fibonacci index; the second is n + 1 (the book: 40).")
    var n: Int = 40

    func validate() throws {
        guard (3...60).contains(n) else { throw ValidationError("--n must be in 3...60") }
    }

    func run() async throws {
        let n = self.n
        let expected = [fibIterative(n), fibIterative(n + 1)]
        let worker = try WorkerExecutable.locate()
        let clock = ContinuousClock()
        print("fib(\(n)) + fib(\(n + 1)) — seed's CPython: serial 52.1 s, threads 51.8 s, processes 33.1 s")

        // Serial: both calls on one thread (not the cooperative pool).
        var start = clock.now
        let serialValues = try await spawnThread(name: "fib-serial") { [fib(n), fib(n + 1)] }.value
        let serial = start.duration(to: clock.now)
        try check(serialValues, expected, "serial")

        // Two threads started together, then joined.
        start = clock.now
        let threads = [n, n + 1].map { k in spawnThread(name: "fib-\(k)") { fib(k) } }
        var threadValues: [Int] = []
        for thread in threads { threadValues.append(try await thread.value) }
        let threaded = start.duration(to: clock.now)
        try check(threadValues, expected, "threads")

        // Two worker processes started together, then waited for.
        start = clock.now
        async let first = spawnWorker(job: .fib(n), executable: worker)
        async let second = spawnWorker(job: .fib(n + 1), executable: worker)
        let children = try await [first, second]
        let processes = start.duration(to: clock.now)
        try check(try children.map { try $0.requireSuccess().int("value") }, expected, "processes")

        let threadSpeedup = serial / threaded
        let processSpeedup = serial / processes
        print("serial:    \(format(serial.seconds)) s")
        print("threads:   \(format(threaded.seconds)) s  (speedup \(format(threadSpeedup))×)")
        print("processes: \(format(processes.seconds)) s  (speedup \(format(processSpeedup))×)")
        print("RESULT n=\(n) serial_s=\(format(serial.seconds)) threads_s=\(format(threaded.seconds)) "
              + "processes_s=\(format(processes.seconds)) thread_speedup=\(format(threadSpeedup)) "
              + "process_speedup=\(format(processSpeedup))")
    }

    private func check(_ values: [Int], _ expected: [Int], _ label: String) throws {
        guard values == expected else {
            throw ValidationError("\(label): got \(values), expected \(expected)")
        }
    }

    private func format(_ value: Double) -> String {
        let scaled = (value * 1000).rounded() / 1000
        return String(scaled)
    }
}

extension Duration {
    /// Seconds as a `Double` (kept local: the benchmark imports no Foundation).
    fileprivate var seconds: Double {
        let (s, attos) = components
        return Double(s) + Double(attos) / 1e18
    }
}
