#if canImport(Glibc)
import Glibc
#endif
import AsyncPrimitives
import CurriculumCore
import DequeModule
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
    /// Jobs sent to workers and not answered yet: the running ones, and those
    /// sent ahead to wait inside a busy worker.
    public var inFlight = 0
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
/// never `fork`). Jobs (``PoolJob``) go to them as length-prefixed binary
/// frames on their standard input; results come back on standard output;
/// logs go to standard error. A worker runs one job at a time.
///
/// - Dispatch: a job goes to the worker with the fewest jobs in flight, so
///   while a worker is idle no job waits behind another. When every worker
///   is busy, up to ``pipelineDepth`` jobs are sent ahead to each (they wait
///   in the worker, and the next starts without a round trip to the pool);
///   the rest wait here in FIFO order. When a worker falls idle while jobs
///   wait inside another (behind a long job), the pool takes the last of
///   them back (a revoke) and gives it to the idle one. Python's executor
///   pipelines the same way, through one shared queue.
/// - Cancellation: a job waiting here or inside a worker is dropped; a
///   running job cannot be interrupted inside its worker, so its worker is
///   killed (SIGKILL) and a fresh one started (Python's pools can only
///   cancel queued work). Jobs that were waiting inside a killed or crashed
///   worker never started: they go to the others.
/// - Failures: see ``ProcessPoolError``. A crashed worker is replaced.
/// - Lifetime: workers exit when their standard input closes — at
///   ``shutdown()``, or when this process dies — so none outlives the pool.
public final class ProcessPool: Sendable {
    /// The number of workers.
    public let size: Int
    /// How many jobs the pool keeps in flight per worker at most.
    public static let pipelineDepth = 32
    private let executable: String
    private let initializer: WorkerInitializer?
    private let policy: PoolShutdownPolicy
    private let state = Locked(State())
    private let watched = Watched(PoolStatus())

    /// A job the pool holds: waiting here, or sent to a worker.
    private struct Pending {
        /// Its frame, encoded once (a job taken back is sent again as it is).
        let frame: [UInt8]
        /// Where its answer goes (its handle's); nil once it is answered (or
        /// its caller left: a cancelled job that runs on).
        var caller: Future<PoolReply>?
        /// The worker it was sent to.
        var worker: ObjectIdentifier?
        var cancelled = false
        /// A revoke for it is on its way to its worker.
        var revoking = false
        /// That revoke is to move it to an idle worker (counted in ``State/rebalancing``).
        var rebalancing = false
    }

    /// A live worker and the jobs sent to it, oldest (the running one) first.
    private struct Slot {
        let worker: PoolWorker
        var inFlight: [UInt64] = []
    }

    private struct State {
        var slots: [ObjectIdentifier: Slot] = [:]
        /// The order workers are tried in (stable, so ties go to the same one).
        var order: [ObjectIdentifier] = []
        var jobs: [UInt64: Pending] = [:]
        /// Jobs waiting for a worker, oldest first (taken-back ones go to the front).
        /// Ids of jobs cancelled while waiting stay here and are skipped.
        var queue = Deque<UInt64>()
        /// Revokes on their way to move a job to an idle worker.
        var rebalancing = 0
        var nextID: UInt64 = 0
        var isShutDown = false
        /// Workers ever adopted, the dead ones too: shutdown waits for every one to be reaped.
        var all: [PoolWorker] = []
    }

    /// What to do once the state lock is released.
    private struct Actions {
        /// Workers whose outbox gained frames.
        var flush: [ObjectIdentifier: PoolWorker] = [:]
        var resume: [(Future<PoolReply>, Result<PoolReply, any Error>)] = []
        var kill: [PoolWorker] = []
        var replace: [PoolWorker] = []

        mutating func send(_ frame: [UInt8], to slot: Slot) {
            slot.worker.enqueue(frame)
            flush[ObjectIdentifier(slot.worker)] = slot.worker
        }
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
                    for w in started { await w.exited() }
                    throw error
                }
                return started
            }
            for worker in started { pool.adopt(worker) }
        } catch {
            await pool.shutdown()
            throw error
        }
        return pool
    }

    /// The pids of the current workers (replacements included).
    public var workerPIDs: [pid_t] { state.withLock { s in s.order.compactMap { s.slots[$0]?.worker.pid } } }

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
        try Task.checkCancellation()  // a caller cancelled already sends nothing
        let handle = submit(job)
        // Cancelling the caller cancels the job; the answer is still the pool's (it comes once the job
        // is dropped, or its worker killed, as the shutdown policy says).
        let reply = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<PoolReply, any Error>) in
                handle.answer.onComplete { c.resume(with: $0) }
            }
        } onCancel: {
            handle.cancel()
        }
        return try Self.outcome(of: job, index: index, reply: reply)
    }

    /// Queues `job` at once and returns a handle to its outcome:
    /// `executor.submit` / `Pool.apply_async`. Jobs are queued in the order
    /// of the calls (a job submitted first is sent first), as Python's
    /// executor queues its work items. Unstructured: prefer `async let` or a
    /// task group.
    public func submit(_ job: PoolJob) -> JobHandle {
        let answer = Future<PoolReply>()
        let handle = JobHandle(pool: self, id: state.withLock { s in s.nextID += 1; return s.nextID }, job: job, answer: answer)
        var actions = Actions()
        do {
            let frame = try Self.frame(of: job, id: handle.id)
            state.withLock { s in
                if s.isShutDown {
                    actions.resume.append((answer, .failure(ProcessPoolError.shutDown)))
                } else {
                    enqueue(handle.id, frame: frame, caller: answer, &s, &actions)
                }
            }
        } catch {
            actions.resume.append((answer, .failure(error)))
        }
        perform(actions)
        return handle
    }

    /// Job `id`'s frame, or the error for a job too large for one.
    private static func frame(of job: PoolJob, id: UInt64) throws -> [UInt8] {
        let frame = ToWorker.job(id: id, job).frame()
        guard frame.count - 4 <= Wire.maxFrame else {
            throw ProcessPoolError.workerFailed("a job of \(frame.count - 4) bytes does not fit in a frame (at most \(Wire.maxFrame))")
        }
        return frame
    }

    /// Registers job `id` behind every waiting one and sends what can go.
    private func enqueue(_ id: UInt64, frame: [UInt8], caller: Future<PoolReply>, _ s: inout State, _ actions: inout Actions) {
        s.jobs[id] = Pending(frame: frame, caller: caller)
        s.queue.append(id)
        dispatch(&s, &actions)
    }

    /// A worker's reply to `job` as its outcome, or the job's error.
    fileprivate static func outcome(of job: PoolJob, index: Int, reply: PoolReply) throws -> JobOutcome {
        if let message = reply.error { throw ProcessPoolError.jobFailed(message) }
        return JobOutcome(
            job: job, index: index, value: reply.value ?? .int(0), workerPID: reply.pid,
            interval: Interval(start: MonotonicInstant(nanoseconds: reply.startNanoseconds),
                               end: MonotonicInstant(nanoseconds: reply.endNanoseconds)),
            cpu: reply.cpu)
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

    /// Stops every worker: closes their standard input (they exit after the
    /// jobs they hold) and, under ``PoolShutdownPolicy/killRunningJobs``,
    /// kills those still running a job. Jobs waiting here fail with
    /// ``ProcessPoolError/shutDown``. Returns once every worker has exited.
    public func shutdown() async {
        var actions = Actions()
        let workers = state.withLock { s -> [PoolWorker] in
            s.isShutDown = true
            for id in s.queue {
                if let c = s.jobs.removeValue(forKey: id)?.caller { actions.resume.append((c, .failure(ProcessPoolError.shutDown))) }
            }
            s.queue = []
            for slot in s.slots.values where policy == .killRunningJobs && !slot.inFlight.isEmpty { actions.kill.append(slot.worker) }
            return s.all
        }
        perform(actions)
        for w in workers { w.stop(kill: false) }
        for w in workers { await w.exited() }
    }

    // MARK: Dispatch (all under the state lock)

    /// Sends waiting jobs to the least-loaded workers (up to
    /// ``pipelineDepth`` each), then takes a job back from a worker that
    /// holds several for each worker left idle.
    private func dispatch(_ s: inout State, _ actions: inout Actions) {
        while !s.queue.isEmpty {
            guard let target = s.order.min(by: { s.slots[$0]!.inFlight.count < s.slots[$1]!.inFlight.count }),
                  s.slots[target]!.inFlight.count < Self.pipelineDepth else { break }
            let id = s.queue.removeFirst()
            guard var pending = s.jobs[id] else { continue }  // cancelled while waiting
            pending.worker = target
            s.jobs[id] = pending
            s.slots[target]!.inFlight.append(id)
            actions.send(pending.frame, to: s.slots[target]!)
        }
        if s.queue.isEmpty {
            // One job taken back per idle worker (counting revokes already on their way).
            let idle = s.order.count { s.slots[$0]!.inFlight.isEmpty }
            while s.rebalancing < idle, rebalance(&s, &actions) {}
        }
        publish(s)
    }

    /// Revokes the newest job still waiting inside the worker that holds
    /// the most (it goes to an idle worker once the revoke is confirmed).
    private func rebalance(_ s: inout State, _ actions: inout Actions) -> Bool {
        let candidates = s.order.compactMap { w -> (ObjectIdentifier, UInt64, Int)? in
            let inFlight = s.slots[w]!.inFlight
            // The head is running (or about to): only the ones behind it can be taken back.
            guard let id = inFlight.dropFirst().last(where: { !(s.jobs[$0]?.revoking ?? true) }) else { return nil }
            return (w, id, inFlight.count)
        }
        guard let (w, id, _) = candidates.max(by: { $0.2 < $1.2 }) else { return false }
        s.jobs[id]!.revoking = true
        s.jobs[id]!.rebalancing = true
        s.rebalancing += 1
        actions.send(ToWorker.revoke(id: id).frame(), to: s.slots[w]!)
        return true
    }

    /// Job `id`'s rebalancing revoke is settled (answered, or its job ended first).
    private func settleRebalancing(_ id: UInt64, _ s: inout State) {
        guard s.jobs[id]?.rebalancing == true else { return }
        s.jobs[id]!.rebalancing = false
        s.rebalancing -= 1
    }

    /// The status tests wait on: busy workers and jobs in flight (finished jobs are counted as they come).
    private func publish(_ s: State) {
        let busy = Set(s.slots.values.filter { !$0.inFlight.isEmpty }.map(\.worker.pid))
        let inFlight = s.slots.values.reduce(0) { $0 + $1.inFlight.count }
        watched.update { status in
            if status.busyWorkers != busy { status.busyWorkers = busy }
            status.inFlight = inFlight
        }
    }

    private func perform(_ actions: Actions) {
        for (answer, result) in actions.resume { try? answer.complete(with: result) }  // each job is answered once
        for worker in actions.flush.values { worker.flush() }
        for worker in actions.kill { worker.stop(kill: true) }
        for dead in actions.replace { replace(dead) }
    }

    // MARK: Events

    /// Cancels job `id` wherever it is (see the type's notes).
    fileprivate func cancel(_ id: UInt64) {
        var actions = Actions()
        state.withLock { s in
            guard var pending = s.jobs[id] else { return }  // answered already (jobs register as they are submitted)
            guard !pending.cancelled else { return }
            pending.cancelled = true
            s.jobs[id] = pending
            guard let w = pending.worker, let slot = s.slots[w] else {
                // Still waiting here: dropped (dispatch skips its id).
                s.jobs[id] = nil
                if let c = pending.caller { actions.resume.append((c, .failure(CancellationError()))) }
                return
            }
            if slot.inFlight.first == id {
                cancelRunning(id, on: slot, &s, &actions)
            } else if !pending.revoking {
                // Waiting inside the worker: take it back (it may start meanwhile; the answer says).
                s.jobs[id]!.revoking = true
                actions.send(ToWorker.revoke(id: id).frame(), to: slot)
            }
        }
        perform(actions)
    }

    /// Job `id` runs on `slot`'s worker and its caller was cancelled: kill
    /// the worker (its death fails the job with `CancellationError`), or let
    /// the job finish and answer the caller now.
    private func cancelRunning(_ id: UInt64, on slot: Slot, _ s: inout State, _ actions: inout Actions) {
        if policy == .killRunningJobs {
            actions.kill.append(slot.worker)
        } else if let c = s.jobs[id]?.caller {
            s.jobs[id]!.caller = nil
            actions.resume.append((c, .failure(CancellationError())))
        }
    }

    /// Messages from worker `w`'s reader thread, a batch at a time.
    fileprivate func received(_ messages: [FromWorker], from worker: PoolWorker) {
        let w = ObjectIdentifier(worker)
        var actions = Actions()
        var finished = 0
        state.withLock { s in
            for message in messages {
                switch message {
                case .hello:
                    break  // only at start-up, handled by the worker
                case .result(let reply):
                    s.slots[w]?.inFlight.removeAll { $0 == reply.id }
                    settleRebalancing(reply.id, &s)
                    guard let pending = s.jobs.removeValue(forKey: reply.id) else { continue }
                    if let c = pending.caller {
                        actions.resume.append((c, .success(reply)))
                        finished += 1
                    }
                case .revoked(let id, let removed):
                    settleRebalancing(id, &s)
                    guard var pending = s.jobs[id] else { continue }  // answered meanwhile
                    pending.revoking = false
                    if removed {
                        s.slots[w]?.inFlight.removeAll { $0 == id }
                        pending.worker = nil
                        if pending.cancelled {
                            s.jobs[id] = nil
                            if let c = pending.caller { actions.resume.append((c, .failure(CancellationError()))) }
                            continue
                        }
                        s.jobs[id] = pending
                        s.queue.prepend(id)  // older than anything waiting
                    } else {
                        s.jobs[id] = pending
                        // Already taken by the worker: if it was cancelled, it is running now.
                        if pending.cancelled, let slot = s.slots[w] { cancelRunning(id, on: slot, &s, &actions) }
                    }
                }
            }
            dispatch(&s, &actions)
        }
        if finished > 0 { watched.update { $0.finished += finished } }
        perform(actions)
    }

    /// Worker `worker` exited (crashed, killed, or closed its output): the
    /// job it was running fails; the ones waiting inside it go to the others.
    fileprivate func died(_ worker: PoolWorker, status: ProcessTermination, why: ProcessPoolError?) {
        let w = ObjectIdentifier(worker)
        var actions = Actions()
        state.withLock { s in
            guard let slot = s.slots.removeValue(forKey: w) else { return }
            s.order.removeAll { $0 == w }
            var neverStarted: [UInt64] = []
            for (k, id) in slot.inFlight.enumerated() {
                settleRebalancing(id, &s)
                guard var pending = s.jobs[id] else { continue }
                if k == 0 || s.isShutDown || pending.cancelled {
                    s.jobs[id] = nil
                    let error: any Error = pending.cancelled ? CancellationError()
                        : s.isShutDown && k > 0 ? ProcessPoolError.shutDown
                        : why ?? ProcessPoolError.workerDied(pid: worker.pid, status: status)
                    if let c = pending.caller { actions.resume.append((c, .failure(error))) }
                } else {
                    pending.worker = nil
                    pending.revoking = false
                    s.jobs[id] = pending
                    neverStarted.append(id)
                }
            }
            s.queue.insert(contentsOf: neverStarted, at: 0)  // another worker runs them, before newer jobs
            if !s.isShutDown { actions.replace.append(worker) }
            dispatch(&s, &actions)
        }
        perform(actions)
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

    /// Makes a greeted worker part of the pool: its messages come here from now on.
    /// A replacement is counted before it takes a job (a test that saw its
    /// jobs answered finds it counted, and finds it among ``workerPIDs``).
    private func adopt(_ worker: PoolWorker, replacing: Bool = false) {
        var actions = Actions()
        let adopted = state.withLock { s -> Bool in
            guard !s.isShutDown else { return false }
            let w = ObjectIdentifier(worker)
            s.slots[w] = Slot(worker: worker)
            s.order.append(w)
            s.all.append(worker)
            if replacing { watched.update { $0.replacements += 1 } }
            dispatch(&s, &actions)
            return true
        }
        guard adopted else {
            worker.stop(kill: true)
            return
        }
        worker.deliver { [weak self] event in
            switch event {
            case .messages(let messages): self?.received(messages, from: worker)
            case .ended(let status, let why): self?.died(worker, status: status, why: why)
            }
        }
        perform(actions)
    }

    /// Starts a worker in place of a dead one (in the background: the failed
    /// job's caller does not wait for it).
    private func replace(_ dead: PoolWorker) {
        Task {
            await dead.exited()
            guard !state.withLock({ $0.isShutDown }) else { return }
            do {
                let fresh = try await launchWorker()
                if state.withLock({ $0.isShutDown }) {
                    fresh.stop(kill: true)
                    await fresh.exited()
                    return
                }
                adopt(fresh, replacing: true)
            } catch {
                // Could not start a replacement: the pool has one worker fewer.
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
    let pool: ProcessPool
    let id: UInt64
    let job: PoolJob
    let answer: Future<PoolReply>
    /// Waits for the outcome (`get()`). Cancelling the *waiter* throws
    /// `CancellationError` in it alone; the job goes on (``cancel()`` stops it).
    public var outcome: JobOutcome { get async throws { try ProcessPool.outcome(of: job, index: 0, reply: try await answer.value) } }
    /// Cancels the job: dropped if it has not started, stopped if it runs
    /// (as the pool's shutdown policy says); its outcome is then `CancellationError`.
    public func cancel() { pool.cancel(id) }
}

// MARK: - One worker

/// How long a new worker may take to run its initializer and greet.
let greetingTimeout: Duration = .seconds(10)

/// One `curriculum-worker serve` process: a pipe each way, an outbox of
/// frames for it, and a thread that reads its messages and hands them, a
/// read's worth at a time, to the pool.
final class PoolWorker: Sendable {
    let process: ChildProcess
    var pid: pid_t { process.pid }

    enum Event {
        case messages([FromWorker])
        /// The worker's output ended: it exited with `status`; `why` is set
        /// when it broke the protocol first (it was killed for that).
        case ended(ProcessTermination, why: ProcessPoolError?)
    }

    private struct Inbox {
        var greeting: CheckedContinuation<FromWorker, any Error>?
        var greeted = false
        var handler: (@Sendable (Event) -> Void)?
        /// Events that came before the pool adopted the worker.
        var early: [Event] = []
    }
    private let inbox = Locked(Inbox())

    /// Frames not yet written, in the order the pool assigned them, and
    /// whether a thread is writing (one at a time, so frames go out in order).
    private struct Outbox {
        var bytes: [UInt8] = []
        var writing = false
    }
    private let outbox = Locked(Outbox())
    /// Where a write that found the pipe full continues, on a thread that may
    /// block: the pool's own threads never block on a worker's pipe (its
    /// reader thread blocked there, with the worker blocked writing to us,
    /// would be a deadlock).
    private let slowWrites = BlockingQueue<ArraySlice<UInt8>>()

    private init(process: ChildProcess) {
        self.process = process
        process.standardInput?.setNonBlocking()
        let slowWrites = slowWrites
        _ = spawnThread(name: "pool-writer", stackSize: 128 << 10) { [weak self] in
            while let rest = slowWrites.take() { self?.drain(rest, mayBlock: true) }
        }
    }

    deinit { slowWrites.close() }

    static func launch(executable: String, arguments: [String]) async throws -> PoolWorker {
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(executable, arguments: arguments, environment: ChildProcess.environmentWithoutBacktracer(),
                                           standardInput: .pipe, standardOutput: .pipe, standardError: .inherit)
        } catch {
            throw ProcessPoolError.workerFailed("\(error)")
        }
        let worker = PoolWorker(process: child)
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
        let hello: FromWorker
        do {
            hello = try await withCheckedThrowingContinuation { (c: CheckedContinuation<FromWorker, any Error>) in
                worker.inbox.withLock { $0.greeting = c }
                _ = spawnThread(name: "pool-reader") { worker.readMessages() }
            }
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
        if case .hello(_, let message?) = hello {
            worker.stop(kill: true)
            await worker.exited()
            throw ProcessPoolError.initializerFailed(pid: child.pid, message: message)
        }
        return worker
    }

    /// From now on, events go to `handler` (those that came before first).
    func deliver(to handler: @escaping @Sendable (Event) -> Void) {
        let early = inbox.withLock { box -> [Event] in
            box.handler = handler
            defer { box.early = [] }
            return box.early
        }
        for event in early { handler(event) }
    }

    private func post(_ event: Event) {
        let handler = inbox.withLock { box -> (@Sendable (Event) -> Void)? in
            if box.handler == nil { box.early.append(event) }
            return box.handler
        }
        handler?(event)
    }

    /// The reader thread: the greeting, then message batches, until end of file.
    private func readMessages() {
        var frames = FrameReader(fd: process.standardOutput!.fileDescriptor)
        var why: ProcessPoolError?
        do {
            while let first = try frames.next(FromWorker.read) {
                if let greeting = takeGreeting() {
                    greeting.resume(returning: first)
                    continue
                }
                var batch = [first]
                while frames.hasBufferedFrame, let next = try frames.next(FromWorker.read) { batch.append(next) }
                post(.messages(batch))
            }
        } catch {
            why = .workerFailed("worker \(pid) sent a bad frame: \(error)")
            process.kill()
        }
        // End of file: the worker exited (or was killed). Report how.
        let status = process.waitForExit(timeout: .seconds(10)) ?? {
            process.kill()
            return process.waitForExit() ?? .signalled(SIGKILL)
        }()
        if let greeting = takeGreeting() {
            greeting.resume(throwing: why ?? .workerDied(pid: pid, status: status))
            return
        }
        post(.ended(status, why: why))
        // No more events: drop the pool's handler (it holds this worker: a cycle) and end the writer thread.
        inbox.withLock { $0.handler = nil }
        slowWrites.close()
    }

    /// Who waits for the first message, the first time it is asked (later: nil).
    private func takeGreeting() -> CheckedContinuation<FromWorker, any Error>? {
        inbox.withLock { box in
            guard !box.greeted else { return nil }
            box.greeted = true
            defer { box.greeting = nil }
            return box.greeting
        }
    }

    /// Adds a frame to the outbox (the pool calls this under its lock, in assignment order).
    func enqueue(_ frame: [UInt8]) {
        outbox.withLock { $0.bytes += frame }
    }

    /// Writes the outbox, unless another thread is writing it (that one
    /// writes these frames too before it stops). Never blocks.
    func flush() {
        guard let bytes = outbox.withLock({ box -> [UInt8]? in
            guard !box.writing, !box.bytes.isEmpty else { return nil }
            box.writing = true
            defer { box.bytes = [] }
            return box.bytes
        }) else { return }
        drain(bytes[...], mayBlock: false)
    }

    /// Writes `chunk`, then what the outbox gained meanwhile, until it is
    /// empty. On a full pipe, waits if `mayBlock`, else hands the rest to the
    /// writer thread (still marked as writing). A worker that is gone fails
    /// the write: its frames are dropped, and its reader reports the death.
    private func drain(_ first: ArraySlice<UInt8>, mayBlock: Bool) {
        guard let pipe = process.standardInput else { return }
        var chunk = first
        while true {
            while !chunk.isEmpty {
                let n: Int
                do { n = try pipe.write(prefixOf: chunk) } catch {
                    outbox.withLock { $0 = Outbox() }
                    return
                }
                chunk = chunk.dropFirst(n)
                if n == 0 {
                    guard mayBlock else {
                        slowWrites.put(chunk)
                        return
                    }
                    pipe.waitUntilWritable()
                }
            }
            guard let more = outbox.withLock({ box -> [UInt8]? in
                guard !box.bytes.isEmpty else {
                    box.writing = false
                    return nil
                }
                defer { box.bytes = [] }
                return box.bytes
            }) else { return }
            chunk = more[...]
        }
    }

    /// Closes the worker's input (it exits after the jobs it holds); `kill` also kills it.
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
