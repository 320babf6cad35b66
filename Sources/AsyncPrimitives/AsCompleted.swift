/// One finished operation of ``asCompleted(_:timeout:)``.
public struct Completion<T: Sendable>: Sendable {
    /// The operation's position in the argument array.
    public var index: Int
    /// Its value or error (``TimeoutError`` if the deadline passed first).
    public var result: Result<T, any Error>

    public init(index: Int, result: Result<T, any Error>) {
        self.index = index
        self.result = result
    }

    /// The value, or the error thrown.
    public func get() throws -> T { try result.get() }
}

/// Runs the operations concurrently and yields each one as soon as it
/// finishes: `asyncio.as_completed(aws, timeout=…)`.
///
/// The returned sequence owns a task group (run by a task it starts when
/// created); it yields a ``Completion`` per operation, in completion order,
/// carrying the operation's index so the caller can tell which one it was.
///
/// - Timeout: when `timeout` passes, every operation still running is yielded
///   as a `.failure(TimeoutError)` at once, and then those operations are
///   cancelled — they are children of the sequence's group. The sequence
///   ends only once they have stopped. (asyncio's `as_completed` leaves them
///   running; in Swift nothing outlives the sequence.)
/// - Cancellation: cancelling the consuming task, or dropping the sequence,
///   cancels all the operations.
public func asCompleted<T: Sendable>(
    _ operations: [@Sendable () async throws -> T],
    timeout: Duration? = nil
) -> AsyncStream<Completion<T>> {
    let (stream, continuation) = AsyncStream.makeStream(of: Completion<T>.self)
    let runner = Task {
        await withTaskGroup(of: AsCompletedEvent<T>.self) { group in
            for (index, operation) in operations.enumerated() {
                group.addTask {
                    do { return .finished(index, .success(try await operation())) } catch {
                        return .finished(index, .failure(error))
                    }
                }
            }
            if let timeout {
                group.addTask {
                    // Cancelled (not timed out) when every operation finished first.
                    try? await Task.sleep(for: timeout)
                    return .deadline
                }
            }
            var remaining = Set(operations.indices)
            while !remaining.isEmpty, let event = await group.next() {
                switch event {
                case .finished(let index, let result):
                    remaining.remove(index)
                    continuation.yield(Completion(index: index, result: result))
                case .deadline:
                    guard !Task.isCancelled else { break }
                    for index in remaining.sorted() {
                        continuation.yield(Completion(index: index, result: .failure(TimeoutError(timeout: timeout!))))
                    }
                    remaining = []
                }
            }
            // Cancel what is left (after a timeout) and let the group wait
            // for it, so the stream ends only once every operation stopped.
            group.cancelAll()
        }
        continuation.finish()
    }
    continuation.onTermination = { _ in runner.cancel() }
    return stream
}

/// What a child of ``asCompleted(_:timeout:)``'s group reports.
private enum AsCompletedEvent<T: Sendable>: Sendable {
    case finished(Int, Result<T, any Error>)
    case deadline
}
