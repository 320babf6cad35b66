import CurriculumCore
import NIOCore

/// One connection's outgoing messages: many producers enqueue without ever
/// waiting, one writer task takes *everything* queued at once and hands it
/// to the channel in one write (one flush, one system call for the lot).
///
/// Bounded: past `capacity` messages waiting, ``enqueue(_:)`` refuses
/// (`.full`), so a consumer that cannot keep up is noticed instead of being
/// buffered without bound. The writer's `write(contentsOf:)` waits while the
/// socket is not writable, so messages wait here meanwhile — and count.
public final class Outbox: Sendable {
    public enum Enqueued: Sendable, Equatable { case enqueued, full, closed }

    private struct State {
        var pending: [ByteBuffer] = []
        var waiter: CheckedContinuation<[ByteBuffer]?, Never>?
        var finished = false
    }

    public let capacity: Int
    private let state = Locked(State())

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Adds `message` unless the outbox is full or finished.
    @discardableResult
    public func enqueue(_ message: ByteBuffer) -> Enqueued {
        let (result, waiter) = state.withLock { s -> (Enqueued, CheckedContinuation<[ByteBuffer]?, Never>?) in
            if s.finished { return (.closed, nil) }
            if let waiter = s.waiter {  // the writer waits only while nothing is pending
                s.waiter = nil
                return (.enqueued, waiter)
            }
            if s.pending.count >= capacity { return (.full, nil) }
            s.pending.append(message)
            return (.enqueued, nil)
        }
        if let waiter { waiter.resume(returning: [message]) }  // outside the lock
        return result
    }

    /// No more messages: the writer gets what is queued, then nil.
    public func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<[ByteBuffer]?, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.pending.isEmpty ? s.waiter : nil
        }
        waiter?.resume(returning: nil)
    }

    /// Everything queued now (waiting until something is), or nil once finished
    /// and drained, or when the calling task is cancelled. One writer only.
    public func next() async -> [ByteBuffer]? {
        if let ready = takeIfReady() { return ready.isEmpty ? nil : ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: [ByteBuffer]?? = state.withLock { s in
                    if !s.pending.isEmpty { defer { s.pending = [] }; return .some(s.pending) }
                    if s.finished || Task.isCancelled { return .some(nil) }
                    s.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// The pending messages if any (or [] when finished and drained); nil to wait.
    private func takeIfReady() -> [ByteBuffer]? {
        state.withLock { s in
            if !s.pending.isEmpty { defer { s.pending = [] }; return s.pending }
            return s.finished ? [] : nil
        }
    }
}
