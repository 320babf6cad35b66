import ArgumentParser
import CurriculumCore
import Foundation
import MapReduce
import ProcessPools
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// `swift run -c release benchmarks ngram-gen --rows N --keys K --seed S --out PATH`:
/// a deterministic Ngram file for the benchmark, with `PATH.expected.json`.
struct NgramGenBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ngram-gen", abstract: "Write a deterministic Google-Ngram-format file (and its expected totals).")

    @Option var rows: Int = 5_000_000
    @Option var keys: Int = 500_000
    @Option var seed: UInt64 = 2012
    @Option var out: String

    func validate() throws {
        guard rows >= 1, keys >= 1, keys <= rows else { throw ValidationError("need 1 ≤ keys ≤ rows") }
    }

    func run() throws {
        let summary = try NgramGenerator.write(rows: rows, keys: keys, seed: seed, to: out)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(summary).write(to: URL(fileURLWithPath: out + ".expected.json"))
        print("wrote \(out): \(summary.rows) rows, \(summary.distinctKeys) keys")
    }
}

/// `swift run -c release benchmarks ngrams [--rows 5000000]`: listings 6.7
/// and 6.8 at scale. Generates (once, under /tmp) a file of the requested
/// size, then counts it serially, with threads and with a process pool, and
/// runs the book's Python versions (`Scripts/ngrams_bench.py`: the serial
/// loop of 6.7 and the ProcessPoolExecutor MapReduce of 6.8) on the same
/// file; `wc -l` is the floor no parser beats. Every total is checked
/// against the generator's summary.
struct NgramBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ngrams", abstract: "Ngram word count: serial, threads, processes vs Python's loop and MapReduce (6.7–6.8).")

    @Option var rows: Int = 5_000_000
    @Option(help: "Rows per map chunk (the seed's 50,000).") var chunkRows: Int = 50_000
    @Option(help: "Runs of each variant, Swift and Python alike; the fastest counts (this VM's timings vary ±15 %).") var repeats: Int = 3
    @Flag(help: "Skip the Python peers.") var noPython = false

    func run() async throws {
        let keys = max(1, rows / 10)
        let path = "/tmp/curriculum-ngrams-\(rows)-\(keys).tsv"
        if !FileManager.default.fileExists(atPath: path + ".expected.json") {
            print("generating \(path) …")
            let summary = try NgramGenerator.write(rows: rows, keys: keys, seed: 2012, to: path)
            try JSONEncoder().encode(summary).write(to: URL(fileURLWithPath: path + ".expected.json"))
        }
        let expected = try JSONDecoder().decode(NgramGenerator.Summary.self, from: Data(contentsOf: URL(fileURLWithPath: path + ".expected.json")))
        let file = try NgramFile(path: path)
        let megabytes = Double(file.bytes.count) / 1_000_000
        print("file: \(path), \(expected.rows) rows, \(expected.distinctKeys) keys, \(String(format: "%.1f", megabytes)) MB (loaded before timing, as the listing)")

        let runs = max(1, repeats)
        func check(_ counts: NgramCounts, _ what: String) throws {
            guard counts.rows == expected.rows, counts.totals.count == expected.distinctKeys,
                  expected.totals.allSatisfy({ counts.totals[$0.key] == $0.value })
            else { throw ValidationError("\(what): wrong totals") }
        }
        /// The fastest of `repeats` runs, and that run's CPU time.
        func timed(_ label: String, _ body: () async throws -> NgramCounts) async throws -> Double {
            var best: (wall: Double, cpu: Double)?
            for _ in 0..<runs {
                let cpu0 = CPUTime.process()
                let start = ContinuousClock.now
                let counts = try await body()
                let wall = (ContinuousClock.now - start).seconds
                let cpu = (CPUTime.process() - cpu0).seconds
                try check(counts, label)
                if best == nil || wall < best!.wall { best = (wall, cpu) }
            }
            let (wall, cpu) = best!
            print(pad(label) + String(format: " %7.3f s  %6.1f M rows/s  %7.1f MB/s  (CPU: this process %.2f s; workers' CPU is not counted here)",
                         wall, Double(expected.rows) / wall / 1e6, megabytes / wall, cpu))
            return wall
        }
        let wc = try await wcFloor(path)
        print(pad("wc -l") + String(format: " %7.3f s  (reading and counting lines: the floor)", wc))
        print("(each line: the fastest of \(runs) runs, for Python as for Swift)")
        let serial = try await timed("Swift serial") { try NgramCounter.countSerial(file) }
        let threads = try await timed("Swift threads (task group)") {
            try await NgramMapReduce.run(file, rowsPerChunk: chunkRows, strategy: .threads).counts
        }
        let processes = try await withProcessPool { pool in
            try await timed("Swift processes (\(pool.size) workers)") {
                try await NgramMapReduce.run(file, rowsPerChunk: chunkRows, strategy: .processes(pool)).counts
            }
        }
        var pySerial: Double?, pyMapReduce: Double?
        if !noPython {
            do {
                let script = try PythonChild.script("ngrams_bench.py")
                let children0 = CPUTime.children()
                let output = try await PythonChild.run([script, path, String(chunkRows), String(runs)])
                pySerial = PythonChild.result("serial_s", in: output)
                pyMapReduce = PythonChild.result("mapreduce_s", in: output)
                let keysOK = PythonChild.result("keys", in: output).map { Int($0) == expected.distinctKeys } ?? false
                print(pad("Python serial (6.7)") + String(format: " %7.3f s  (the listing's loop over lines)", pySerial ?? .nan))
                print(pad("Python MapReduce (6.8)") + String(format: " %7.3f s  (ProcessPoolExecutor, %d-row chunks, pickled)", pyMapReduce ?? .nan, chunkRows))
                print("(Python: \(keysOK ? "same" : "DIFFERENT") keys; its CPU, all processes: " + String(format: "%.2f s)", (CPUTime.children() - children0).seconds))
            } catch {
                print("Python: not measured (\(error)); pip install -r Scripts/requirements.txt is not needed, only python3")
            }
        }
        print(String(format: "threads vs our serial: %.2f×   (target ≥ 1.6× on 2 cores)", serial / threads))
        if let s = pySerial, let m = pyMapReduce {
            print(String(format: "threads vs Python serial: %.1f× (target ≥ 8×); vs Python MapReduce: %.1f× (target ≥ 20×)", s / threads, m / threads))
        }
        print(String(format: "RESULT rows=%d wc_s=%.3f serial_s=%.3f threads_s=%.3f processes_s=%.3f py_serial_s=%.3f py_mapreduce_s=%.3f",
                     expected.rows, wc, serial, threads, processes, pySerial ?? -1, pyMapReduce ?? -1))
    }

    private func pad(_ label: String) -> String { label.padding(toLength: 28, withPad: " ", startingAt: 0) }

    private func wcFloor(_ path: String) async throws -> Double {
        let start = ContinuousClock.now
        let run = try await runProgram("/usr/bin/env", arguments: ["wc", "-l", path]).output
        guard run.termination.succeeded else { throw ValidationError("wc -l failed") }
        return (ContinuousClock.now - start).seconds
    }
}

/// `swift run -c release benchmarks pool [--jobs 10000]`: the pool's round
/// trip for tiny jobs — `count(1)` submitted one by one, one job per frame,
/// 2 workers — against Python's `ProcessPoolExecutor.map` with its default
/// chunksize (`Scripts/pool_bench.py`).
struct PoolBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool", abstract: "Process-pool round trips for tiny jobs vs Python's ProcessPoolExecutor.")

    @Option var jobs: Int = 10_000
    @Option var workers: Int = 2
    @Flag(help: "Skip the Python peer.") var noPython = false

    func run() async throws {
        let (wall, cpu, childCPU) = try await withProcessPool(workers: workers) { pool in
            let cpu0 = CPUTime.process()
            let start = ContinuousClock.now
            let handles = (0..<jobs).map { _ in pool.submit(.count(1)) }
            for h in handles { guard try await h.outcome.value == .int(1) else { throw ValidationError("wrong result") } }
            let wall = (ContinuousClock.now - start).seconds
            var workerCPU = 0.0
            for pid in pool.workerPIDs { workerCPU += CPUSplit.process(pid)?.total.seconds ?? 0 }
            return (wall, (CPUTime.process() - cpu0).seconds, workerCPU)
        }
        let rate = Double(jobs) / wall
        print(String(format: "Swift ProcessPool:  %d jobs in %.3f s = %8.0f jobs/s  (CPU: parent %.2f s, workers %.2f s)", jobs, wall, rate, cpu, childCPU))
        var pyRate: Double?
        if !noPython {
            do {
                let output = try await PythonChild.run([try PythonChild.script("pool_bench.py"), String(jobs), String(workers)])
                pyRate = PythonChild.result("jobs_per_s", in: output)
                print(String(format: "Python ProcessPoolExecutor.map (chunksize 1): %8.0f jobs/s", pyRate ?? .nan))
            } catch {
                print("Python: not measured (\(error))")
            }
        }
        if let py = pyRate { print(String(format: "Swift vs Python: %.1f× (target ≥ 5×)", rate / py)) }
        print(String(format: "RESULT jobs=%d workers=%d jobs_per_s=%.0f py_jobs_per_s=%.0f", jobs, workers, rate, pyRate ?? -1))
    }
}
