import NIOCore

/// A `TaskExecutor` that runs every job of the tasks preferring it on one
/// SwiftNIO event loop: the thread that also does that loop's I/O.
///
/// A task that serves one channel from Swift concurrency (say a
/// `NIOAsyncChannel` connection handler) normally runs on the cooperative
/// pool, so every read and every write crosses threads twice: the loop wakes
/// a pool thread with the bytes, the pool thread hands the write back to the
/// loop. Started with this executor as its preference
/// (`group.addTask(executorPreference: EventLoopTaskExecutor(channel.eventLoop))`)
/// the task runs where its channel's events happen, as an asyncio task runs
/// on its loop: no thread wake-ups, and NIO's on-the-loop fast paths apply.
///
/// The usual event-loop rule applies: a job must not block, or it stalls
/// every channel on that loop (asyncio's rule, for the same reason).
///
/// Unlike ``LoopExecutor`` it owns no thread and keeps no statistics: it is
/// the thinnest adapter, for production paths.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop every job runs on.
    public let eventLoop: any EventLoop

    /// Runs jobs on `eventLoop`.
    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}
