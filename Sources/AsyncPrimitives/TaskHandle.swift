/// A handle on an unstructured task that can be queried like an `asyncio.Task`.
///
/// Swift's `Task` cannot say whether it has finished without awaiting it, and
/// its `isCancelled` means "cancellation was requested", not "ended by
/// cancellation". A `TaskHandle` records the task's outcome in a ``Future``,
/// which gives the asyncio queries (`done()`, `cancelled()`, `result()`,
/// `exception()`) and lets many waiters — ``wait(_:returnWhen:timeout:)``,
/// ``shield(_:)`` — wait on it *cancellably*.
///
/// Create one with ``createTask(name:priority:_:)``. Like an asyncio task (and
/// unlike a child of a task group) it keeps running when its creator's scope
/// ends: cancel or await every handle you create.
public final class TaskHandle<Success: Sendable>: Sendable {
    /// The underlying unstructured task.
    public let task: Task<Void, Never>
    /// The task's outcome, set exactly once when its operation returns or throws.
    public let future: Future<Success>
    /// A label for logs and messages (asyncio's task name).
    public let name: String?

    fileprivate init(name: String?, priority: TaskPriority?, operation: sending @escaping @isolated(any) () async throws -> Success) {
        let future = Future<Success>()
        self.future = future
        self.name = name
        self.task = Task(priority: priority) {
            let result: Result<Success, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            try? future.complete(with: result)
        }
    }

    /// True once the operation has returned or thrown (`Task.done()`).
    public var isDone: Bool { future.isDone }

    /// True if the task *ended* by cancellation: it finished by throwing
    /// `CancellationError` (`Task.cancelled()`).
    ///
    /// A cancelled task whose operation ignored the request and returned
    /// normally is done but not cancelled — compare ``cancellationRequested``.
    public var isCancelled: Bool {
        guard let outcome = try? future.outcome(), case .failure(let e) = outcome else { return false }
        return e is CancellationError
    }

    /// True once ``cancel()`` was called (Swift's `Task.isCancelled`).
    public var cancellationRequested: Bool { task.isCancelled }

    /// Requests cancellation (`Task.cancel()`): sets the task's cancellation
    /// flag; its next cancellation-aware suspension throws `CancellationError`.
    /// Returns at once, while the task may still be running on another thread.
    public func cancel() { task.cancel() }

    /// The result without waiting (`Task.result()`).
    /// - Throws: ``FutureError/notReady`` while running, or the task's error.
    public func result() throws -> Success { try future.result() }

    /// The task's error if it failed, `nil` if it succeeded (`Task.exception()`).
    /// - Throws: ``FutureError/notReady`` while running.
    public var error: (any Error)? {
        get throws(FutureError) {
            if case .failure(let e) = try future.outcome() { return e }
            return nil
        }
    }

    /// Waits for the task and returns its value or throws its error:
    /// `await task` in asyncio.
    ///
    /// Cancellation: like asyncio, cancelling the *waiter* cancels the task
    /// (the request is forwarded) and keeps waiting until the task has
    /// actually finished, so the waiter sees the task's real outcome
    /// (usually `CancellationError`). Use ``shield(_:)`` to stop waiting
    /// without cancelling the task.
    public var value: Success {
        get async throws {
            try await withTaskCancellationHandler {
                try await future.valueIgnoringCancellation()
            } onCancel: {
                task.cancel()
            }
        }
    }
}

/// Starts `operation` as an unstructured task and returns its handle:
/// `asyncio.create_task`.
///
/// The task starts at once, on the global executor (or the creating actor,
/// whose isolation it inherits) and, unlike an asyncio task, may run in
/// parallel with its creator on another thread.
///
/// - Parameters:
///   - name: a label for messages (asyncio's `name=`).
///   - priority: the task's priority.
///   - operation: the work. Its outcome is recorded in the handle's future.
public func createTask<Success: Sendable>(
    name: String? = nil,
    priority: TaskPriority? = nil,
    _ operation: sending @escaping @isolated(any) () async throws -> Success
) -> TaskHandle<Success> {
    TaskHandle(name: name, priority: priority, operation: operation)
}
