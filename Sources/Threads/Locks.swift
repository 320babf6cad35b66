#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CurriculumCore

// Listing 7.9's locks, told truthfully for Swift. Python's `Lock` deadlocks
// when its owner takes it again and `RLock` allows it. In Swift (6.3.1, Linux):
// `Synchronization.Mutex` traps ("Recursive call to lock Mutex"), Foundation's
// `NSLock` deadlocks, an error-checking pthread mutex (``CheckedMutex``)
// reports `EDEADLK`, and a recursive mutex (``RecursiveLock``) allows it.

/// A lock as the listings use it: run a body while holding it.
public protocol ListingLock: Sendable {
    /// Runs `body` holding the lock; throws if the lock refuses (``CheckedMutex``).
    func locked<R>(_ body: () throws -> R) throws -> R
}

/// Why a ``CheckedMutex`` refused.
public enum LockError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The calling thread already holds the lock: locking again would
    /// deadlock (`EDEADLK`, errno 35).
    case wouldDeadlock
    /// The calling thread unlocked a lock it does not hold (`EPERM`).
    case notOwner
    /// Any other pthread error.
    case system(Int32)

    public var description: String {
        switch self {
        case .wouldDeadlock: "this thread already holds the lock: locking it again would deadlock (EDEADLK)"
        case .notOwner: "this thread does not hold the lock (EPERM)"
        case .system(let code): "pthread mutex error \(code)"
        }
    }
}

/// A pthread mutex of type `PTHREAD_MUTEX_ERRORCHECK`: a second `lock()` by
/// its owner fails with ``LockError/wouldDeadlock`` instead of deadlocking,
/// the one non-reentrant lock whose mistake can be shown inside a test process.
public final class CheckedMutex: ListingLock, @unchecked Sendable {
    // @unchecked Sendable: the pthread mutex lives at a stable heap address
    // and is only used through pthread calls, which are thread-safe.
    private let mutex = makeMutex(type: PTHREAD_MUTEX_ERRORCHECK)

    public init() {}

    deinit { destroyMutex(mutex) }

    /// Takes the lock, waiting for another owner to release it.
    /// - Throws: ``LockError/wouldDeadlock`` if this thread holds it already.
    public func lock() throws(LockError) {
        let rc = pthread_mutex_lock(mutex)
        switch rc {
        case 0: return
        case EDEADLK: throw .wouldDeadlock
        default: throw .system(rc)
        }
    }

    /// Releases the lock.
    /// - Throws: ``LockError/notOwner`` if this thread does not hold it.
    public func unlock() throws(LockError) {
        let rc = pthread_mutex_unlock(mutex)
        switch rc {
        case 0: return
        case EPERM: throw .notOwner
        default: throw .system(rc)
        }
    }

    public func locked<R>(_ body: () throws -> R) throws -> R {
        try lock()
        defer { try? unlock() }
        return try body()
    }
}

/// A pthread mutex of type `PTHREAD_MUTEX_RECURSIVE`: Python's `RLock` (and
/// Foundation's `NSRecursiveLock`). Its owner may take it again; it is free
/// once every acquisition has been released.
public final class RecursiveLock: ListingLock, @unchecked Sendable {
    // @unchecked Sendable: the mutex is used through pthread calls only;
    // `heldDepth` is read and written only by the thread holding the mutex.
    private let mutex = makeMutex(type: PTHREAD_MUTEX_RECURSIVE)
    private var heldDepth = 0

    public init() {}

    deinit { destroyMutex(mutex) }

    /// How many times the calling thread holds the lock; only meaningful
    /// while it holds it (inside ``locked(_:)``).
    public var depth: Int { heldDepth }

    public func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        heldDepth += 1
        defer {
            heldDepth -= 1
            pthread_mutex_unlock(mutex)
        }
        return try body()
    }
}

/// A heap-allocated pthread mutex of `type` (a stable address, as pthread requires).
private func makeMutex(type: Int) -> UnsafeMutablePointer<pthread_mutex_t> {
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    var attributes = pthread_mutexattr_t()
    pthread_mutexattr_init(&attributes)
    pthread_mutexattr_settype(&attributes, Int32(type))
    pthread_mutex_init(mutex, &attributes)
    pthread_mutexattr_destroy(&attributes)
    return mutex
}

private func destroyMutex(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
}

/// Listing 7.9's function: sums `items` recursively, taking `lock` at every
/// level (five acquisitions for four numbers: the last on the empty list).
/// `acquired` is called inside the lock with what is left to sum.
public func recursiveSum(
    _ items: ArraySlice<Int>, lock: some ListingLock,
    acquired: (ArraySlice<Int>) -> Void = { _ in }
) throws -> Int {
    try lock.locked {
        acquired(items)
        guard let first = items.first else { return 0 }
        return try first + recursiveSum(items.dropFirst(), lock: lock, acquired: acquired)
    }
}
