import Threads

/// Runs blocking work on a thread outside Swift's cooperative pool and awaits
/// its result: `asyncio.to_thread(func)` / `loop.run_in_executor(None, func)`.
///
/// The cooperative pool has one thread per core; a blocking call or a long
/// CPU loop on it stalls every other task (listings 2.19–2.20). `toThread`
/// hands the work to a ``Threads/ThreadPool`` instead and suspends the caller
/// without occupying a cooperative thread.
///
/// - Parameters:
///   - pool: where to run; ``Threads/ThreadPool/shared`` by default (asyncio's
///     default executor: `min(32, cores + 4)` threads, so that many blocking
///     calls overlap and the rest queue).
///   - work: the blocking work.
/// - Cancellation: work still queued when the caller is cancelled never runs
///   and `CancellationError` is thrown at once; work already running is not
///   interrupted, and the caller waits for it and gets its result (asyncio
///   raises `CancelledError` at once and lets the thread finish unobserved).
public func toThread<T: Sendable>(
    on pool: ThreadPool = .shared,
    _ work: @escaping @Sendable () throws -> T
) async throws -> T {
    try await pool.run(work)
}
