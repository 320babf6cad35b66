import Dispatch
import AsyncPrimitives
import CurriculumCore

/// A one-shot gate: whoever `enter`s waits until someone `open`s it.
///
/// Lets a test decide exactly when a worker may proceed (as
/// swift-async-algorithms' test `Gate`), from async code (`enter()`) or from
/// a plain thread (`enterBlocking()`). Opening twice is harmless.
public final class Gate: Sendable {
    private let opened = Locked<Bool>(false)
    private let waiters = Locked<[CheckedContinuation<Void, Never>]>([])
    private let semaphore = DispatchSemaphore(value: 0)

    public init() {}

    /// Opens the gate: every current and future `enter` returns.
    public func open() {
        let first = opened.withLock { o -> Bool in
            defer { o = true }
            return !o
        }
        guard first else { return }
        let ws = waiters.withLock { w -> [CheckedContinuation<Void, Never>] in
            defer { w = [] }
            return w
        }
        for w in ws { w.resume() }
        semaphore.signal()
    }

    /// Whether `open()` was called.
    public var isOpen: Bool { opened.withLock { $0 } }

    /// Suspends until the gate is open (not cancellable: open it in a `defer`).
    public func enter() async {
        await withCheckedContinuation { c in
            let now = waiters.withLock { w -> Bool in
                if opened.withLock({ $0 }) { return true }
                w.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Blocks the calling thread until the gate is open. For plain threads
    /// only: never call it on the cooperative pool.
    public func enterBlocking() {
        semaphore.wait()
        semaphore.signal()
    }
}
