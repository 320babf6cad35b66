#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncPrimitives

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

    public var description: String { (["curriculum-worker"] + arguments).joined(separator: " ") }
}

/// How a worker process ended.
public enum WorkerTermination: Sendable, Equatable, CustomStringConvertible {
    /// It called `exit` with this status.
    case exited(Int32)
    /// A signal killed it.
    case signalled(Int32)

    public var description: String {
        switch self {
        case .exited(let status): "exited(\(status))"
        case .signalled(let signal): "signalled(\(signal))"
        }
    }
}

/// What a finished `curriculum-worker` child produced.
public struct WorkerResult: Sendable, CustomStringConvertible {
    /// The job it ran.
    public var job: WorkerJob
    /// The child's pid as the parent saw it when spawning.
    public var processID: pid_t
    /// How it ended.
    public var termination: WorkerTermination
    /// Everything it wrote to standard output.
    public var standardOutput: String
    /// Everything it wrote to standard error.
    public var standardError: String

    /// Wraps a finished child's outcome (``spawnWorker(job:executable:)``
    /// builds these; tests may build one to check parsing).
    public init(job: WorkerJob, processID: pid_t, termination: WorkerTermination, standardOutput: String, standardError: String) {
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
    /// No `curriculum-worker` executable was found in these places.
    case executableNotFound(searched: [String])
    /// `posix_spawn` (or creating its pipes) failed with this errno.
    case spawnFailed(path: String, errno: Int32)
    /// The child exited unsuccessfully.
    case failed(job: WorkerJob, termination: WorkerTermination, standardError: String)
    /// The child's output lacks a `key=value` line (or the value is malformed).
    case missingField(job: WorkerJob, key: String, output: String)

    public var description: String {
        switch self {
        case .executableNotFound(let searched):
            "curriculum-worker not found (looked in: \(searched.joined(separator: ", "))); "
                + "build it with `swift build --product curriculum-worker`, or set CURRICULUM_WORKER to its path"
        case .spawnFailed(let path, let code):
            "could not start \(path): \(String(cString: strerror(code)))"
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
/// The child is started with `posix_spawn` (never `fork`, which is unsafe in
/// a multithreaded process), with standard input from `/dev/null` and its
/// standard output and error captured through pipes. Waiting for it happens
/// on a dedicated OS thread, so no cooperative-pool thread is blocked: many
/// workers can run at once from a task group.
///
/// - Cancellation: cancelling the calling task sends `SIGKILL` to the child;
///   the call then returns its result (terminated by signal 9) once reaped.
/// - Parameters:
///   - job: the command line to run.
///   - executable: the worker's path; by default ``WorkerExecutable/locate()``.
/// - Returns: the child's pid, termination and output. A non-zero exit is
///   not an error here: check ``WorkerResult/termination`` or call
///   ``WorkerResult/requireSuccess()``.
/// - Throws: ``WorkerError`` if the executable is missing or cannot start.
public func spawnWorker(job: WorkerJob, executable: String? = nil) async throws -> WorkerResult {
    let path = try executable ?? WorkerExecutable.locate()
    let child = try ChildProcess.spawn(path: path, arguments: job.arguments)
    let reaper = spawnThread(name: "worker-\(child.pid)") { child.collect() }
    let (termination, output, error) = try await withTaskCancellationHandler {
        try await reaper.value
    } onCancel: {
        child.kill()
    }
    return WorkerResult(
        job: job, processID: child.pid, termination: termination,
        standardOutput: output, standardError: error
    )
}

/// What a program run by ``runProgram(_:arguments:)`` printed and how it ended.
public struct ProgramRun: Sendable {
    /// The child's process id (already reaped).
    public var processID: pid_t
    /// How it ended.
    public var termination: WorkerTermination
    /// Everything it wrote to standard output.
    public var standardOutput: String
    /// Everything it wrote to standard error.
    public var standardError: String
}

/// Runs the executable at `path` to completion, as ``spawnWorker(job:executable:)``
/// runs the worker: `posix_spawn`, standard input from `/dev/null`, output
/// captured, reaped with `waitpid` for its own pid on a dedicated thread.
///
/// For tests that run the package's command-line tools. Unlike Foundation's
/// `Process`, nothing depends on SIGCHLD reaching the right thread: a full
/// suite run once hung on a child that had exited but whose `Process`
/// termination handler never ran.
///
/// - Cancellation: cancelling the caller sends `SIGKILL` to the child.
/// - Throws: ``WorkerError/spawnFailed(path:errno:)`` if it cannot start.
public func runProgram(_ path: String, arguments: [String]) async throws -> ProgramRun {
    let child = try ChildProcess.spawn(path: path, arguments: arguments)
    let reaper = spawnThread(name: "child-\(child.pid)") { child.collect() }
    let (termination, output, error) = try await withTaskCancellationHandler {
        try await reaper.value
    } onCancel: {
        child.kill()
    }
    return ProgramRun(processID: child.pid, termination: termination, standardOutput: output, standardError: error)
}

/// Finds the `curriculum-worker` executable.
public enum WorkerExecutable {
    /// The executable's file name.
    public static let name = "curriculum-worker"

    /// The path of `curriculum-worker`: `$CURRICULUM_WORKER` if set, else the
    /// file of that name next to the running executable (SwiftPM builds all
    /// products of a configuration into one folder, `.build/<config>/`, so it
    /// sits beside both the test bundle and the `benchmarks` binary).
    ///
    /// - Throws: ``WorkerError/executableNotFound(searched:)`` listing the
    ///   places tried.
    public static func locate() throws(WorkerError) -> String {
        var candidates: [String] = []
        if let override = getenv("CURRICULUM_WORKER") {
            candidates.append(String(cString: override))
        }
        for executable in [selfExecutable(), CommandLine.arguments.first] {
            guard let executable, let slash = executable.lastIndex(of: "/") else { continue }
            candidates.append(String(executable[..<slash]) + "/" + name)
        }
        for candidate in candidates where access(candidate, X_OK) == 0 {
            return candidate
        }
        throw .executableNotFound(searched: candidates)
    }

    /// `readlink("/proc/self/exe")`: the absolute path of the running binary.
    private static func selfExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A spawned child whose pipes are read, and which is reaped, on one thread.
///
/// `Sendable`: `pid` and the file descriptors are immutable after `spawn`;
/// the only mutable state, whether the child was reaped, sits behind a
/// `Locked`, and `kill` checks it under that lock so it never signals a pid
/// the system may already have reused.
private final class ChildProcess: Sendable {
    let pid: pid_t
    private let stdoutFD: Int32
    private let stderrFD: Int32
    private let state = ReapState()

    private init(pid: pid_t, stdoutFD: Int32, stderrFD: Int32) {
        self.pid = pid
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
    }

    static func spawn(path: String, arguments: [String]) throws(WorkerError) -> ChildProcess {
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        // O_CLOEXEC: children spawned concurrently must not inherit each
        // other's pipe ends, or a reader would wait for the wrong child's exit.
        guard makePipe(&out) == 0 else { throw .spawnFailed(path: path, errno: errno) }
        guard makePipe(&err) == 0 else {
            let code = errno
            close(out[0]); close(out[1])
            throw .spawnFailed(path: path, errno: code)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)

        // Default signal dispositions and an empty mask in the child, whatever
        // the parent (SwiftNIO ignores SIGPIPE) has set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }

        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        close(out[1])
        close(err[1])
        guard status == 0 else {
            close(out[0]); close(err[0])
            throw .spawnFailed(path: path, errno: status)
        }
        return ChildProcess(pid: pid, stdoutFD: out[0], stderrFD: err[0])
    }

    /// Blocks until both pipes reach end-of-file and the child has exited;
    /// returns its termination and output. Call once, from a dedicated thread.
    func collect() -> (WorkerTermination, String, String) {
        var buffers: [Int32: [UInt8]] = [stdoutFD: [], stderrFD: []]
        var open: [Int32] = [stdoutFD, stderrFD]
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !open.isEmpty {
            var polls = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&polls, nfds_t(polls.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for p in polls where p.revents != 0 {
                let count = read(p.fd, &chunk, chunk.count)
                if count > 0 {
                    buffers[p.fd, default: []].append(contentsOf: chunk[0..<count])
                } else if count == 0 || errno != EINTR {
                    open.removeAll { $0 == p.fd }
                }
            }
        }
        close(stdoutFD)
        close(stderrFD)

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        state.markReaped()

        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let signal = status & 0x7f
        let termination: WorkerTermination = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
        return (
            termination,
            String(decoding: buffers[stdoutFD] ?? [], as: UTF8.self),
            String(decoding: buffers[stderrFD] ?? [], as: UTF8.self)
        )
    }

    /// Sends `SIGKILL` unless the child has already been reaped (whose pid
    /// the system may have given to another process).
    func kill() {
        state.ifNotReaped { _ = Glibc.kill(pid, SIGKILL) }
    }
}

/// `pipe2(fds, O_CLOEXEC)`: both ends close on `exec`, atomically. Glibc
/// declares `pipe2` only under `_GNU_SOURCE`, which Swift's Glibc module does
/// not define, so the symbol is looked up at run time (plain `pipe` plus
/// `fcntl` would leave a window in which a concurrent spawn inherits the fds).
private func makePipe(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
    guard let pipe2 = pipe2Function else {
        errno = ENOSYS
        return -1
    }
    return pipe2(fds, O_CLOEXEC)
}

private let pipe2Function: (@convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32)? = {
    guard let library = dlopen(nil, RTLD_NOW), let symbol = dlsym(library, "pipe2") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32).self)
}()

/// Whether a child has been reaped, guarded so `kill` never races `waitpid`.
private final class ReapState: Sendable {
    private let reaped = Locked(false)

    func markReaped() { reaped.withLock { $0 = true } }

    func ifNotReaped(_ body: () -> Void) {
        reaped.withLock { done in if !done { body() } }
    }
}
