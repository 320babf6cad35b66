import Threads

/// Deadlines for any number of sleeping tasks, kept by one thread: a
/// cancellable sleep that is armed and disarmed under a mutex, without a
/// system call in the common case.
///
/// `Task.sleep` arms a libdispatch timer per call: its manager thread is
/// woken to arm it, woken again when it fires (even for a sleep cancelled
/// long before), and a pool thread runs the dead job. That is cheap once,
/// and a quarter of a request's CPU for a server that bounds every request
/// with ``withTimeout(_:operation:)`` (`benchmarks web`: about 25 µs of
/// the 230 µs `ProductsAPI` spent per `/brands` request). Here a sleep is a
/// table entry: the thread wakes only when the earliest deadline is due or
/// an earlier one is registered, and a cancelled sleep is removed at once.
///
/// The thread starts with the first sleep and ends after `linger` without
/// any: an idle process keeps no timer thread.
///
/// `@unchecked Sendable`: every stored property below is read and written
/// with the monitor's mutex held.
public final class Alarms: @unchecked Sendable {
    /// The process's alarms (``withTimeout(_:operation:)``'s timer).
    public static let shared = Alarms()

    private typealias Waiter = CheckedContinuation<Void, any Error>

    private let monitor = Monitor()
    private var sleepers: [UInt64: (deadline: ContinuousClock.Instant, waiter: Waiter)] = [:]
    private var lastID: UInt64 = 0
    /// When the thread looks next (nil: it waits for a first deadline, or does not exist yet).
    private var nextLook: ContinuousClock.Instant?
    private var thread: JoinHandle<Void>?
    private var threadsStarted = 0
    private let linger: Duration

    /// - Parameter linger: how long the thread waits for a new sleep once none is left, before it ends.
    public init(linger: Duration = .seconds(1)) {
        self.linger = linger
    }

    private func locked<T>(_ body: () -> T) -> T { monitor.withLock(body) }

    /// Suspends until `deadline`; throws `CancellationError` at once when the
    /// task is cancelled (before or during the sleep), as `Task.sleep` does.
    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        let id = locked { lastID += 1; return lastID }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: Waiter) in
                // Under the mutex, so a cancellation (its flag is set before its handler runs, and the
                // handler takes the mutex) either is seen here or finds the entry: never lost.
                let early: Result<Void, any Error>? = locked {
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= .now { return .success(()) }
                    sleepers[id] = (deadline, waiter)
                    if thread == nil {
                        threadsStarted += 1
                        thread = spawnThread(name: "alarms") { [self] in keepTime() }
                    } else if nextLook.map({ deadline < $0 }) ?? true {
                        monitor.signal()
                    }
                    return nil
                }
                if let early { waiter.resume(with: early) }
            }
        } onCancel: {
            let waiter = locked { sleepers.removeValue(forKey: id)?.waiter }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Sleeps registered now (a finished or cancelled one leaves none).
    public var count: Int { locked { sleepers.count } }

    /// The deadline the thread is waiting for now (nil: none, or no thread).
    public var nextWake: ContinuousClock.Instant? { locked { nextLook } }

    /// Timer threads started so far (one serves every sleep until it has lingered idle).
    public var threads: Int { locked { threadsStarted } }

    /// The thread: resumes every sleeper whose deadline has come, then waits
    /// for the earliest remaining one (or a signal of an earlier one); ends
    /// once it has waited `linger` with nothing to do.
    private func keepTime() {
        monitor.lock()
        var idle = false
        while true {
            let now = ContinuousClock.now
            var due: [UInt64] = []
            var earliest: ContinuousClock.Instant?
            for (id, sleeper) in sleepers {
                if sleeper.deadline <= now {
                    due.append(id)
                } else if earliest.map({ sleeper.deadline < $0 }) ?? true {
                    earliest = sleeper.deadline
                }
            }
            if !due.isEmpty {
                let waiters = due.compactMap { sleepers.removeValue(forKey: $0)?.waiter }
                monitor.unlock()
                for waiter in waiters { waiter.resume() }
                monitor.lock()
                continue
            }
            nextLook = earliest
            if let earliest {
                idle = false
                monitor.wait(for: earliest - now)
            } else if idle {
                thread = nil  // the next sleep starts a new one
                monitor.unlock()
                return
            } else {
                idle = true
                monitor.wait(for: linger)
            }
        }
    }
}
