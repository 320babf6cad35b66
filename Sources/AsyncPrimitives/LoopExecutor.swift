import Logging
import NIOCore
import NIOPosix
import CurriculumCore

/// Errors of ``LoopExecutor``.
public enum LoopExecutorError: Error, Equatable, Sendable {
    /// The loop was closed: it accepts no more work.
    case closed
}

/// An explicit, single-threaded event loop that runs Swift tasks — asyncio's
/// model, made visible.
///
/// Swift concurrency has no loop to create: tasks run on a cooperative pool
/// with one thread per core. `LoopExecutor` is a `TaskExecutor` (and
/// whose every job — a task's run between two suspension
/// points, exactly asyncio's "callback" — is handed to one SwiftNIO event
/// loop thread. Tasks that prefer it therefore run one at a time on one
/// thread, and CPU-bound work blocks everything else on it, as in asyncio.
///
/// - ``run(_:)`` executes an async closure (and its structured children:
///   `async let`, task groups) on the loop: `loop.run_until_complete`.
/// - ``callSoon(_:)`` / ``callLater(after:_:)``: `call_soon` / `call_later`.
/// - ``slowJobThreshold``: asyncio's debug-mode `slow_callback_duration`:
///   every job that holds the loop longer is logged and kept in ``slowJobs``.
/// - ``close()``: `loop.close()`; afterwards ``run(_:)`` throws
///   ``LoopExecutorError/closed`` (NIO would silently drop the work).
public final class LoopExecutor: TaskExecutor {
    private let group: MultiThreadedEventLoopGroup
    /// The single NIO event loop every job runs on.
    public let eventLoop: any EventLoop
    /// Jobs that ran longer than this are reported (`nil`: no reporting).
    public let slowJobThreshold: Duration?
    private let state = Locked<(closed: Bool, slowJobs: [Duration])>((false, []))
    private let logger = Logger(label: "asyncio.loop")

    /// Starts a loop on a new thread.
    /// - Parameter slowJobThreshold: report jobs that hold the loop longer.
    public init(slowJobThreshold: Duration? = nil) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        eventLoop = group.next()
        self.slowJobThreshold = slowJobThreshold
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            let start = ContinuousClock.now
            // Run as a *task executor* only: a job that were also isolated to
            // a serial executor would make every call into a nonisolated async
            // function hop (re-enqueue) onto the loop, reordering work behind
            // callbacks queued meanwhile — not asyncio's run-to-suspension.
            job.runSynchronously(on: self.asUnownedTaskExecutor())
            self.checkSlow(ContinuousClock.now - start)
        }
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// True when called on the loop's thread.
    public var inLoop: Bool { eventLoop.inEventLoop }

    /// The durations of the jobs that exceeded ``slowJobThreshold``.
    ///
    /// A job is timed when it returns, which may be just after its task has
    /// resumed on another executor: the list is complete once ``close()``
    /// has returned.
    public var slowJobs: [Duration] { state.withLock { $0.slowJobs } }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Runs `body` on the loop and returns its value: `run_until_complete`.
    ///
    /// `body` and its structured children prefer this executor; unstructured
    /// tasks it creates do not inherit that preference (create them with
    /// `Task(executorPreference: loop)`). Cancellation of the caller reaches
    /// `body` as usual.
    /// - Throws: ``LoopExecutorError/closed`` after ``close()``, or `body`'s error.
    public func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard !isClosed else { throw LoopExecutorError.closed }
        return try await withTaskExecutorPreference(self) {
            try await body()
        }
    }

    /// Schedules `callback` for the loop's next turn: `loop.call_soon`.
    public func callSoon(_ callback: @escaping @Sendable () -> Void) {
        eventLoop.execute(callback)
    }

    /// Schedules `callback` after `delay`: `loop.call_later`. Cancel it with
    /// the returned handle's `cancel()`.
    @discardableResult
    public func callLater(after delay: Duration, _ callback: @escaping @Sendable () -> Void) -> Scheduled<Void> {
        eventLoop.scheduleTask(in: .nanoseconds(Int64(delay.seconds * 1e9)), callback)
    }

    /// Stops the loop's thread: `loop.close()`. Idempotent.
    public func close() async throws {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        try await group.shutdownGracefully()
    }

    private func checkSlow(_ d: Duration) {
        guard let slowJobThreshold, d > slowJobThreshold else { return }
        state.withLock { $0.slowJobs.append(d) }
        logger.warning("Executing a job took \(d) (threshold \(slowJobThreshold))")
    }
}

/// Creates a ``LoopExecutor``, passes it to `body` and always closes it.
public func withLoopExecutor<T: Sendable>(
    slowJobThreshold: Duration? = nil,
    _ body: (LoopExecutor) async throws -> T
) async throws -> T {
    let loop = LoopExecutor(slowJobThreshold: slowJobThreshold)
    do {
        let value = try await body(loop)
        try await loop.close()
        return value
    } catch {
        try? await loop.close()
        throw error
    }
}
