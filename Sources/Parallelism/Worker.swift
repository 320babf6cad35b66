#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CurriculumCore
import Processes

/// A job for the package's `curriculum-worker` executable: its command line.
///
/// The parent side of Python's `multiprocessing.Process(target=…)`. Python
/// re-runs the same program and pickles the target; in Swift the child is a
/// separate binary, the job travels as arguments and the answer comes back
/// as `key=value` lines on the child's standard output.
///
/// Jobs are values, not enum cases, so later chapters add their own in an
/// extension (`static func mapWords(_ file: String) -> WorkerJob`) next to a
/// matching subcommand of `curriculum-worker`.
public struct WorkerJob: Sendable, Hashable, CustomStringConvertible {
    /// The arguments passed to `curriculum-worker` (the subcommand first).
    public var arguments: [String]

    /// A job with this command line (the subcommand first), for jobs that
    /// have no factory yet.
    public init(arguments: [String]) { self.arguments = arguments }

    /// Prints the child's `pid` and `ppid` (listing 1.4).
    public static let hello = WorkerJob(arguments: ["hello"])
    /// Prints `pid`, `ppid`, `threads` (its OS thread count), `tid` and
    /// `main` (whether `main` runs on the main thread) (listing 1.2).
    public static let procInfo = WorkerJob(arguments: ["proc-info"])
    /// Starts one extra thread and prints `counts`, the thread counts
    /// before, during and after it (listing 1.3), plus `pid`.
    public static let threads = WorkerJob(arguments: ["threads"])
    /// Computes the naive `fib(n)` and prints `value`, `pid`, `ppid` and the
    /// `CLOCK_MONOTONIC` instants `start_ns`/`end_ns` around the work
    /// (listing 1.6a).
    public static func fib(_ n: Int) -> WorkerJob { WorkerJob(arguments: ["fib", String(n)]) }

    /// Spins for `cpu` of the child's own CPU time and prints `iterations`,
    /// `pid`, the `CLOCK_MONOTONIC` instants `start_ns`/`end_ns` and its own
    /// CPU time `cpu_ns` (listing 6.1).
    public static func burn(cpu: Duration) -> WorkerJob {
        WorkerJob(arguments: ["burn", "--cpu-ms", String(cpu.milliseconds)])
    }

    /// Adds 1 to the shared value (`target: "value"`) or to each element of
    /// the shared array (`"array"`) in segment `segment` (listing 6.10).
    public static func shmIncrement(segment: String, target: String) -> WorkerJob {
        WorkerJob(arguments: ["shm-increment", "--segment", segment, "--target", target])
    }

    /// After a start barrier of `workers`, increments the shared value
    /// `times` times: `mode` `racy`, `atomic` or `mutex` (listings 6.11, 6.12).
    public static func shmRace(segment: String, times: Int, mode: String, workers: Int = 2) -> WorkerJob {
        WorkerJob(arguments: ["shm-race", "--segment", segment, "--times", String(times), "--mode", mode, "--workers", String(workers)])
    }

    public var description: String { (["curriculum-worker"] + arguments).joined(separator: " ") }
}

/// What a finished `curriculum-worker` child produced.
public struct WorkerResult: Sendable, CustomStringConvertible {
    /// The job it ran.
    public var job: WorkerJob
    /// The child's pid as the parent saw it when spawning.
    public var processID: pid_t
    /// How it ended.
    public var termination: ProcessTermination
    /// Everything it wrote to standard output.
    public var standardOutput: String
    /// Everything it wrote to standard error.
    public var standardError: String

    /// Wraps a finished child's outcome (``spawnWorker(job:executable:)``
    /// builds these; tests may build one to check parsing).
    public init(job: WorkerJob, processID: pid_t, termination: ProcessTermination, standardOutput: String, standardError: String) {
        self.job = job
        self.processID = processID
        self.termination = termination
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// Whether it exited with status 0.
    public var succeeded: Bool { termination == .exited(0) }

    /// The `key=value` lines of its standard output (later lines win).
    public var fields: [String: String] {
        var result: [String: String] = [:]
        for line in standardOutput.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            result[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return result
    }

    /// The value of `key` as text.
    /// - Throws: ``WorkerError/missingField(job:key:output:)``.
    public func string(_ key: String) throws(WorkerError) -> String {
        guard let value = fields[key] else {
            throw .missingField(job: job, key: key, output: standardOutput + standardError)
        }
        return value
    }

    /// The value of `key` as an integer.
    /// - Throws: ``WorkerError/missingField(job:key:output:)`` when absent or not a number.
    public func int(_ key: String) throws(WorkerError) -> Int {
        guard let value = Int(try string(key)) else {
            throw .missingField(job: job, key: key, output: standardOutput + standardError)
        }
        return value
    }

    /// The value of `key` as a comma-separated list of integers (`1,2,1`).
    public func ints(_ key: String) throws(WorkerError) -> [Int] {
        let parts = try string(key).split(separator: ",").map { Int($0) }
        guard !parts.contains(nil) else {
            throw .missingField(job: job, key: key, output: standardOutput + standardError)
        }
        return parts.map { $0! }
    }

    /// The value of `key` as a `true`/`false` flag.
    public func bool(_ key: String) throws(WorkerError) -> Bool {
        switch try string(key) {
        case "true": return true
        case "false": return false
        default: throw .missingField(job: job, key: key, output: standardOutput + standardError)
        }
    }

    /// The child's own `getpid()` (field `pid`).
    public var reportedPID: pid_t { get throws(WorkerError) { pid_t(try int("pid")) } }
    /// The child's `getppid()` (field `ppid`).
    public var reportedParentPID: pid_t { get throws(WorkerError) { pid_t(try int("ppid")) } }

    /// The `[start_ns, end_ns]` interval the child reported around its work.
    public var interval: Interval<MonotonicInstant> {
        get throws(WorkerError) {
            Interval(
                start: MonotonicInstant(nanoseconds: Int64(try int("start_ns"))),
                end: MonotonicInstant(nanoseconds: Int64(try int("end_ns")))
            )
        }
    }

    /// Returns `self` if the child exited with status 0.
    /// - Throws: ``WorkerError/failed(job:termination:standardError:)`` otherwise.
    @discardableResult
    public func requireSuccess() throws(WorkerError) -> WorkerResult {
        guard succeeded else {
            throw .failed(job: job, termination: termination, standardError: standardError)
        }
        return self
    }

    public var description: String {
        "\(job) [pid \(processID), \(termination)]: \(standardOutput)\(standardError)"
    }
}

/// Why a worker could not be run or its answer read.
public enum WorkerError: Error, Equatable, CustomStringConvertible {
    /// The worker could not be found or started (the runner's error).
    case process(ProcessError)
    /// The child exited unsuccessfully.
    case failed(job: WorkerJob, termination: ProcessTermination, standardError: String)
    /// The child's output lacks a `key=value` line (or the value is malformed).
    case missingField(job: WorkerJob, key: String, output: String)

    public var description: String {
        switch self {
        case .process(let error):
            "\(error)" + (error.isNotFound ? "; or set CURRICULUM_WORKER to its path" : "")
        case .failed(let job, let termination, let standardError):
            "`\(job)` \(termination): \(standardError)"
        case .missingField(let job, let key, let output):
            "`\(job)` printed no valid `\(key)=` line; output: \(output)"
        }
    }
}

/// Runs `job` in a new `curriculum-worker` child process and returns what it
/// printed: `multiprocessing.Process(target=…).start()` followed by `join()`.
///
/// Through the package's one child-process runner (``Processes/ChildProcess``):
/// `posix_spawn` (never `fork`, which is unsafe in a multithreaded process),
/// standard input from `/dev/null`, both outputs captured, no other
/// descriptor inherited, reaped by its own pid on a thread of its own — so no
/// cooperative-pool thread is blocked and many workers can run at once.
///
/// - Cancellation: cancelling the calling task sends `SIGKILL` to the child;
///   the call then returns its result (terminated by signal 9) once reaped.
/// - Parameters:
///   - job: the command line to run.
///   - executable: the worker's path; by default ``WorkerExecutable/locate()``.
/// - Returns: the child's pid, termination and output. A non-zero exit is
///   not an error here: check ``WorkerResult/termination`` or call
///   ``WorkerResult/requireSuccess()``.
/// - Throws: ``WorkerError/process(_:)`` if the executable is missing or cannot start.
public func spawnWorker(job: WorkerJob, executable: String? = nil) async throws(WorkerError) -> WorkerResult {
    let path: String
    if let executable { path = executable } else { path = try WorkerExecutable.locate() }
    let run: (pid: pid_t, output: CollectedOutput)
    do {
        run = try await runProgram(path, arguments: job.arguments)
    } catch {
        throw .process(error)
    }
    return WorkerResult(
        job: job, processID: run.pid, termination: run.output.termination,
        standardOutput: run.output.standardOutputText, standardError: run.output.standardErrorText
    )
}

/// Finds the `curriculum-worker` executable.
public enum WorkerExecutable {
    /// The executable's file name.
    public static let name = "curriculum-worker"

    /// The path of `curriculum-worker`: `$CURRICULUM_WORKER` if set, else the
    /// file of that name next to the running executable
    /// (``Processes/SiblingExecutable``).
    ///
    /// - Throws: ``WorkerError/process(_:)`` listing the places tried.
    public static func locate() throws(WorkerError) -> String {
        do {
            return try SiblingExecutable.locate(name, override: "CURRICULUM_WORKER")
        } catch {
            throw .process(error)
        }
    }
}

extension ProcessError {
    var isNotFound: Bool {
        if case .executableNotFound = self { return true }
        return false
    }
}
