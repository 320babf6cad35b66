#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
/// with `mutex` held; the pthread objects live at stable heap addresses.
public final class Alarms: @unchecked Sendable {
    /// The process's alarms (``withTimeout(_:operation:)``'s timer).
    public static let shared = Alarms()

    private typealias Waiter = CheckedContinuation<Void, any Error>

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
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
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        // Deadlines are on a monotonic clock; the default (realtime) would jump with the wall clock.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

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
                        pthread_cond_signal(condition)
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
        pthread_mutex_lock(mutex)
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
                pthread_mutex_unlock(mutex)
                for waiter in waiters { waiter.resume() }
                pthread_mutex_lock(mutex)
                continue
            }
            nextLook = earliest
            if let earliest {
                idle = false
                wait(for: earliest - now)
            } else if idle {
                thread = nil  // the next sleep starts a new one
                pthread_mutex_unlock(mutex)
                return
            } else {
                idle = true
                wait(for: linger)
            }
        }
    }

    /// Waits on the condition (mutex held) for at most `duration` (an hour at most: the loop looks
    /// again, and a far deadline cannot overflow `timespec`), on the monotonic clock.
    private func wait(for duration: Duration) {
        var until = timespec()
        clock_gettime(CLOCK_MONOTONIC, &until)
        let (seconds, attoseconds) = min(duration, .seconds(3600)).components
        let nanoseconds = Int(until.tv_nsec) + Int(attoseconds / 1_000_000_000) + 1
        until.tv_sec += time_t(seconds) + time_t(nanoseconds / 1_000_000_000)
        until.tv_nsec = nanoseconds % 1_000_000_000
        pthread_cond_timedwait(condition, mutex, &until)
    }
}
