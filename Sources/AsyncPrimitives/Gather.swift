/// Runs every operation concurrently and returns their results in argument
/// order: `asyncio.gather(*aws)`.
///
/// Each operation is a child of one task group, so all of them are in flight
/// at once; each result is stored at its argument's index, whatever order the
/// operations finish in.
///
/// - Errors: the first error thrown by any operation propagates, and — unlike
///   Python, whose `gather` leaves the other awaitables running — the group
///   then cancels the remaining operations and waits for them to stop:
///   structured concurrency leaves no orphans. Use ``gatherResults(_:)`` for
///   `return_exceptions=True`.
/// - Cancellation: cancelling the caller cancels every operation.
public func gather<T: Sendable>(
    _ operations: [@Sendable () async throws -> T]
) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        for (index, operation) in operations.enumerated() {
            group.addTask { (index, try await operation()) }
        }
        var results = [T?](repeating: nil, count: operations.count)
        for try await (index, value) in group {
            results[index] = value
        }
        return results.map { $0! }
    }
}

/// Runs every operation concurrently and returns each one's `Result` in
/// argument order: `asyncio.gather(*aws, return_exceptions=True)`.
///
/// Never throws: a failing operation becomes a `.failure` in its slot and the
/// others run to completion. Cancelling the caller cancels every operation
/// (their slots then usually hold `CancellationError`).
public func gatherResults<T: Sendable>(
    _ operations: [@Sendable () async throws -> T]
) async -> [Result<T, any Error>] {
    await withTaskGroup(of: (Int, Result<T, any Error>).self) { group in
        for (index, operation) in operations.enumerated() {
            group.addTask {
                do { return (index, .success(try await operation())) } catch { return (index, .failure(error)) }
            }
        }
        var results = [Result<T, any Error>?](repeating: nil, count: operations.count)
        for await (index, result) in group {
            results[index] = result
        }
        return results.map { $0! }
    }
}
