#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore
import Foundation
import MapReduce
import Parallelism
import SharedState
import Threads

/// A job for a ``ProcessPool`` worker, by name: the analog of pickling a
/// function *by qualified name* (no code crosses the pipe, only the job's
/// name and arguments). The worker (`curriculum-worker serve`) runs it from
/// the registry compiled into it (``PoolJob/perform()``).
///
/// (The package's ``Parallelism/WorkerJob`` is the command line of a one-shot
/// child; a pool's jobs travel as frames instead.)
public enum PoolJob: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Counts from 0 to `n` with a loop the optimiser cannot fold; returns `n`
    /// (the book's `count(count_to)`).
    case count(Int)
    /// Spins for `cpu` of the worker's own CPU time; returns the iterations.
    case burn(cpu: Duration)
    /// Waits `hold` (a sleep, so intervals are measurable), then returns
    /// `"Hello, <name>!"` (listings 6.2 and 6.3).
    case sayHello(String, hold: Duration)
    /// Throws inside the worker with `message`: the job fails, the worker lives.
    case fail(String)
    /// Calls `abort()`: the worker dies in the middle of the job.
    case crash
    /// Adds 1.0 to the shared double of the segment the worker attached at
    /// start-up (``WorkerInitializer/attach(segment:)``), under the segment's
    /// process-shared mutex; returns the new value (listing 6.13).
    case incrementSharedDouble
    /// Counts the Ngram rows of `chunk` of the file at `path`, which the
    /// worker reads itself (once): only the counts cross the pipe (6.8).
    case mapNgrams(path: String, chunk: NgramChunk)
    /// Folds partial counts into one (6.9's reduce in the pool).
    case mergeCounts([NgramCounts])
    /// Runs `count` product queries (product 100) concurrently on a pool of
    /// `connections` connections to `databaseURL`, tagged `applicationName`,
    /// inside the worker's own event loops (6.15). Only workers built with
    /// the database (`curriculum-worker`) can run it.
    case queryProducts(databaseURL: String, count: Int, connections: Int, applicationName: String)

    public var description: String {
        switch self {
        case .count(let n): "count(\(n))"
        case .burn(let cpu): "burn(\(cpu))"
        case .sayHello(let name, let hold): "sayHello(\(name), hold: \(hold))"
        case .fail(let message): "fail(\(message))"
        case .crash: "crash"
        case .incrementSharedDouble: "incrementSharedDouble"
        case .mapNgrams(let path, let chunk): "mapNgrams(\(path), \(chunk.byteRange))"
        case .mergeCounts(let parts): "mergeCounts(\(parts.count) parts)"
        case .queryProducts(_, let count, let connections, _): "queryProducts(\(count) on \(connections) connections)"
        }
    }
}

/// What a job returned.
public enum JobValue: Codable, Sendable, Hashable, CustomStringConvertible {
    case int(Int)
    case string(String)
    case double(Double)
    case counts(NgramCounts)
    case products([ProductQueryResult])

    /// The integer, if it is one.
    public var int: Int? { if case .int(let v) = self { v } else { nil } }
    /// The text, if it is one.
    public var string: String? { if case .string(let v) = self { v } else { nil } }

    public var description: String {
        switch self {
        case .int(let v): "\(v)"
        case .string(let v): v
        case .double(let v): "\(v)"
        case .counts(let c): "\(c.totals.count) keys, \(c.rows) rows"
        case .products(let rows): "\(rows.count) product rows"
        }
    }
}

/// One product query's answer from a worker (6.15): the row's identity and
/// the Postgres backend that served it.
public struct ProductQueryResult: Codable, Sendable, Hashable {
    public var productID: Int
    public var productName: String
    public var skuID: Int
    public var backendPID: Int
    public init(productID: Int, productName: String, skuID: Int, backendPID: Int) {
        self.productID = productID
        self.productName = productName
        self.skuID = skuID
        self.backendPID = backendPID
    }
}

/// What each worker runs once, before it takes jobs (`Pool(initializer=…)`).
public enum WorkerInitializer: Codable, Sendable, Hashable {
    /// Maps the shared-memory segment `segment` and keeps it in a global of
    /// the worker (Python's initializer storing a shared `Value` in a
    /// global), and counts itself in the segment's
    /// ``SharedState/SegmentLayout/initializations``.
    case attach(segment: String)
    /// Fails with `message`: the pool's start throws
    /// ``ProcessPoolError/initializerFailed(pid:message:)``.
    case fail(String)
}

/// The segment a worker attached at start-up. A worker runs one job at a
/// time on its main thread, so this global is never raced.
nonisolated(unsafe) private var attachedSegment: SharedMemory?

/// Listing 6.14: one more map job done, counted in the attached segment.
/// A job that would count past `pauseAt` waits (bounded, 10 s) until the
/// segment's gate opens, so a test can look at the progress mid-way.
private func reportProgress(_ memory: SharedMemory) throws(JobError) {
    let progress = memory.atomic(at: SegmentLayout.progress)
    let pauseAt = memory.atomic(at: SegmentLayout.pauseAt).load()
    let gate = memory.atomic(at: SegmentLayout.gate)
    let deadline = MonotonicInstant.now().nanoseconds + 10_000_000_000
    while true {
        let current = progress.load()
        if pauseAt > 0 && current >= pauseAt && gate.load() == 0 {
            guard MonotonicInstant.now().nanoseconds < deadline else { throw JobError("the progress gate never opened") }
            usleep(200)
            continue
        }
        if progress.compareExchange(expected: current, desired: current + 1) { return }
    }
}

/// Ngram files a worker has read, by path (it serves one job at a time).
nonisolated(unsafe) private var loadedFiles: [String: [UInt8]] = [:]

private func loadedFile(_ path: String) throws(NgramError) -> [UInt8] {
    if let bytes = loadedFiles[path] { return bytes }
    let bytes = try NgramFile(path: path).bytes
    loadedFiles = [path: bytes]  // keep one: a worker of a long run needs only its file
    return bytes
}

/// The error a job raised inside the worker.
public struct JobError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension PoolJob {
    /// Runs the job in this process: the worker's side of the registry.
    public func perform() throws(JobError) -> JobValue {
        switch self {
        case .count(let n):
            guard n >= 0 else { throw JobError("count needs n ≥ 0, got \(n)") }
            return .int(countUp(to: n))
        case .burn(let cpu):
            return .int(burnCPU(for: cpu))
        case .sayHello(let name, let hold):
            if hold > .zero {
                var request = timespec(tv_sec: Int(hold.components.seconds), tv_nsec: Int(hold.components.attoseconds / 1_000_000_000))
                var left = timespec()
                while nanosleep(&request, &left) == -1 && errno == EINTR { request = left }
            }
            return .string("Hello, \(name)!")
        case .fail(let message):
            throw JobError(message)
        case .crash:
            abort()
        case .mapNgrams(let path, let chunk):
            do {
                let bytes = try loadedFile(path)
                let counts = try NgramCounter.count(bytes, range: chunk.byteRange, firstLine: chunk.firstLine)
                if let memory = attachedSegment { try reportProgress(memory) }
                return .counts(counts)
            } catch {
                throw JobError("\(error)")
            }
        case .mergeCounts(let parts):
            return .counts(NgramCounts.sum(parts))
        case .queryProducts:
            guard let handler = PoolJob.databaseHandler else { throw JobError("this worker has no database support") }
            return try handler(self)
        case .incrementSharedDouble:
            guard let memory = attachedSegment else { throw JobError("no segment attached: start the pool with initializer .attach(segment:)") }
            let mutex = memory.mutex(at: SegmentLayout.mutex)
            let bits = memory.atomic(at: SegmentLayout.double)
            do { try mutex.lock() } catch .ownerDied {} catch { throw JobError("cannot lock the shared mutex: \(error)") }
            defer { mutex.unlock() }
            let value = Double(bitPattern: UInt64(bitPattern: Int64(bits.load()))) + 1
            bits.store(Int(Int64(bitPattern: value.bitPattern)))
            return .double(value)
        }
    }
}

extension PoolJob {
    /// Runs the database jobs (``queryProducts(databaseURL:count:connections:applicationName:)``);
    /// set by a worker executable that links the database modules, before ``servePoolJobs(initializer:input:output:)``.
    nonisolated(unsafe) public static var databaseHandler: ((PoolJob) throws(JobError) -> JobValue)?
}

/// A counting loop the optimiser cannot fold to a constant: the bound goes
/// through an opaque function, and the counter is observed at the end.
@inline(never)
public func countUp(to n: Int) -> Int {
    var i = 0
    let limit = opaque(n)
    while i < limit { i = opaque(i) &+ 1 }
    return i
}

@inline(never) @_optimize(none)
private func opaque(_ x: Int) -> Int { x }

// MARK: - Replies

/// A worker's answer to a job (see ``FromWorker`` for the wire format).
struct PoolReply: Sendable {
    var id: UInt64
    var pid: Int32
    var startNanoseconds: Int64
    var endNanoseconds: Int64
    var cpu: Duration
    var value: JobValue?
    var error: String?
}

// MARK: - The worker's side

/// The loop of `curriculum-worker serve`: runs the initializer, greets, then
/// runs jobs from `input` one at a time, answering each on `output`, until
/// `input` ends (the pool closed it, or the pool's process died) and the
/// jobs already received are done.
///
/// A reader thread takes frames as they come and queues the jobs, so the
/// pool can keep several jobs in flight (no round trip between two jobs) and
/// can take back one still waiting here (``ToWorker/revoke(id:)``) to give
/// it to an idle worker, or because its caller was cancelled.
///
/// Returns the process exit status: 0 at end of input, 3 for a bad frame,
/// 4 when the initializer failed.
public func servePoolJobs(initializer: WorkerInitializer?, input: Int32 = 0, output: Int32 = 1) -> Int32 {
    let pid = getpid()
    let out = Locked(output)  // whole frames from either thread
    @Sendable func send(_ message: FromWorker) -> Bool {
        let frame = message.frame()
        return out.withLock { writeAll($0, frame) }
    }
    func initializerFailed(_ message: String) -> Int32 {
        _ = send(.hello(pid: pid, error: message))
        return 4
    }
    switch initializer {
    case .fail(let message)?:
        return initializerFailed(message)
    case .attach(let segment)?:
        do {
            let memory = try SharedMemory.open(name: segment)
            memory.atomic(at: SegmentLayout.initializations).increment()
            attachedSegment = memory
        } catch {
            return initializerFailed("cannot attach \(segment): \(error)")
        }
    case nil:
        break
    }
    guard send(.hello(pid: pid, error: nil)) else { return 3 }
    let jobs = BlockingQueue<(id: UInt64, job: PoolJob)>()
    let badFrame = Locked(false)
    _ = spawnThread(name: "serve-reader") {
        var frames = FrameReader(fd: input)
        do {
            while let message = try frames.next(ToWorker.read) {
                switch message {
                case .job(let id, let job):
                    jobs.put((id, job))
                case .revoke(let id):
                    let removed = jobs.remove { $0.id == id }
                    guard send(.revoked(id: id, removed: removed)) else { break }
                }
            }
        } catch {
            logToStandardError("curriculum-worker serve: \(error)")
            badFrame.withLock { $0 = true }
        }
        jobs.close()
    }
    while let (id, job) = jobs.take() {
        if badFrame.withLock({ $0 }) { break }
        let cpu0 = CPUTime.thread()
        let start = MonotonicInstant.now()
        var reply = PoolReply(id: id, pid: pid, startNanoseconds: start.nanoseconds, endNanoseconds: 0, cpu: .zero)
        do {
            reply.value = try job.perform()
        } catch {
            reply.error = error.message
        }
        reply.endNanoseconds = MonotonicInstant.now().nanoseconds
        reply.cpu = CPUTime.thread() - cpu0
        guard send(.result(reply)) else { return 0 }  // the pool is gone
    }
    return badFrame.withLock { $0 } ? 3 : 0
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + sent, bytes.count - sent) }
        if n > 0 { sent += n } else if n < 0 && errno == EINTR { continue } else { return false }
    }
    return true
}

func logToStandardError(_ text: String) {
    _ = writeAll(2, Array((text + "\n").utf8))
}
