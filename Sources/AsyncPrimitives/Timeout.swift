/// The error a timeout raises: asyncio's `TimeoutError`.
public struct TimeoutError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The time limit that passed.
    public var timeout: Duration

    public init(timeout: Duration) { self.timeout = timeout }

    public var description: String { "timed out after \(timeout)" }
}

/// Runs `operation` with a time limit: `asyncio.wait_for(aw, timeout)`.
///
/// The operation and a timer race as the two children of a task group; the
/// first to finish wins and the other is cancelled. The timer sleeps on the
/// process's one timer thread (``Alarms``), not with `Task.sleep`, which
/// arms and wakes a libdispatch timer per call: a server bounding every
/// request pays for that on each one.
///
/// - Returns: the operation's value, if it finishes first.
/// - Throws: ``TimeoutError`` if the time runs out (the operation is then
///   cancelled); the operation's own error if it fails first;
///   `CancellationError` if the *caller* is cancelled.
/// - Important: a task group cannot return before all its children have
///   finished, so `withTimeout` returns only once the cancelled operation has
///   actually stopped: an operation that ignores cancellation overruns the
///   limit. Python 3.11's `wait_for` likewise waits for the cancellation.
public func withTimeout<T: Sendable>(
    _ timeout: Duration,
    operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: TimeoutRace<T>.self) { group in
        group.addTask { .value(try await operation()) }
        let deadline = ContinuousClock.now + timeout
        group.addTask {
            try await Alarms.shared.sleep(until: deadline)
            return .timedOut
        }
        defer { group.cancelAll() }
        switch try await group.next()! {
        case .value(let value):
            return value
        case .timedOut:
            throw TimeoutError(timeout: timeout)
        }
    }
}

/// Waits for a task without letting the waiter's cancellation reach it:
/// `asyncio.shield(task)`.
///
/// The wait itself is cancellable: cancelling the caller (for example by
/// ``withTimeout(_:operation:)``) throws `CancellationError` at once, while the
/// task keeps running and can be awaited again later.
///
/// Swift needs this less than Python does — cancellation never flows from a
/// waiter into an unstructured task — but plain `await task.value` cannot
/// *stop waiting* early; `shield` can.
public func shield<T: Sendable>(_ handle: TaskHandle<T>) async throws -> T {
    try await handle.future.value
}

/// The two racers of ``withTimeout(_:operation:)``.
private enum TimeoutRace<T: Sendable>: Sendable {
    case value(T)
    case timedOut
}
