import CurriculumCore
/// Sleeps `n` book seconds and returns `n`: the book's `delay` coroutine
/// (util/delay_functions.py), the stand-in for "some slow I/O".
///
/// Records `"start(n)"` before and `"end(n)"` after the sleep in
/// `EventLog.current` (when bound), the book's two print statements.
///
/// - Cancellation: the sleep is `Task.sleep`, so cancelling the calling task
///   throws `CancellationError` at once and `"end(n)"` is never recorded — the
///   counterpart of asyncio's `CancelledError` surfacing at the `await`.
/// - Returns: `n`.
@discardableResult
public func delay(_ n: Int) async throws -> Int {
    try await sleepRecorded(n, for: Book.second * n)
    return n
}

/// Sleeps `n` book seconds (fractional), recording `"start(n)"`/`"end(n)"`.
/// See ``delay(_:)-(Int)``.
@discardableResult
public func delay(_ n: Double) async throws -> Double {
    try await sleepRecorded(n, for: Book.second * n)
    return n
}

/// The body of both `delay`s: `start(n)`, the sleep, `end(n)`.
private func sleepRecorded(_ n: some CustomStringConvertible, for duration: Duration) async throws {
    EventLog.current?.record("start(\(n))")
    try await Task.sleep(for: duration)
    EventLog.current?.record("end(\(n))")
}
