import AsyncPrimitives
import CurriculumCore

/// Concurrency behaviours that Swift has changed, or is changing, each
/// observed on the running toolchain. The `Toolchain` tests pin what they
/// return; `curriculum-report` prints it.
public enum Probes {
    /// The compiler that built this module, from `#if compiler` (the
    /// language mode is separate: ``NonisolatedPlacement/languageMode``).
    public static var compiler: String {
        #if compiler(>=6.5)
        "6.5 or newer"
        #elseif compiler(>=6.4)
        "6.4"
        #elseif compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #else
        "older than 6.2"
        #endif
    }

    // MARK: Task start order (SE-0304, SE-0472)

    /// Inside an actor method: `Task { … }` (which inherits the actor) and
    /// the line after it — which ran first. The task is enqueued on the
    /// busy actor, so the rest of the method runs first: asyncio's
    /// `create_task`, which also only schedules (listing 2.8).
    public static func taskStartOrder() async -> [String] { await Recorder().taskThenLine() }

    /// The same with `Task.immediate` (SE-0472, Swift 6.2): the body runs
    /// synchronously on the caller until its first suspension, before the
    /// line after it. `nil` where the toolchain has no `Task.immediate`.
    public static func immediateTaskStartOrder() async -> [String]? {
        #if compiler(>=6.2)
        await Recorder().immediateTaskThenLine()
        #else
        nil
        #endif
    }

    // MARK: Task executor preference (SE-0417, Swift 6.0)

    public struct ExecutorPreference: Sendable, Equatable {
        public var body: Bool
        public var asyncLet: Bool
        public var groupChild: Bool
        public var unstructuredTask: Bool
        public var taskWithPreference: Bool
        public var detached: Bool
    }

    /// Which work runs on a ``LoopExecutor``'s thread when the body prefers
    /// it (`withTaskExecutorPreference`, what `LoopExecutor.run` does):
    /// structured children inherit the preference, unstructured tasks do
    /// not unless created with `Task(executorPreference:)`.
    public static func executorPreference() async throws -> ExecutorPreference {
        try await withLoopExecutor { loop in
            try await loop.run {
                let body = loop.inLoop
                async let child = loop.inLoop
                let groupChild = await withTaskGroup(of: Bool.self) { group in
                    group.addTask { loop.inLoop }
                    return await group.next() ?? false
                }
                let unstructured = await Task { loop.inLoop }.value
                let preferring = await Task(executorPreference: loop) { loop.inLoop }.value
                let detached = await Task.detached { loop.inLoop }.value
                return ExecutorPreference(
                    body: body, asyncLet: await child, groupChild: groupChild,
                    unstructuredTask: unstructured, taskWithPreference: preferring, detached: detached)
            }
        }
    }

    // MARK: Task-local values (SE-0311)

    @TaskLocal static var tag: String?

    public struct TaskLocalInheritance: Sendable, Equatable {
        public var asyncLet: String?
        public var groupChild: String?
        public var unstructuredTask: String?
        public var detached: String?
    }

    /// A task-local value bound around each kind of new task: who sees it.
    public static func taskLocalInheritance() async -> TaskLocalInheritance {
        await $tag.withValue("bound") {
            async let child = Self.tag
            let groupChild = await withTaskGroup(of: String?.self) { group in
                group.addTask { Self.tag }
                return await group.next() ?? nil
            }
            let unstructured = await Task { Self.tag }.value
            let detached = await Task.detached { Self.tag }.value
            return TaskLocalInheritance(asyncLet: await child, groupChild: groupChild, unstructuredTask: unstructured, detached: detached)
        }
    }

    // MARK: Cancellation (SE-0304)

    /// `cancel()` on a task that has already finished: its `isCancelled`
    /// afterwards, and its value.
    public static func cancelFinishedTask() async -> (isCancelled: Bool, value: Int) {
        let task = Task { 42 }
        _ = await task.value
        task.cancel()
        return (task.isCancelled, await task.value)
    }

    /// `withTaskCancellationHandler` entered by a task that is already
    /// cancelled: the order in which the handler and the operation ran.
    public static func cancellationHandlerWhenAlreadyCancelled() async -> [String] {
        let log = Locked<[String]>([])
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await withTaskCancellationHandler {
                log.withLock { $0.append("operation") }
            } onCancel: {
                log.withLock { $0.append("onCancel") }
            }
        }
        await task.value
        return log.withLock { $0 }
    }

    // MARK: Cancellation shields (SE-0504)

    /// Whether this toolchain's standard library has `withTaskCancellationShield`.
    public static var hasCancellationShields: Bool {
        #if compiler(>=6.4)
        true
        #else
        false
        #endif
    }

    #if compiler(>=6.4)
    /// Inside a shield, a cancelled task reads `Task.isCancelled == false`;
    /// the task's own flag stays set (SE-0504).
    public static func cancellationShield() async -> (insideShield: Bool, hasActiveShield: Bool, afterShield: Bool) {
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            let (inside, active) = await withTaskCancellationShield { (Task.isCancelled, Task.hasActiveCancellationShield) }
            return (inside, active, Task.isCancelled)
        }
        return await task.value
    }
    #endif
}

/// An actor with a log, for the start-order probes.
private actor Recorder {
    var log: [String] = []

    func append(_ entry: String) { log.append(entry) }

    func taskThenLine() async -> [String] {
        let task = Task { self.append("task body") }
        append("line after")
        await task.value
        return log
    }

    #if compiler(>=6.2)
    func immediateTaskThenLine() async -> [String] {
        let task = Task.immediate { self.append("task body") }
        append("line after")
        await task.value
        return log
    }
    #endif
}
