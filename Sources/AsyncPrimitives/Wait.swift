/// When ``wait(_:returnWhen:timeout:)`` returns: asyncio's `return_when`.
public enum ReturnWhen: Sendable {
    /// When every task has finished (`ALL_COMPLETED`, the default).
    case allCompleted
    /// When any task has finished (`FIRST_COMPLETED`).
    case firstCompleted
    /// When any task has thrown (a cancelled task does not count), or else
    /// when all have finished (`FIRST_EXCEPTION`).
    case firstException
}

/// Waits on unstructured tasks until a condition holds, and splits them into
/// done and pending: `asyncio.wait(tasks, return_when=…, timeout=…)`.
///
/// `wait` never throws and never cancels anything: it hands back the handles.
/// Read outcomes with ``TaskHandle/result()`` / ``TaskHandle/error``, and cancel
/// or await the pending ones yourself. It waits through each handle's future
/// with cancellable waits, so returning early (condition met, timeout, or the
/// caller being cancelled) leaves the tasks untouched.
///
/// - Parameters:
///   - handles: the tasks to watch.
///   - returnWhen: the condition; ``ReturnWhen/allCompleted`` by default.
///   - timeout: return when it passes even if the condition does not hold
///     (asyncio's `timeout=`: no error, the unfinished ones are `pending`).
/// - Returns: `done` in completion order (those already finished first), and
///   `pending` in argument order.
/// - Cancellation: if the caller is cancelled, `wait` returns the current
///   split at once; the tasks keep running.
public func wait<T: Sendable>(
    _ handles: [TaskHandle<T>],
    returnWhen: ReturnWhen = .allCompleted,
    timeout: Duration? = nil
) async -> (done: [TaskHandle<T>], pending: [TaskHandle<T>]) {
    var order: [Int] = handles.indices.filter { handles[$0].isDone }

    func satisfied() -> Bool {
        switch returnWhen {
        case .allCompleted:
            return order.count == handles.count
        case .firstCompleted:
            return !order.isEmpty || handles.isEmpty
        case .firstException:
            // As asyncio: a task that was cancelled did not raise.
            return order.count == handles.count
                || order.contains { handles[$0].failedWithError }
        }
    }

    if !satisfied() {
        await withTaskGroup(of: WaitEvent?.self) { group in
            for index in handles.indices where !order.contains(index) {
                let future = handles[index].future
                group.addTask {
                    // A cancellable wait: cancelling it leaves the task alone.
                    do { _ = try await future.value } catch is CancellationError {
                        if !future.isDone { return nil }
                    } catch {}
                    return .finished(index)
                }
            }
            if let timeout {
                group.addTask {
                    do { try await Task.sleep(for: timeout) } catch { return nil }
                    return .deadline
                }
            }
            while let event = await group.next() {
                guard let event else { continue }
                if case .finished(let index) = event { order.append(index) }
                if case .deadline = event { break }
                if satisfied() { break }
            }
            group.cancelAll()
        }
    }
    // Tasks that finished while the group was being torn down count as done.
    for index in handles.indices where !order.contains(index) && handles[index].isDone {
        order.append(index)
    }
    let done = order.map { handles[$0] }
    let pending = handles.indices.filter { !order.contains($0) }.map { handles[$0] }
    return (done, pending)
}

/// What a child of ``wait(_:returnWhen:timeout:)``'s group reports.
private enum WaitEvent: Sendable {
    case finished(Int)
    case deadline
}

extension TaskHandle {
    /// True when the task finished by throwing something other than
    /// `CancellationError` (asyncio's "raised an exception", which excludes
    /// cancelled tasks).
    fileprivate var failedWithError: Bool {
        guard let error = try? self.error else { return false }
        return !(error is CancellationError)
    }
}
