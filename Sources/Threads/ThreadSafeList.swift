import CurriculumCore

/// Listing 7.10's list of integers shared by threads, in both designs.
public protocol SharedIntList: AnyObject, Sendable {
    init(_ items: [Int])
    /// The positions of `value`, in order.
    func indicesOf(_ value: Int) -> [Int]
    /// Replaces every `old` by `new` as one step: no thread sees half of it.
    func findAndReplace(_ old: Int, _ new: Int)
    func append(_ value: Int)
    /// A copy of the whole list, taken under the lock.
    func snapshot() -> [Int]
}

/// The book's design, faithfully: every public method takes one lock, and
/// `findAndReplace` calls `indicesOf` while holding it — so the lock must be
/// reentrant (``RecursiveLock``, Python's `RLock`). With a plain lock the
/// second acquisition deadlocks (the book's reason for `RLock`); with
/// `Synchronization.Mutex` the process traps.
public final class RecursivelyLockedList: SharedIntList, @unchecked Sendable {
    // @unchecked Sendable: `items` is only touched inside `lock.locked`.
    private let lock = RecursiveLock()
    private var items: [Int]

    public init(_ items: [Int]) { self.items = items }

    public func indicesOf(_ value: Int) -> [Int] {
        lock.locked { items.indices.filter { items[$0] == value } }
    }

    public func findAndReplace(_ old: Int, _ new: Int) {
        lock.locked {
            for index in indicesOf(old) { items[index] = new }  // re-enters the lock
        }
    }

    public func append(_ value: Int) { lock.locked { items.append(value) } }

    public func snapshot() -> [Int] { lock.locked { items } }
}

/// The Swift idiom: the lock is taken once, at the public boundary, and the
/// work is done by private helpers on `inout [Int]` that never lock — no
/// reentrancy needed, and nothing can call back into the lock by accident.
/// (On `Locked`, the package's pthread-backed `Mutex` look-alike that the
/// thread sanitizer can see; `Synchronization.Mutex` has the same shape.)
public final class ThreadSafeList: SharedIntList {
    private let items: Locked<[Int]>

    public init(_ items: [Int]) { self.items = Locked(items) }

    public func indicesOf(_ value: Int) -> [Int] {
        items.withLock { Self.indices(of: value, in: $0) }
    }

    public func findAndReplace(_ old: Int, _ new: Int) {
        items.withLock { list in
            for index in Self.indices(of: old, in: list) { list[index] = new }
        }
    }

    public func append(_ value: Int) { items.withLock { $0.append(value) } }

    public func snapshot() -> [Int] { items.withLock { $0 } }

    private static func indices(of value: Int, in list: [Int]) -> [Int] {
        list.indices.filter { list[$0] == value }
    }
}
