#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CurriculumCore

/// A fixed set of OS threads that run blocking work from a FIFO queue:
/// Python's `concurrent.futures.ThreadPoolExecutor`, and the package's one
/// thread pool (``toThread`` in `AsyncPrimitives`, chapter 7, the blocking
/// twin of chapter 9's API all run on it).
///
/// - ``submit(_:)`` queues work and returns a ``PoolTask`` (a
///   `concurrent.futures.Future`): wait for it from a thread or from async
///   code, or cancel it while it is still queued.
/// - ``map(_:_:)`` runs a function over inputs on the pool and returns the
///   results **in input order** (`executor.map`).
/// - ``run(_:)`` awaits work from async code without occupying a cooperative
///   thread (`loop.run_in_executor(pool, func)`).
/// - ``shared`` is the process-wide default (asyncio's default executor):
///   `min(32, cores + 4)` threads, Python's formula.
///
/// At most ``threadCount`` pieces of work run at once; the rest wait in the
/// queue. The threads start in `init` (their kernel ids are ``threadIDs``)
/// and live until ``shutdown()``, which lets queued work finish first, as
/// `executor.shutdown(wait=True)` does.
///
/// Cancellation: work still **queued** when its ``PoolTask`` is cancelled
/// (or the task awaiting ``run(_:)`` is) never runs and ends with
/// `CancellationError` at once; work already **running** is not interrupted —
/// an OS thread cannot be — and its result is still delivered.
public final class ThreadPool: Sendable {
    /// Python's default size for a `ThreadPoolExecutor()`: `min(32, cores + 4)`.
    public static func defaultThreadCount(cores: Int = onlineProcessorCount()) -> Int {
        min(32, max(1, cores) + 4)
    }

    /// The process-wide pool (asyncio's default executor): started on first
    /// use, never shut down, ``defaultThreadCount(cores:)`` threads.
    public static let shared = ThreadPool(threads: defaultThreadCount(), name: "default-pool")

    /// How many threads the pool has: the most work that runs at once.
    public let threadCount: Int
    /// The kernel ids of the pool's threads (`/proc/self/task` lists them).
    public let threadIDs: Set<pid_t>

    private let queue: JobQueue
    private let threads: [JoinHandle<Void>]

    /// Starts `threads` threads named `name-0`, `name-1`, …
    /// - Precondition: `threads >= 1`.
    public init(threads: Int, name: String = "pool") {
        precondition(threads >= 1, "a thread pool needs at least one thread, not \(threads)")
        let queue = JobQueue()
        self.queue = queue
        self.threadCount = threads
        // Small stacks: pool work is blocking calls, not deep recursion.
        self.threads = (0..<threads).map { i in
            spawnThread(name: "\(name)-\(i)", stackSize: 512 << 10) {
                while let job = queue.take() { job() }
            }
        }
        self.threadIDs = Set(self.threads.map(\.threadID))
    }

    deinit {
        // A pool dropped without `shutdown()`: its threads finish the queue
        // and end by themselves (their handles detach).
        queue.close()
    }

    /// Queues `work` and returns its future at once.
    ///
    /// After ``shutdown()`` the task fails with ``ThreadPoolError/shutDown``
    /// (Python raises `RuntimeError`).
    @discardableResult
    public func submit<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) -> PoolTask<Value> {
        let task = PoolTask<Value>()
        if !queue.put({ task.runIfQueued(work) }) {
            task.fail(ThreadPoolError.shutDown)
        }
        return task
    }

    /// Runs `transform` over `inputs` on the pool and returns the results in
    /// the inputs' order, whatever order they finish in (`executor.map`).
    /// Blocks the calling thread: never call it on the cooperative pool.
    ///
    /// If a call throws, the inputs not started yet are cancelled, the ones
    /// running are waited for, and the error of the first failing input (in
    /// input order) is rethrown — where Python's `map` iterator raises it.
    public func map<Input: Sendable, Output: Sendable>(
        _ inputs: some Sequence<Input>,
        _ transform: @escaping @Sendable (Input) throws -> Output
    ) throws -> [Output] {
        let tasks = inputs.map { input in submit { try transform(input) } }
        var results: [Output] = []
        results.reserveCapacity(tasks.count)
        for (index, task) in tasks.enumerated() {
            do {
                results.append(try task.wait())
            } catch {
                for rest in tasks[(index + 1)...] { rest.cancel() }
                for rest in tasks[(index + 1)...] { _ = try? rest.wait() }
                throw error
            }
        }
        return results
    }

    /// Runs `work` on the pool and suspends until it has finished, occupying
    /// no cooperative thread meanwhile: `loop.run_in_executor(pool, work)`.
    ///
    /// Cancelling the awaiting task while `work` is queued removes it (it
    /// never runs) and throws `CancellationError` at once; once `work` runs,
    /// the caller waits for it and gets its result (asyncio instead raises
    /// `CancelledError` at once and drops the result of the still-running thread).
    public func run<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        let task = submit(work)
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Suspends until at least `n` pieces of work wait in the queue: the
    /// evidence that work is queued, for tests (bounded by a `WaitLimit`).
    public func waitUntil(queued n: Int) async throws {
        try await queue.depth.waitUntil { $0 >= n }
    }

    /// Stops taking work, lets the queued work run, and joins every thread
    /// (`executor.shutdown(wait=True)`). Blocks the calling thread; idempotent.
    /// Never call it on ``shared``.
    public func shutdown() {
        queue.close()
        for thread in threads { _ = try? thread.join() }
    }

    /// ``shutdown()`` from async code: suspends until every thread has ended.
    public func shutdown() async {
        queue.close()
        for thread in threads { await thread.joined() }
    }
}

/// Why a ``PoolTask`` failed without running.
public enum ThreadPoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Work was submitted after ``ThreadPool/shutdown()``.
    case shutDown

    public var description: String {
        switch self {
        case .shutDown: "the thread pool is shut down and takes no more work"
        }
    }
}

/// The future of work submitted to a ``ThreadPool``: `concurrent.futures.Future`.
///
/// Thread-safe; wait for it from a thread (``wait()``) or from async code
/// (``value``), any number of times.
public final class PoolTask<Value: Sendable>: Sendable {
    /// Where the work is.
    public enum Phase: Sendable {
        case queued, running
        case finished(Result<Value, any Error>)
        case cancelled
    }

    private let phase = Watched<Phase>(.queued)

    init() {}

    /// The current phase.
    public var current: Phase { phase.value }

    /// Whether the work has finished or was cancelled (`Future.done()`).
    public var isDone: Bool { Self.isDone(phase.value) }

    /// Cancels the work if it has not started (`Future.cancel()`).
    /// - Returns: true if it will now never run; false if it is running or done.
    @discardableResult
    public func cancel() -> Bool {
        phase.update { p in
            guard case .queued = p else { return false }
            p = .cancelled
            return true
        }
    }

    /// Blocks the calling thread until the work is done, then returns its
    /// value or rethrows its error; `CancellationError` if it was cancelled.
    public func wait() throws -> Value {
        phase.waitBlocking(until: { Self.isDone($0) })
        return try outcome()
    }

    /// Suspends until the work is done, then returns its value or rethrows
    /// its error; `CancellationError` if it was cancelled. Cancelling the
    /// waiting task does not end the wait (use ``cancel()``); under a
    /// ``CurriculumCore/WaitLimit`` (tests) a wait that lasts longer throws.
    public var value: Value {
        get async throws {
            try await phase.waitUntil(cancellable: false) { Self.isDone($0) }
            return try outcome()
        }
    }

    private func outcome() throws -> Value {
        switch phase.value {
        case .finished(let result): return try result.get()
        case .cancelled: throw CancellationError()
        case .queued, .running: preconditionFailure("outcome read before the work was done")
        }
    }

    private static func isDone(_ phase: Phase) -> Bool {
        switch phase {
        case .queued, .running: false
        case .finished, .cancelled: true
        }
    }

    /// On a pool thread: runs `work` unless the task was cancelled meanwhile.
    func runIfQueued(_ work: () throws -> Value) {
        let claimed = phase.update { p in
            guard case .queued = p else { return false }
            p = .running
            return true
        }
        guard claimed else { return }
        let result = Result { try work() }
        phase.update { $0 = .finished(result) }
    }

    /// Fails a task that could not be queued.
    func fail(_ error: any Error) {
        phase.update { $0 = .finished(.failure(error)) }
    }
}

/// The number of processors online (`sysconf(_SC_NPROCESSORS_ONLN)`, what
/// Python's `os.cpu_count()` reports).
public func onlineProcessorCount() -> Int {
    max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// The pool's FIFO of jobs (the pool's threads sleep in `take()` until
/// there is work or the queue closes), and how many wait.
private final class JobQueue: Sendable {
    typealias Job = @Sendable () -> Void

    /// How many jobs wait (updated under the queue's mutex; `Watched` never
    /// calls back into the queue, so the lock order mutex → watched is safe).
    let depth = Watched(0)
    private let jobs: BlockingQueue<Job>

    init() {
        let depth = depth
        jobs = BlockingQueue(onCountChange: { n in depth.update { $0 = n } })
    }

    /// Appends a job and wakes one thread; false once the queue is closed.
    func put(_ job: @escaping Job) -> Bool { jobs.put(job) }

    /// The next job, waiting for one; nil when the queue is closed and empty.
    func take() -> Job? { jobs.take() }

    /// No more jobs are accepted; the threads drain the queue and return.
    func close() { jobs.close() }
}
