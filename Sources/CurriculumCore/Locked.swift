#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t`: the same shape as
/// `Synchronization.Mutex` (`withLock { state in … }`), but a lock the
/// thread sanitizer can see.
///
/// Why not `Mutex`: on Linux, `Synchronization.Mutex` locks with atomics and
/// `futex` calls inside the (uninstrumented) standard library, so
/// `swift test --sanitize=thread` cannot see its happens-before edges and
/// reports every contended `withLock` as a "Swift access race" (seen on Swift
/// 6.3.1 with two threads inside `withLock` on one `Mutex`). TSan intercepts
/// `pthread_mutex_lock`, so with `Locked` the suite stays clean under TSan and
/// a race that TSan does report is real.
///
/// `@unchecked Sendable` is sound: the value is only reachable inside
/// `withLock`, which holds the mutex, and it enters as `sending`.
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    /// Guards `initialValue`.
    public init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        value = initialValue
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value and returns its result.
    /// Not reentrant: calling `withLock` on the same instance inside `body`
    /// deadlocks. Never suspends; keep `body` short.
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
