import ArgumentParser
import Parallelism
#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore
import Threads

/// `swift run -c release benchmarks fib [--n 40]`: listings 1.5, 1.6 and 1.6a.
///
/// Computes the naive `fib(n)` and `fib(n + 1)` (the book's 40 and 41) three
/// ways — one after the other on one thread, on two threads at once, and in
/// two `curriculum-worker` child processes at once — and prints the wall
/// times and the speedups over the serial run. The seed's CPython took
/// 52.1 s serially, 51.8 s with threads (the GIL) and 33.1 s with processes.
///
/// Each way runs `--repetitions` times and the fastest run counts (the usual
/// guard against other programs' load on a shared machine). The ideal
/// speedup is (fib(n) + fib(n+1)) / fib(n+1) ≈ 1.62: the longer call bounds
/// the parallel run.
struct FibBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fib",
        abstract: "fib(n) + fib(n+1): serial vs two threads vs two processes (listings 1.5–1.6a)."
    )

    @Option(help: "The first Fibonacci index; the second is n + 1 (the book: 40).")
    var n: Int = 40

    @Option(help: "Runs of each way; the fastest counts.")
    var repetitions: Int = 3

    func validate() throws {
        guard (3...60).contains(n) else { throw ValidationError("--n must be in 3...60") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    func run() async throws {
        let n = self.n
        let expected = [fibIterative(n), fibIterative(n + 1)]
        let worker = try WorkerExecutable.locate()
        let meter = LoadMeter()
        print("fib(\(n)) + fib(\(n + 1)), fastest of \(repetitions) — seed's CPython (n = 40): serial 52.1 s, threads 51.8 s, processes 33.1 s")

        // Serial: both calls on one thread (not the cooperative pool).
        let serial = try await fastest {
            let values = try await spawnThread(name: "fib-serial") { [fib(n), fib(n + 1)] }.value
            try check(values, expected, "serial")
        }

        // Two threads started together, then joined.
        let threaded = try await fastest {
            let threads = [n, n + 1].map { k in spawnThread(name: "fib-\(k)") { fib(k) } }
            var values: [Int] = []
            for thread in threads { values.append(try await thread.value) }
            try check(values, expected, "threads")
        }

        // Two worker processes started together, then waited for.
        let processes = try await fastest {
            async let first = spawnWorker(job: .fib(n), executable: worker)
            async let second = spawnWorker(job: .fib(n + 1), executable: worker)
            let children = try await [first, second]
            try check(try children.map { try $0.requireSuccess().int("value") }, expected, "processes")
        }

        // What other programs and the hypervisor took meanwhile.
        let load = meter.read()

        let threadSpeedup = serial / threaded
        let processSpeedup = serial / processes
        print("serial:    \(format(serial.seconds)) s")
        print("threads:   \(format(threaded.seconds)) s  (speedup \(format(threadSpeedup))×)")
        print("processes: \(format(processes.seconds)) s  (speedup \(format(processSpeedup))×)")
        print("(ideal speedup \(format(Double(fibIterative(n) + fibIterative(n + 1)) / Double(fibIterative(n + 1))))×: the longer call bounds the parallel run)")
        print("(\(load) of \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores meanwhile)")
        print("RESULT n=\(n) serial_s=\(format(serial.seconds)) threads_s=\(format(threaded.seconds)) "
              + "processes_s=\(format(processes.seconds)) thread_speedup=\(format(threadSpeedup)) "
              + "process_speedup=\(format(processSpeedup)) other_load_cores=\(format(load.otherPrograms)) stolen_cores=\(format(load.stolen))")
    }

    /// The wall time of the fastest of `repetitions` runs of `body`.
    private func fastest(_ body: () async throws -> Void) async throws -> Duration {
        let clock = ContinuousClock()
        var best: Duration?
        for _ in 0..<repetitions {
            let time = try await clock.measure { try await body() }
            best = min(best ?? time, time)
        }
        return best!
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

