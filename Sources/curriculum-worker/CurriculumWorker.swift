import ArgumentParser
import Dispatch
import Foundation
import Parallelism
import ProcessPools
import SharedState
import ProductsDatabase
import PostgresServer

#if canImport(Glibc)
import Glibc
#endif
import CLinux
import CurriculumCore
import Synchronization
import Threads

/// The worker's command line. Each subcommand is one `WorkerJob`; a later
/// chapter adds a job by adding a subcommand here and a `WorkerJob` factory
/// in `Parallelism`.
struct CurriculumWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curriculum-worker",
        abstract: "Child process for the curriculum's multiprocessing listings.",
        discussion: "Each subcommand prints key=value lines on standard output.",
        subcommands: [Hello.self, ProcInfo.self, Threads.self, Fib.self, Burn.self, Serve.self, ShmIncrement.self, ShmRace.self, ShmHoldLock.self, LockRecursion.self]
    )
}

/// Prints one `key=value` line and flushes, so a parent reading the pipe sees
/// every line even if the process is killed afterwards.
func report(_ key: String, _ value: some CustomStringConvertible) {
    print("\(key)=\(value)")
    fflush(nil)  // all streams (the global `stdout` is not concurrency-safe to name)
}

/// Listing 1.4's child: "hello from the child process", with its pid.
struct Hello: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print this process's pid and parent pid.")

    func run() {
        report("pid", getpid())
        report("ppid", getppid())
    }
}

/// Listing 1.2 as a whole program: pid, thread count, main thread.
struct ProcInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proc-info",
        abstract: "Print pid, parent pid, OS thread count, current tid and whether it is the main thread."
    )

    func run() {
        let me = ProcessReport.current()
        report("pid", me.pid)
        report("ppid", me.parentPID)
        report("threads", me.threadCount)
        report("tid", me.currentThreadID)
        report("main", me.isMainThread)
    }
}

/// Listing 1.3 as a whole program: the thread count before, during and after
/// one extra thread's life.
struct Threads: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start and join one thread; print the thread counts before, during and after (counts=1,2,1)."
    )

    func run() {
        let before = ProcessReport.threadIDs().count
        let release = DispatchSemaphore(value: 0)
        // The greeting thread waits for `release`, so the count taken while it
        // is alive cannot race its end (the race the book's listing ignores).
        let greeter = spawnThread(name: "greeter") {
            report("thread_tid", currentThreadID())
            release.wait()
        }
        let during = ProcessReport.threadIDs().count
        release.signal()
        try? greeter.join()
        // pthread_join returns when the thread has exited; the kernel drops
        // its /proc entry a moment later, so allow a bounded re-check.
        var after = ProcessReport.threadIDs().count
        let deadline = MonotonicInstant.now().nanoseconds + 1_000_000_000
        while after > before && MonotonicInstant.now().nanoseconds < deadline {
            usleep(1_000)
            after = ProcessReport.threadIDs().count
        }
        report("pid", getpid())
        report("main_tid", currentThreadID())
        report("counts", "\(before),\(during),\(after)")
        report("sanitized", underThreadSanitizer)
    }
}

/// Whether this binary runs under the thread sanitizer, whose runtime starts
/// a background thread of its own with the first `pthread_create`.
var underThreadSanitizer: Bool {
    CLinux_tsan_enabled() != 0
}

/// Listing 1.6a's child: one naive Fibonacci, bracketed by system-wide
/// monotonic instants so the parent can compare children's intervals.
struct Fib: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute the naive fib(n); print value, pid, ppid, start_ns, end_ns and cpu_ns."
    )

    @Argument(help: "The Fibonacci index (fib(1) = 0, fib(2) = 1).")
    var n: Int

    func validate() throws {
        guard (1...92).contains(n) else { throw ValidationError("n must be in 1...92") }
    }

    func run() {
        let cpuBefore = CPUTime.thread()
        let start = MonotonicInstant.now()
        let value = fib(n)
        let end = MonotonicInstant.now()
        let cpu = CPUTime.thread() - cpuBefore
        report("value", value)
        report("pid", getpid())
        report("ppid", getppid())
        report("start_ns", start.nanoseconds)
        report("end_ns", end.nanoseconds)
        report("cpu_ns", cpu.components.seconds * 1_000_000_000 + cpu.components.attoseconds / 1_000_000_000)
    }
}

/// Listing 6.1's child: spins for a given amount of its own CPU time (a
/// counting loop would fold to a constant in release builds), bracketed by
/// system-wide monotonic instants.
struct Burn: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Spin for --cpu-ms of this process's CPU time; print iterations, pid, start_ns, end_ns and cpu_ns."
    )

    @Option(name: .customLong("cpu-ms"), help: "Milliseconds of CPU time to burn.")
    var cpuMilliseconds: Int

    func validate() throws {
        guard cpuMilliseconds >= 0 else { throw ValidationError("--cpu-ms must be 0 or more") }
    }

    func run() {
        let cpuBefore = CPUTime.process()
        let start = MonotonicInstant.now()
        let iterations = burnCPU(for: .milliseconds(cpuMilliseconds))
        let end = MonotonicInstant.now()
        let cpu = CPUTime.process() - cpuBefore
        report("iterations", iterations)
        report("pid", getpid())
        report("start_ns", start.nanoseconds)
        report("end_ns", end.nanoseconds)
        report("cpu_ns", cpu.nanoseconds)
    }
}

/// A `ProcessPool` worker: length-prefixed job frames on standard input,
/// reply frames on standard output, until standard input ends.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve ProcessPool jobs: frames on stdin, replies on stdout, logs on stderr; exit at end of input."
    )

    @Option(help: "The worker initializer, as JSON (a WorkerInitializer).")
    var initializer: String?

    func run() throws {
        var parsed: WorkerInitializer?
        if let initializer {
            do {
                parsed = try JSONDecoder().decode(WorkerInitializer.self, from: Data(initializer.utf8))
            } catch {
                throw ValidationError("--initializer is not a WorkerInitializer: \(error)")
            }
        }
        PoolJob.databaseHandler = runDatabaseJob
        let status = servePoolJobs(initializer: parsed)
        if status != 0 { throw ExitCode(status) }
    }
}

/// A plain global of this process: listing 6.10 shows that a child's
/// change to it never reaches the parent (separate address spaces).
nonisolated(unsafe) var ordinaryGlobal = 0

/// Listing 6.10's children: add 1 to the shared value, or to each element of
/// the shared array, and to an ordinary global (printed as `global`).
struct ShmIncrement: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shm-increment",
        abstract: "Add 1 to the shared value or to each element of the shared array in segment --segment."
    )

    @Option(help: "The segment's name.") var segment: String
    @Option(help: "value or array.") var target: String

    func run() throws {
        let memory = try SharedMemory.open(name: segment)
        switch target {
        case "value": memory.atomic(at: SegmentLayout.value).increment()
        case "array": for offset in SegmentLayout.array { memory.atomic(at: offset).increment() }
        default: throw ValidationError("--target must be value or array")
        }
        ordinaryGlobal += 1
        report("global", ordinaryGlobal)
        report("pid", getpid())
    }
}

/// Listings 6.11 and 6.12's children: after a start barrier in the segment
/// (so the loops of all workers really overlap), add 1 to the shared value
/// `--times` times: `racy` (a load then a store, Python's `v.value += 1`),
/// `atomic` (one atomic add) or `mutex` (load and store under the
/// segment's process-shared mutex).
struct ShmRace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shm-race",
        abstract: "Increment the shared value --times times (racy, atomic or mutex) after a start barrier of --workers."
    )

    @Option(help: "The segment's name.") var segment: String
    @Option(help: "Increments to do.") var times: Int
    @Option(help: "racy, atomic or mutex.") var mode: String
    @Option(help: "Workers that meet at the start barrier.") var workers: Int = 2

    func run() throws {
        guard ["racy", "atomic", "mutex"].contains(mode) else { throw ValidationError("--mode must be racy, atomic or mutex") }
        let memory = try SharedMemory.open(name: segment)
        let value = memory.atomic(at: SegmentLayout.value)
        let ready = memory.atomic(at: SegmentLayout.ready)
        let mutex = memory.mutex(at: SegmentLayout.mutex)
        ready.increment()
        let deadline = MonotonicInstant.now().nanoseconds + 10_000_000_000
        while ready.load() < workers {
            guard MonotonicInstant.now().nanoseconds < deadline else { throw ValidationError("the other workers never arrived") }
        }
        for _ in 0..<times {
            switch mode {
            case "racy": value.racyIncrement()
            case "atomic": value.increment()
            default:
                do { try mutex.lock() } catch ProcessSharedMutexError.ownerDied {}
                value.store(value.load() + 1)
                mutex.unlock()
            }
        }
        report("pid", getpid())
    }
}

/// Takes the segment's mutex, says `locked`, and never lets go (the parent
/// kills it: 6.12's robustness check).
struct ShmHoldLock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shm-hold-lock",
        abstract: "Lock the shared mutex of --segment, print locked=1 and wait to be killed."
    )

    @Option(help: "The segment's name.") var segment: String

    func run() throws {
        let memory = try SharedMemory.open(name: segment)
        try memory.mutex(at: SegmentLayout.mutex).lock()
        report("locked", 1)
        while true { pause() }
    }
}

/// Listing 7.9 with a lock that is not reentrant, where it may crash or hang
/// (never inside the test process): sums [1, 2, 3, 4] taking the lock at
/// every level of the recursion, on a thread of its own, and prints `sum=10`
/// if it gets that far.
struct LockRecursion: ParsableCommand {
    enum Kind: String, ExpressibleByArgument, CaseIterable {
        /// `Synchronization.Mutex`: traps ("Recursive call to lock Mutex").
        case mutex
        /// Foundation's `NSLock`: deadlocks.
        case nslock
        /// An error-checking pthread mutex: reports EDEADLK (exit 1).
        case checked
        /// A recursive pthread mutex (Python's `RLock`): sum=10.
        case recursive
    }

    static let configuration = CommandConfiguration(
        commandName: "lock-recursion",
        abstract: "Listing 7.9: a recursive sum under one lock, taken again by its owner at every level."
    )

    @Option(help: "mutex (traps), nslock (deadlocks), checked (EDEADLK) or recursive (works).")
    var lock: Kind

    func run() throws {
        let kind = lock
        let thread = spawnThread(name: "lock-recursion") { () throws -> Int in
            let items: ArraySlice<Int> = [1, 2, 3, 4]
            let log: (ArraySlice<Int>) -> Void = { report("acquired", $0.count) }
            switch kind {
            case .mutex: return try recursiveSum(items, lock: StandardMutexLock(), acquired: log)
            case .nslock: return try recursiveSum(items, lock: FoundationLock(), acquired: log)
            case .checked: return try recursiveSum(items, lock: CheckedMutex(), acquired: log)
            case .recursive: return try recursiveSum(items, lock: RecursiveLock(), acquired: log)
            }
        }
        do {
            report("sum", try thread.join())
        } catch {
            report("error", "\(error)")
            throw ExitCode(1)
        }
    }
}

/// `Synchronization.Mutex` as a ``ListingLock``: re-locking it by its owner traps.
final class StandardMutexLock: ListingLock {
    private let mutex = Mutex(())
    func locked<R>(_ body: () throws -> R) throws -> R { try mutex.withLock { _ in try body() } }
}

/// Foundation's `NSLock` as a ``ListingLock``: re-locking it by its owner deadlocks.
final class FoundationLock: ListingLock, @unchecked Sendable {
    private let lock = NSLock()
    func locked<R>(_ body: () throws -> R) throws -> R { try lock.withLock { try body() } }
}

/// 6.15's job: an event loop in this worker process. The synchronous main
/// thread starts the async work as a task and waits for it (it is not a
/// thread of the cooperative pool, so blocking it is fine).
func runDatabaseJob(_ job: PoolJob) throws(JobError) -> JobValue {
    guard case .queryProducts(let url, let count, let connections, let applicationName) = job else {
        throw JobError("not a database job: \(job)")
    }
    let result = Locked<Result<[ProductQueryResult], any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        do {
            let endpoint = try PostgresEndpoint(url: url)
            let rows = try await withProductsPool(endpoint, size: connections, applicationName: applicationName) { pool in
                try await withThrowingTaskGroup(of: ProductQueryResult.self) { group in
                    for _ in 0..<count {
                        group.addTask {
                            let probe = try await pool.withConnection { try await ProductsDatabase.probeProduct(id: 100, on: $0) }
                            guard let row = probe.row else { throw JobError("product 100 not found") }
                            return ProductQueryResult(productID: row.productID, productName: row.productName,
                                                      skuID: row.skuID, backendPID: probe.backendPID)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            result.withLock { $0 = .success(rows) }
        } catch {
            result.withLock { $0 = .failure(error) }
        }
        done.signal()
    }
    done.wait()
    switch result.withLock({ $0 })! {
    case .success(let rows): return .products(rows)
    case .failure(let error): throw JobError("\(error)")
    }
}
