import ArgumentParser
import CurriculumCore
import Foundation
import PasswordHashing
import Threads

/// `benchmarks scrypt`: listings 7.16–7.17 — scrypt hashes serially and on
/// threads, beside Python's `hashlib.scrypt` run the same two ways. The C work
/// is the same on both sides; what is measured is the threading.
struct ScryptBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrypt",
        abstract: "scrypt (n=2048, r=8, p=1) serially and on threads, vs Python's hashlib.scrypt.")

    @Option(help: "How many passwords to hash.") var hashes: Int = 2000
    @Option(help: "Threads for the parallel run.") var threads: Int = 2
    @Flag(help: "Skip the Python peer.") var noPython = false

    func validate() throws {
        guard hashes > 0 else { throw ValidationError("--hashes must be at least 1") }
        guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() async throws {
        var rng = SystemRandomNumberGenerator()
        let items = (0..<hashes).map { _ in
            PasswordHasher.Item(password: randomPassword(using: &rng), salt: randomSalt(using: &rng))
        }
        let hasher = PasswordHasher.book
        let pool = ThreadPool(threads: threads, name: "scrypt-bench")
        defer { pool.shutdown() }

        // Serial: one pool thread hashes everything (the caller stays free).
        var cpu0 = CPUTime.process()
        var start = ContinuousClock.now
        let serial = try await pool.run { try hasher.hashSerially(items) }
        let serialWall = (ContinuousClock.now - start).seconds
        let serialCPU = (CPUTime.process() - cpu0).seconds

        cpu0 = CPUTime.process()
        start = ContinuousClock.now
        let (keys, slices) = try await hasher.hashAll(items, concurrency: threads, on: pool)
        let threadedWall = (ContinuousClock.now - start).seconds
        let threadedCPU = (CPUTime.process() - cpu0).seconds
        guard keys == serial else { throw ValidationError("threaded keys differ from the serial ones") }

        print("scrypt n=2048 r=8 p=1, \(hashes) hashes, \(threads) threads, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print(String(format: "Swift serial:    %.3f s  (%.2f ms/hash, CPU %.2f s)", serialWall, serialWall * 1000 / Double(hashes), serialCPU))
        print(String(format: "Swift %d threads: %.3f s  (CPU %.2f s = %.2f cores busy; slices: %@)", threads, threadedWall,
                     threadedCPU, threadedCPU / threadedWall,
                     slices.map { String(format: "%d in %.2f s", $0.count, $0.interval.duration.seconds) }.joined(separator: ", ")))
        let speedup = serialWall / threadedWall
        print(String(format: "Swift threads vs serial: %.2f× (target ≥ 1.85× on 2 threads)", speedup))

        var pyThreaded: Double?
        if !noPython {
            do {
                let output = try await PythonChild.run([try PythonChild.script("scrypt_bench.py"), String(hashes), String(threads)])
                let pySerial = PythonChild.result("serial_s", in: output) ?? .nan
                pyThreaded = PythonChild.result("threaded_s", in: output)
                print(String(format: "Python serial:    %.3f s  (CPU %.2f s)", pySerial, PythonChild.result("serial_cpu_s", in: output) ?? .nan))
                print(String(format: "Python %d threads: %.3f s  (CPU %.2f s)  run_in_executor + gather", threads,
                             pyThreaded ?? .nan, PythonChild.result("threaded_cpu_s", in: output) ?? .nan))
            } catch {
                print("Python: not measured (\(error))")
            }
        }
        if let py = pyThreaded {
            print(String(format: "Swift threaded vs Python threaded: %.2f× (target ≥ 1.0×: no worse)", py / threadedWall))
        }
        print(String(format: "RESULT hashes=%d threads=%d serial_s=%.3f threaded_s=%.3f speedup=%.2f py_threaded_s=%.3f",
                     hashes, threads, serialWall, threadedWall, speedup, pyThreaded ?? -1))
    }
}
