import Dispatch

/// A value that tasks and threads can wait on: "resume me when the state
/// satisfies this condition". The one mechanism behind `EventLog.waitUntil`
/// and the stub server's `waitUntil(inFlight:)`, so tests wait on the event
/// they mean instead of sleeping or polling.
///
/// Every change goes through ``update(_:)``, which re-checks the waiters'
/// conditions under the lock and resumes those that now hold (outside it).
/// Thread-safe (`Locked`).
public final class Watched<State: Sendable>: Sendable {
    private struct Waiter {
        var id: UInt64
        var condition: @Sendable (State) -> Bool
        var resume: @Sendable (Result<Void, any Error>) -> Void
    }

    private struct Inner {
        var state: State
        var waiters: [Waiter] = []
        var failed: [UInt64: any Error] = [:]  // waiters failed before they registered
        var nextID: UInt64 = 0
        var stopped: (any Error)?
    }

    private let inner: Locked<Inner>

    public init(_ initial: State) {
        inner = Locked(Inner(state: initial))
    }

    /// A copy of the current state.
    public var value: State { inner.withLock { $0.state } }

    /// Changes the state and wakes every waiter whose condition now holds.
    @discardableResult
    public func update<R: Sendable>(_ change: (inout State) -> R) -> R {
        let (result, ready) = inner.withLock { s -> (R, [Waiter]) in
            let result = change(&s.state)
            let state = s.state
            var ready: [Waiter] = []
            s.waiters.removeAll { w in
                guard w.condition(state) else { return false }
                ready.append(w)
                return true
            }
            return (result, ready)
        }
        for w in ready { w.resume(.success(())) }
        return result
    }

    /// Fails every current and future wait with `error` (the owner stopped).
    public func stop(with error: any Error) {
        let all = inner.withLock { s -> [Waiter] in
            s.stopped = error
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in all { w.resume(.failure(error)) }
    }

    /// Suspends until `condition` holds; returns at once if it already does.
    /// - Throws: `CancellationError` if the waiting task is cancelled (the
    ///   state is unaffected), or the error given to ``stop(with:)``.
    public func waitUntil(_ condition: @escaping @Sendable (State) -> Bool) async throws {
        try await waitUntil(cancellable: true, condition)
    }

    /// ``waitUntil(_:)``, optionally deaf to cancellation (`cancellable:
    /// false`: for waits that must not end early, such as joining a thread);
    /// a ``WaitLimit`` still applies.
    public func waitUntil(cancellable: Bool, _ condition: @escaping @Sendable (State) -> Bool) async throws {
        let id = inner.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        // Under a wait limit (tests), a timer fails this one waiter if the
        // condition has not held in time.
        let timer = WaitLimit.current.map { limit in
            Task { [self] in
                try await Task.sleep(for: limit)
                fail(id, with: WaitLimitExceeded(limit: limit))
            }
        }
        defer { timer?.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = inner.withLock { s in
                    if let error = s.failed.removeValue(forKey: id) { return .failure(error) }
                    if condition(s.state) { return .success(()) }
                    if let stopped = s.stopped { return .failure(stopped) }
                    s.waiters.append(Waiter(id: id, condition: condition, resume: { c.resume(with: $0) }))
                    return nil
                }
                if let now { c.resume(with: now) }
            }
        } onCancel: {
            if cancellable { fail(id, with: CancellationError()) }
        }
    }

    /// Ends the wait of waiter `id` with `error` (or makes it fail at once
    /// if it is not registered yet).
    private func fail(_ id: UInt64, with error: any Error) {
        let waiter = inner.withLock { s -> Waiter? in
            if let i = s.waiters.firstIndex(where: { $0.id == id }) { return s.waiters.remove(at: i) }
            s.failed[id] = error
            return nil
        }
        waiter?.resume(.failure(error))
    }

    /// Blocks the calling thread until `condition` holds, or at most
    /// `timeout` when one is given. For plain threads only: it would stall a
    /// cooperative-pool thread. Returns also when the owner stops.
    /// - Returns: false if the timeout ran out first.
    @discardableResult
    public func waitBlocking(until condition: @escaping @Sendable (State) -> Bool, timeout: Duration? = nil) -> Bool {
        let semaphore = DispatchSemaphore(value: 0)
        let now = inner.withLock { s -> Bool in
            if condition(s.state) || s.stopped != nil { return true }
            s.nextID += 1
            s.waiters.append(Waiter(id: s.nextID, condition: condition, resume: { _ in semaphore.signal() }))
            return false
        }
        if now { return true }
        guard let timeout else {
            semaphore.wait()
            return true
        }
        return semaphore.wait(timeout: .now() + .nanoseconds(Int(timeout.nanoseconds))) == .success
    }
}

/// A bound on every ``Watched/waitUntil(_:)`` — and so every
/// `EventLog.waitFor`, the stub's `waitUntil` — in the current task and its
/// children: `nil` (no bound) unless set.
///
/// The test suites' `.curriculum` trait sets it, so a wait for an event that
/// broken code never produces fails the test in seconds with
/// ``WaitLimitExceeded`` instead of hanging it until the suite's time limit
/// (and holding up every test queued behind it).
public enum WaitLimit {
    /// The bound in force here.
    @TaskLocal public static var current: Duration?
}

/// A wait under a ``WaitLimit`` whose condition did not hold in time.
public struct WaitLimitExceeded: Error, CustomStringConvertible {
    /// The limit that passed.
    public var limit: Duration
    public var description: String { "waited \(limit) for an event that never came (WaitLimit)" }
}
