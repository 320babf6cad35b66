#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore
import Foundation
import Parallelism
import Processes
import Threads

/// What a finished pool job gives back: its value, and the evidence of where
/// and when it ran — the worker's pid and the job's interval on
/// `CLOCK_MONOTONIC` (one clock for every process on Linux), so tests assert
/// overlap and placement instead of timing the parent.
public struct JobOutcome: Sendable, CustomStringConvertible {
    /// The job.
    public var job: PoolJob
    /// Its position in a ``ProcessPool/map(_:)`` or ``ProcessPool/mapUnordered(_:)`` input (0 for single jobs).
    public var index: Int
    /// What it returned.
    public var value: JobValue
    /// The worker process that ran it.
    public var workerPID: pid_t
    /// When it ran, measured inside the worker.
    public var interval: Interval<MonotonicInstant>
    /// The CPU time the job used in the worker (its thread's clock).
    public var cpu: Duration

    public var description: String { "\(job) = \(value) [pid \(workerPID), \(interval.end - interval.start)]" }
}

/// Why a pool job or the pool failed.
public enum ProcessPoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The job threw inside the worker; the worker lives on.
    case jobFailed(String)
    /// The worker died while running the job (crash, or killed from outside).
    /// The pool starts a replacement and keeps serving; only this job fails
    /// (Python's pool turns "broken" and fails every pending job instead).
    case workerDied(pid: pid_t, status: ProcessTermination)
    /// A worker's initializer failed at start-up.
    case initializerFailed(pid: pid_t, message: String)
    /// The worker could not be started, or broke the frame protocol.
    case workerFailed(String)
    /// The pool was shut down.
    case shutDown

    public var description: String {
        switch self {
        case .jobFailed(let message): "the job failed in its worker: \(message)"
        case .workerDied(let pid, let status): "worker \(pid) died during the job (\(status))"
        case .initializerFailed(let pid, let message): "the initializer failed in worker \(pid): \(message)"
        case .workerFailed(let why): "worker failure: \(why)"
        case .shutDown: "the process pool is shut down"
        }
    }
}

/// What a ``ProcessPool`` is doing: tests wait on it (``ProcessPool/waitUntil(_:)``) instead of polling.
public struct PoolStatus: Sendable, Equatable {
    /// The workers running a job right now.
    public var busyWorkers: Set<pid_t> = []
    /// Jobs finished (with a value or a job error).
    public var finished = 0
    /// Dead workers replaced by fresh ones (the dead one reaped first).
    public var replacements = 0
}

/// What ``ProcessPool/shutdown()`` does with jobs still running.
public enum PoolShutdownPolicy: Sendable {
    /// Kill their workers at once (the default: nothing outlives the scope).
    case killRunningJobs
    /// Wait for them to finish (Python's `shutdown(wait=True)`).
    case letRunningJobsFinish
}

/// A pool of long-lived worker processes: asyncio's `ProcessPoolExecutor`
/// and `multiprocessing.Pool`.
///
/// Workers are the package's `curriculum-worker` executable in its `serve`
/// mode, started eagerly through the one child-process runner (`posix_spawn`,
/// never `fork`). Jobs (``PoolJob``) go to them as length-prefixed JSON
/// frames on their standard input; results come back on standard output;
/// logs go to standard error. A worker runs one job at a time; jobs wait in
/// FIFO order for a free worker.
///
/// - Cancellation: a queued job is dropped; a running job cannot be
///   interrupted inside its worker, so its worker is killed (SIGKILL) and a
///   fresh one started (Python's pools can only cancel queued work).
/// - Failures: see ``ProcessPoolError``. A crashed worker is replaced.
/// - Lifetime: workers exit when their standard input closes — at
///   ``shutdown()``, or when this process dies — so none outlives the pool.
public final class ProcessPool: Sendable {
    /// The number of workers.
    public let size: Int
    private let executable: String
    private let initializer: WorkerInitializer?
    private let policy: PoolShutdownPolicy
    private let state = Locked(State())
    private let watched = Watched(PoolStatus())

    private struct State {
        var all: [PoolWorker] = []
        var idle: [PoolWorker] = []
        var waiters: [(id: UInt64, continuation: CheckedContinuation<PoolWorker, any Error>)] = []
        /// Waiters before this index have been served.
        var waitersHead = 0
        var cancelledWaiters: Set<UInt64> = []
        var nextID: UInt64 = 0
        var isShutDown = false
    }

    private init(size: Int, executable: String, initializer: WorkerInitializer?, policy: PoolShutdownPolicy) {
        self.size = size
        self.executable = executable
        self.initializer = initializer
        self.policy = policy
    }

    /// Starts `workers` workers and waits until each has run `initializer`.
    ///
    /// - Throws: ``ProcessPoolError/initializerFailed(pid:message:)`` (every
    ///   worker is stopped then), ``ProcessPoolError/workerFailed(_:)`` when
    ///   the worker executable is missing or does not greet.
    public static func start(
        workers: Int = ProcessInfo.processInfo.activeProcessorCount,
        initializer: WorkerInitializer? = nil,
        shutdownPolicy: PoolShutdownPolicy = .killRunningJobs,
        executable: String? = nil
    ) async throws -> ProcessPool {
        guard workers >= 1 else { throw ProcessPoolError.workerFailed("a pool needs at least 1 worker, not \(workers)") }
        let path: String
        do { path = try executable ?? WorkerExecutable.locate() } catch { throw ProcessPoolError.workerFailed("\(error)") }
        let pool = ProcessPool(size: workers, executable: path, initializer: initializer, policy: shutdownPolicy)
        do {
            let started = try await withThrowingTaskGroup(of: PoolWorker.self) { group in
                for _ in 0..<workers { group.addTask { try await pool.launchWorker() } }
                var started: [PoolWorker] = []
                do {
                    for try await w in group { started.append(w) }
                } catch {
                    for w in started { w.stop(kill: true) }
                    throw error
                }
                return started
            }
            pool.state.withLock { s in
                s.all = started
                s.idle = started
            }
        } catch {
            await pool.shutdown()
            throw error
        }
        return pool
    }

    /// The pids of the current workers (replacements included).
    public var workerPIDs: [pid_t] { state.withLock { $0.all.map(\.pid) } }

    /// How many crashed or killed workers were replaced so far.
    public var replacements: Int { watched.value.replacements }

    /// What the pool is doing now.
    public var status: PoolStatus { watched.value }

    /// Suspends until `condition` holds for the pool's status (checked on
    /// every change, no polling).
    public func waitUntil(_ condition: @escaping @Sendable (PoolStatus) -> Bool) async throws {
        try await watched.waitUntil(condition)
    }

    /// Runs `job` on a free worker and returns its outcome: `run_in_executor`
    /// / `Pool.apply`.
    public func run(_ job: PoolJob) async throws -> JobOutcome {
        try await run(job, index: 0)
    }

    func run(_ job: PoolJob, index: Int) async throws -> JobOutcome {
        let worker = try await acquire()
        watched.update { _ = $0.busyWorkers.insert(worker.pid) }
        let reply: PoolReply
        do {
            reply = try await worker.call(job, killOnCancel: policy == .killRunningJobs) { [self] in
                // Cancelled, but let finish: the worker is free once its unwanted reply is in.
                watched.update { _ = $0.busyWorkers.remove(worker.pid) }
                release(worker)
            }
        } catch is CancellationError {
            throw CancellationError()  // letRunningJobsFinish: the worker runs on; released when done
        } catch {
            // The worker is gone (died, or killed for our cancellation): replace it.
            watched.update { _ = $0.busyWorkers.remove(worker.pid) }
            replace(worker)
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        watched.update { s in
            s.busyWorkers.remove(worker.pid)
            s.finished += 1
        }
        release(worker)
        if let message = reply.error { throw ProcessPoolError.jobFailed(message) }
        return JobOutcome(
            job: job, index: index, value: reply.value ?? .int(0), workerPID: reply.pid,
            interval: Interval(start: MonotonicInstant(nanoseconds: reply.startNanoseconds),
                               end: MonotonicInstant(nanoseconds: reply.endNanoseconds)),
            cpu: reply.cpu)
    }

    /// Starts `job` and returns at once with a handle to its outcome:
    /// `Pool.apply_async`. Unstructured: prefer `async let` or a task group.
    public func submit(_ job: PoolJob) -> JobHandle {
        JobHandle(task: Task { try await self.run(job) })
    }

    /// Runs every job concurrently (at most ``size`` at a time, the rest
    /// queue) and yields the outcomes **in input order**: `Executor.map`.
    /// A finished job waits for the ones before it. The first failure ends
    /// the stream with that error; ending the iteration early cancels the rest.
    public func map(_ jobs: [PoolJob]) -> AsyncThrowingStream<JobOutcome, any Error> {
        stream(jobs, ordered: true)
    }

    /// Like ``map(_:)``, in **completion order** (`as_completed`); each
    /// outcome's ``JobOutcome/index`` says which input it answers.
    public func mapUnordered(_ jobs: [PoolJob]) -> AsyncThrowingStream<JobOutcome, any Error> {
        stream(jobs, ordered: false)
    }

    private func stream(_ jobs: [PoolJob], ordered: Bool) -> AsyncThrowingStream<JobOutcome, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: JobOutcome.self)
        let runner = Task {
            do {
                try await withThrowingTaskGroup(of: JobOutcome.self) { group in
                    for (i, job) in jobs.enumerated() { group.addTask { try await self.run(job, index: i) } }
                    var buffered: [Int: JobOutcome] = [:]
                    var next = 0
                    for try await outcome in group {
                        if !ordered {
                            continuation.yield(outcome)
                            continue
                        }
                        buffered[outcome.index] = outcome
                        while let ready = buffered.removeValue(forKey: next) {
                            continuation.yield(ready)
                            next += 1
                        }
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in runner.cancel() }
        return stream
    }

    /// Stops every worker: closes their standard input (they exit after their
    /// current job) and, under ``PoolShutdownPolicy/killRunningJobs``, kills
    /// those still running a job. Waiting jobs fail with
    /// ``ProcessPoolError/shutDown``. Returns once every worker has exited.
    public func shutdown() async {
        let (workers, idle, waiters) = state.withLock { s -> ([PoolWorker], [PoolWorker], [CheckedContinuation<PoolWorker, any Error>]) in
            s.isShutDown = true
            let w = s.waiters[s.waitersHead...].map(\.continuation)
            s.waiters = []
            s.waitersHead = 0
            return (s.all, s.idle, w)
        }
        for w in waiters { w.resume(throwing: ProcessPoolError.shutDown) }
        let idlePIDs = Set(idle.map(\.pid))
        for w in workers { w.stop(kill: policy == .killRunningJobs && !idlePIDs.contains(w.pid)) }
        for w in workers { await w.exited() }
    }

    // MARK: Workers

    private func launchWorker() async throws -> PoolWorker {
        var arguments = ["serve"]
        if let initializer {
            let json = String(decoding: try JSONEncoder().encode(initializer), as: UTF8.self)
            arguments += ["--initializer", json]
        }
        return try await PoolWorker.launch(executable: executable, arguments: arguments)
    }

    private func acquire() async throws -> PoolWorker {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<PoolWorker, any Error>) in
                let now: Result<PoolWorker, any Error>? = state.withLock { s in
                    if s.isShutDown { return .failure(ProcessPoolError.shutDown) }
                    if s.cancelledWaiters.remove(id) != nil { return .failure(CancellationError()) }
                    if let w = s.idle.popLast() { return .success(w) }
                    s.waiters.append((id, c))
                    return nil
                }
                if let now { c.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<PoolWorker, any Error>? in
                if let i = s.waiters[s.waitersHead...].firstIndex(where: { $0.id == id }) { return s.waiters.remove(at: i).continuation }
                s.cancelledWaiters.insert(id)
                return nil
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Hands `worker` to the first waiting job, or marks it idle.
    private func release(_ worker: PoolWorker) {
        let waiter = state.withLock { s -> CheckedContinuation<PoolWorker, any Error>? in
            if s.isShutDown { return nil }
            if s.waitersHead < s.waiters.count {
                // FIFO without shifting the array each time (10,000 queued jobs stay O(1) each).
                let w = s.waiters[s.waitersHead].continuation
                s.waitersHead += 1
                if s.waitersHead > 1024 && s.waitersHead * 2 > s.waiters.count {
                    s.waiters.removeFirst(s.waitersHead)
                    s.waitersHead = 0
                }
                return w
            }
            s.idle.append(worker)
            return nil
        }
        waiter?.resume(returning: worker)
    }

    /// Starts a worker in place of a dead one (in the background: the failed
    /// job's caller does not wait for it).
    private func replace(_ dead: PoolWorker) {
        dead.stop(kill: true)
        Task {
            await dead.exited()
            guard !state.withLock({ $0.isShutDown }) else { return }
            do {
                let fresh = try await launchWorker()
                let keep = state.withLock { s -> Bool in
                    s.all.removeAll { $0 === dead }
                    guard !s.isShutDown else { return false }
                    s.all.append(fresh)
                    return true
                }
                if keep {
                    watched.update { $0.replacements += 1 }
                    release(fresh)
                } else {
                    fresh.stop(kill: true)
                    await fresh.exited()
                }
            } catch {
                // Could not start a replacement: the pool has one worker fewer.
                state.withLock { $0.all.removeAll { $0 === dead } }
                logToStandardError("ProcessPool: no replacement for worker \(dead.pid): \(error)")
            }
        }
    }
}

/// Starts a ``ProcessPool``, passes it to `body`, and always shuts it down:
/// the `with ProcessPoolExecutor() as pool:` block.
@discardableResult
public func withProcessPool<T>(
    workers: Int = ProcessInfo.processInfo.activeProcessorCount,
    initializer: WorkerInitializer? = nil,
    shutdownPolicy: PoolShutdownPolicy = .killRunningJobs,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (ProcessPool) async throws -> T
) async throws -> T {
    let pool = try await ProcessPool.start(workers: workers, initializer: initializer, shutdownPolicy: shutdownPolicy)
    do {
        let value = try await body(pool)
        await pool.shutdown()
        return value
    } catch {
        await pool.shutdown()
        throw error
    }
}

/// A submitted job: `AsyncResult`. Cancelling it cancels the job (killing
/// its worker if it is running).
public struct JobHandle: Sendable {
    let task: Task<JobOutcome, any Error>
    /// Waits for the outcome (`get()`).
    public var outcome: JobOutcome { get async throws { try await task.value } }
    /// Cancels the job.
    public func cancel() { task.cancel() }
}

// MARK: - One worker

/// How long a new worker may take to run its initializer and greet.
let greetingTimeout: Duration = .seconds(10)

/// One `curriculum-worker serve` process: a pipe each way and a thread that
/// reads its reply frames. Used by one job at a time (the pool guarantees it).
final class PoolWorker: Sendable {
    let process: ChildProcess
    var pid: pid_t { process.pid }
    private let inbox = Locked(Inbox())
    private let nextRequest = Locked<UInt64>(0)

    private struct Inbox {
        var waiting: CheckedContinuation<PoolReply, any Error>?
        var early: Result<PoolReply, ProcessPoolError>?
        var ended: ProcessPoolError?
        /// The next reply is unwanted (its caller was cancelled): drop it, then run this.
        var discard: (@Sendable () -> Void)?
        var cancelledBeforeWaiting = false
    }

    /// The caller of the current job was cancelled but the job runs on:
    /// wake the caller now, drop the reply when it comes, then run `freed`.
    private func abandonReply(then freed: @escaping @Sendable () -> Void) {
        let (waiter, early) = inbox.withLock { box -> (CheckedContinuation<PoolReply, any Error>?, Bool) in
            if box.early != nil {  // the reply is already here: drop it now
                box.early = nil
                return (nil, true)
            }
            box.discard = freed
            if let w = box.waiting {
                box.waiting = nil
                return (w, false)
            }
            box.cancelledBeforeWaiting = true
            return (nil, false)
        }
        waiter?.resume(throwing: CancellationError())
        if early { freed() }
    }

    private init(process: ChildProcess) { self.process = process }

    static func launch(executable: String, arguments: [String]) async throws -> PoolWorker {
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(executable, arguments: arguments, environment: ChildProcess.environmentWithoutBacktracer(),
                                           standardInput: .pipe, standardOutput: .pipe, standardError: .inherit)
        } catch {
            throw ProcessPoolError.workerFailed("\(error)")
        }
        let worker = PoolWorker(process: child)
        _ = spawnThread(name: "pool-reader") { worker.readReplies() }
        // The greeting: the initializer ran (or failed). A program that never
        // greets (not a pool worker) is killed after `greetingTimeout`.
        let greeted = Locked<Bool?>(nil)  // nil: waiting; true: greeted; false: gave up
        let watchdog = Task.detached {
            try? await Task.sleep(for: greetingTimeout)
            guard !Task.isCancelled else { return }
            if greeted.withLock({ g -> Bool in
                if g == nil { g = false; return true }
                return false
            }) { child.kill() }
        }
        let hello: PoolReply
        do {
            hello = try await worker.nextReply()
            greeted.withLock { if $0 == nil { $0 = true } }
            watchdog.cancel()
        } catch {
            watchdog.cancel()
            worker.stop(kill: true)
            await worker.exited()
            if greeted.withLock({ $0 }) == false {
                throw ProcessPoolError.workerFailed("\(executable) (pid \(child.pid)) did not greet within \(greetingTimeout): not a pool worker?")
            }
            throw error
        }
        if let message = hello.error {
            worker.stop(kill: true)
            await worker.exited()
            throw ProcessPoolError.initializerFailed(pid: child.pid, message: message)
        }
        return worker
    }

    /// Sends `job` and waits for its reply. Cancellation kills the worker,
    /// or with `killOnCancel` false ends the wait at once with
    /// `CancellationError` and lets the job finish: its reply is dropped and
    /// `freed` runs then.
    func call(_ job: PoolJob, killOnCancel: Bool = true, freed: @escaping @Sendable () -> Void = {}) async throws -> PoolReply {
        let id = nextRequest.withLock { n -> UInt64 in
            n += 1
            return n
        }
        let frame: [UInt8]
        do { frame = try Frame.encode(PoolRequest(id: id, job: job)) } catch { throw ProcessPoolError.workerFailed("cannot encode \(job): \(error)") }
        return try await withTaskCancellationHandler {
            guard !Task.isCancelled else {
                process.kill()
                throw ProcessPoolError.workerDied(pid: pid, status: .signalled(SIGKILL))
            }
            do {
                try process.standardInput!.write(frame)
            } catch {
                throw await died()
            }
            let reply = try await nextReply()
            guard reply.id == id else { throw ProcessPoolError.workerFailed("worker \(pid) answered request \(reply.id), not \(id)") }
            return reply
        } onCancel: {
            if killOnCancel {
                process.kill()
            } else {
                abandonReply(then: freed)
            }
        }
    }

    /// The next frame from the reader thread.
    private func nextReply() async throws -> PoolReply {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<PoolReply, any Error>) in
            let ready: Result<PoolReply, ProcessPoolError>? = inbox.withLock { box in
                if let early = box.early {
                    box.early = nil
                    return early
                }
                if let ended = box.ended { return .failure(ended) }
                if box.cancelledBeforeWaiting {
                    box.cancelledBeforeWaiting = false
                    return .failure(.shutDown)  // replaced below by CancellationError
                }
                box.waiting = c
                return nil
            }
            if let ready {
                if case .failure(.shutDown) = ready { c.resume(throwing: CancellationError()) } else { c.resume(with: ready) }
            }
        }
    }

    /// The reader thread: one frame after another until end of file.
    private func readReplies() {
        let reader = process.standardOutput!
        while true {
            let result: Result<PoolReply, ProcessPoolError>
            do {
                let header = try reader.read(exactly: 4)
                if header.isEmpty { break }
                let n = Frame.length(header)
                guard header.count == 4, n <= Frame.maxPayload else {
                    result = .failure(.workerFailed("worker \(pid) sent a bad frame header"))
                    deliver(result, final: true)
                    process.kill()
                    return
                }
                let payload = try reader.read(exactly: n)
                guard payload.count == n else { break }  // cut short: the worker died mid-frame
                result = .success(try Frame.decode(PoolReply.self, payload))
            } catch {
                deliver(.failure(.workerFailed("worker \(pid) sent an unreadable frame: \(error)")), final: true)
                process.kill()
                return
            }
            deliver(result, final: false)
        }
        // End of file: the worker exited (or was killed). Report how.
        let status = process.waitForExit(timeout: .seconds(10))
        if status == nil { process.kill() }
        deliver(.failure(.workerDied(pid: pid, status: status ?? process.waitForExit() ?? .signalled(SIGKILL))), final: true)
    }

    private func deliver(_ result: Result<PoolReply, ProcessPoolError>, final: Bool) {
        if case .success = result, let freed = inbox.withLock({ box -> (@Sendable () -> Void)? in
            defer { box.discard = nil }
            return box.discard
        }) {
            freed()  // the reply of a job whose caller was cancelled: dropped
            return
        }
        let waiter = inbox.withLock { box -> CheckedContinuation<PoolReply, any Error>? in
            if final, case .failure(let e) = result { box.ended = e }
            if let w = box.waiting {
                box.waiting = nil
                return w
            }
            if case .success = result { box.early = result }
            return nil
        }
        waiter?.resume(with: result.mapError { $0 as any Error })
    }

    private func died() async -> ProcessPoolError {
        await exited()
        return .workerDied(pid: pid, status: process.exitStatus ?? .signalled(SIGKILL))
    }

    /// Closes the worker's input (it exits after its current job); `kill` also kills it.
    func stop(kill: Bool) {
        process.standardInput?.close()
        if kill { process.kill() }
    }

    /// Returns once the worker process has exited and been reaped (also in
    /// a cancelled task: shutting down must not leave a worker behind).
    func exited() async {
        let process = process
        _ = try? await Task.detached { try await process.termination }.value
    }
}
