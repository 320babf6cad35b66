import NIOPosix

/// Runs blocking work on a thread outside Swift's cooperative pool and awaits
/// its result: `asyncio.to_thread(func)` / `loop.run_in_executor(None, func)`.
///
/// The cooperative pool has one thread per core; a blocking call or a long
/// CPU loop on it stalls every other task (listings 2.19–2.20). `toThread`
/// hands the work to a dedicated `NIOThreadPool` instead and suspends the
/// caller without occupying a pool thread.
///
/// - Parameters:
///   - pool: where to run; ``BlockingPool/shared`` by default: 32 threads,
///     asyncio's default executor's cap, so up to 32 blocking calls overlap.
///   - work: the blocking work.
/// - Cancellation: like Python's, the thread is not interrupted: cancelling
///   the caller does not stop `work`, and the caller still waits for it.
public func toThread<T: Sendable>(
    on pool: NIOThreadPool = BlockingPool.shared,
    _ work: @escaping @Sendable () throws -> T
) async throws -> T {
    try await pool.runIfActive(work)
}

/// The thread pool ``toThread(on:_:)`` uses by default.
public enum BlockingPool {
    /// 32 threads, started on first use and kept for the process's life.
    public static let shared: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 32)
        pool.start()
        return pool
    }()
}
