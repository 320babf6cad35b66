#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore
import Foundation
import MapReduce
import Parallelism
import SharedState

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

// MARK: - Frames

/// A request from the pool to a worker.
struct PoolRequest: Codable, Sendable {
    var id: UInt64
    var job: PoolJob
}

/// A worker's answer: to a request (`id` > 0), or its greeting after start-up
/// (`id` 0: `error` is set when the initializer failed).
struct PoolReply: Codable, Sendable {
    var id: UInt64
    var pid: Int32
    var startNanoseconds: Int64
    var endNanoseconds: Int64
    var cpu: Duration
    var value: JobValue?
    var error: String?
}

/// Length-prefixed frames: a 4-byte big-endian length, then a JSON payload.
enum Frame {
    /// The largest payload either side accepts (a corrupt length is an error, not an allocation).
    static let maxPayload = 64 << 20

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let payload = try JSONEncoder().encode(value)
        let n = UInt32(payload.count)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + Array(payload)
    }

    static func length(_ header: [UInt8]) -> Int {
        header.reduce(0) { $0 << 8 | Int($1) }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ payload: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(payload))
    }
}

// MARK: - The worker's side

/// The loop of `curriculum-worker serve`: runs the initializer, greets, then
/// answers one request frame at a time from `input` on `output` until
/// `input` ends (the pool closed it, or the pool's process died). Returns the
/// process exit status: 0 at end of input, 3 for a bad frame, 4 when the
/// initializer failed.
public func servePoolJobs(initializer: WorkerInitializer?, input: Int32 = 0, output: Int32 = 1) -> Int32 {
    let pid = getpid()
    func send(_ reply: PoolReply) -> Bool {
        guard let bytes = try? Frame.encode(reply) else { return false }
        return writeAll(output, bytes)
    }
    func initializerFailed(_ message: String) -> Int32 {
        _ = send(PoolReply(id: 0, pid: pid, startNanoseconds: 0, endNanoseconds: 0, cpu: .zero, value: nil, error: message))
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
    guard send(PoolReply(id: 0, pid: pid, startNanoseconds: 0, endNanoseconds: 0, cpu: .zero, value: .int(Int(pid)), error: nil)) else { return 3 }
    while true {
        let header = readExactly(input, 4)
        if header.isEmpty { return 0 }
        let n = Frame.length(header)
        guard header.count == 4, n <= Frame.maxPayload else {
            logToStandardError("curriculum-worker serve: bad frame header")
            return 3
        }
        let payload = readExactly(input, n)
        guard payload.count == n, let request = try? Frame.decode(PoolRequest.self, payload) else {
            logToStandardError("curriculum-worker serve: bad frame (\(payload.count) of \(n) bytes)")
            return 3
        }
        let cpu0 = CPUTime.thread()
        let start = MonotonicInstant.now()
        var reply = PoolReply(id: request.id, pid: pid, startNanoseconds: start.nanoseconds, endNanoseconds: 0, cpu: .zero)
        do {
            reply.value = try request.job.perform()
        } catch {
            reply.error = error.message
        }
        reply.endNanoseconds = MonotonicInstant.now().nanoseconds
        reply.cpu = CPUTime.thread() - cpu0
        guard send(reply) else { return 0 }  // the pool is gone
    }
}

func readExactly(_ fd: Int32, _ count: Int) -> [UInt8] {
    var result = [UInt8](repeating: 0, count: count)
    var got = 0
    while got < count {
        let n = result.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, count - got) }
        if n > 0 { got += n } else if n == 0 || errno != EINTR { break }
    }
    return Array(result[..<got])
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
