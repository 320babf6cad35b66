import CurriculumCore

/// Misuse of a ``Future``: reading it too early or completing it twice
/// (asyncio's `InvalidStateError`).
public enum FutureError: Error, Equatable, Sendable {
    /// `result()` was called before the future was completed.
    case notReady
    /// `setResult`/`setError` was called on a completed future.
    case alreadyCompleted
}

/// A one-shot value that is set once and awaited by many: `asyncio.Future`.
///
/// Thread-safe (its state lives in a `Locked`) and loop-free: any task or
/// thread may complete it, any number of tasks may await it.
///
/// - Awaiting: ``value`` suspends until the future is completed. Cancelling
///   a *waiter* throws `CancellationError` in that waiter only: the future and
///   its other waiters are unaffected (asyncio would cancel the future itself;
///   a shared one-shot value should not be destroyed by one consumer).
/// - Completing: ``setResult(_:)`` / ``setError(_:)`` succeed once; a second
///   completion throws ``FutureError/alreadyCompleted`` and changes nothing.
public final class Future<Value: Sendable>: Sendable {
    private enum Status {
        case pending
        case done(Result<Value, any Error>)
    }

    private struct State {
        var status: Status = .pending
        var waiters: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        var cancelledWaiters: Set<UInt64> = []
        var nextID: UInt64 = 0
        var callbacks: [@Sendable (Result<Value, any Error>) -> Void] = []
    }

    private let state = Locked(State())

    /// A pending future.
    public init() {}

    /// Whether the future has a result or an error (`Future.done()`).
    public var isDone: Bool {
        state.withLock { if case .done = $0.status { true } else { false } }
    }

    /// Completes the future with a value (`set_result`), waking every waiter.
    /// - Throws: ``FutureError/alreadyCompleted`` if it was already completed.
    public func setResult(_ value: Value) throws {
        try complete(with: .success(value))
    }

    /// Completes the future with an error (`set_exception`), waking every waiter.
    /// - Throws: ``FutureError/alreadyCompleted`` if it was already completed.
    public func setError(_ error: any Error) throws {
        try complete(with: .failure(error))
    }

    /// Completes the future with `result`.
    /// - Throws: ``FutureError/alreadyCompleted`` if it was already completed.
    public func complete(with result: Result<Value, any Error>) throws {
        let (waiters, callbacks) = try state.withLock { s in
            guard case .pending = s.status else { throw FutureError.alreadyCompleted }
            s.status = .done(result)
            defer { s.waiters = [:]; s.callbacks = [] }
            return (Array(s.waiters.values), s.callbacks)
        }
        for w in waiters { w.resume(with: result) }
        for c in callbacks { c(result) }
    }

    /// The outcome, without waiting (`Future.result()`).
    /// - Throws: ``FutureError/notReady`` while pending; the stored error if
    ///   the future failed.
    public func result() throws -> Value {
        try outcome().get()
    }

    /// The stored `Result`, without waiting.
    /// - Throws: ``FutureError/notReady`` while pending.
    public func outcome() throws(FutureError) -> Result<Value, any Error> {
        let status = state.withLock { $0.status }
        guard case .done(let result) = status else { throw .notReady }
        return result
    }

    /// Runs `callback` once the future completes (at once if it already has),
    /// on the completing thread: `add_done_callback`.
    public func onComplete(_ callback: @escaping @Sendable (Result<Value, any Error>) -> Void) {
        let done: Result<Value, any Error>? = state.withLock { s in
            if case .done(let r) = s.status { return r }
            s.callbacks.append(callback)
            return nil
        }
        if let done { callback(done) }
    }

    /// Suspends until the future completes, then returns its value or throws
    /// its error. Cancelling the waiting task throws `CancellationError` at
    /// once; the future itself is unaffected.
    public var value: Value {
        get async throws {
            let id = state.withLock { s -> UInt64 in
                s.nextID += 1
                return s.nextID
            }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (c: CheckedContinuation<Value, any Error>) in
                    let now: Result<Value, any Error>? = state.withLock { s in
                        if s.cancelledWaiters.remove(id) != nil { return .failure(CancellationError()) }
                        if case .done(let r) = s.status { return r }
                        s.waiters[id] = c
                        return nil
                    }
                    if let now { c.resume(with: now) }
                }
            } onCancel: {
                let waiter = state.withLock { s -> CheckedContinuation<Value, any Error>? in
                    if let w = s.waiters.removeValue(forKey: id) { return w }
                    if case .pending = s.status { s.cancelledWaiters.insert(id) }
                    return nil
                }
                waiter?.resume(throwing: CancellationError())
            }
        }
    }

    /// Suspends until the future completes, ignoring the waiter's
    /// cancellation (used where the wait must outlast it).
    public func valueIgnoringCancellation() async throws -> Value {
        let result: Result<Value, any Error> = await withCheckedContinuation { c in
            onComplete { c.resume(returning: $0) }
        }
        return try result.get()
    }
}
