#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex and a condition variable on it: the package's blocking waits
/// (``BlockingQueue``'s consumers, AsyncPrimitives' timer thread). Timed
/// waits run on the monotonic clock, so a change of the wall clock does not
/// stretch or cut them.
///
/// `@unchecked Sendable`: the pthread objects live at stable heap addresses
/// and are only used through pthread calls, which are thread-safe.
public final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
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

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the mutex held.
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// With the mutex held: releases it until signalled (or a spurious
    /// wake-up: check the condition in a loop), then holds it again.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Like ``wait()``, for at most `duration`, and at most an hour (the
    /// caller loops anyway; a far deadline cannot overflow `timespec`).
    public func wait(for duration: Duration) {
        var until = timespec()
        clock_gettime(CLOCK_MONOTONIC, &until)
        let (seconds, attoseconds) = min(duration, .seconds(3600)).components
        let nanoseconds = Int(until.tv_nsec) + Int(attoseconds / 1_000_000_000) + 1
        until.tv_sec += time_t(seconds) + time_t(nanoseconds / 1_000_000_000)
        until.tv_nsec = nanoseconds % 1_000_000_000
        pthread_cond_timedwait(condition, mutex, &until)
    }

    /// Wakes one waiter.
    public func signal() { pthread_cond_signal(condition) }
    /// Wakes every waiter.
    public func broadcast() { pthread_cond_broadcast(condition) }
}
