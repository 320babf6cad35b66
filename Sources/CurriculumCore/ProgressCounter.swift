import Synchronization

/// Listing 7.8's counter of completed requests, bumped by many pool threads:
/// the increment is one step under a lock, so no update is lost.
///
/// A plain global `var counter` mutated from several threads does not even
/// compile in Swift 6 mode; the lock is not optional.
public final class ProgressCounter: Sendable {
    private let count = Locked(0)

    public init() {}

    /// Adds one (thread-safe, nothing lost).
    public func increment() { count.withLock { $0 += 1 } }

    /// The current count.
    public var value: Int { count.withLock { $0 } }
}

/// The shape listing 7.8's lock prevents: read the count, then write it back
/// plus one, as two separate steps. Each step is atomic (so the thread
/// sanitizer sees no data race), but another thread's increment between them
/// is overwritten: a race of logic, and updates are lost (6.11's lesson,
/// across threads instead of processes). For demonstration only.
public final class UnlockedCounter: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    /// `counter = counter + 1` without a lock: load, then store.
    public func increment() {
        let seen = count.load(ordering: .relaxed)
        count.store(seen + 1, ordering: .relaxed)
    }

    /// The current count.
    public var value: Int { count.load(ordering: .relaxed) }
}
