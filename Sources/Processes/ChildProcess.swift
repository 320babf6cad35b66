#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLinux
import CurriculumCore
import Threads

extension ChildProcess {
    /// This process's environment with the Swift runtime's crash backtracer
    /// off, unless `SWIFT_BACKTRACE` is set: for children that are expected
    /// to crash (pool workers, listing 7.9's trapping lock). The backtracer
    /// would keep a crashing child alive while it symbolicates (tens of
    /// seconds under the thread sanitizer) and end it by SIGSEGV instead of
    /// its own signal; set `SWIFT_BACKTRACE=enable=yes` to debug a child's crash.
    public static func environmentWithoutBacktracer() -> [String: String] {
        var environment: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") {
                environment[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            entry += 1
        }
        if environment["SWIFT_BACKTRACE"] == nil { environment["SWIFT_BACKTRACE"] = "enable=no" }
        return environment
    }
}

/// How a child process ended.
public enum ProcessTermination: Sendable, Hashable, CustomStringConvertible {
    /// It called `exit` with this status.
    case exited(Int32)
    /// A signal killed it.
    case signalled(Int32)

    /// Whether it exited with status 0.
    public var succeeded: Bool { self == .exited(0) }

    /// The status as a shell reports it (`$?`): the exit code, or 128 + the signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let status): "exited(\(status))"
        case .signalled(let signal): "signalled(\(signal))"
        }
    }

    /// Decodes a `waitpid` status.
    init(waitStatus status: Int32) {
        self = CLinux_WIFSIGNALED(status) != 0 ? .signalled(CLinux_WTERMSIG(status)) : .exited(CLinux_WEXITSTATUS(status))
    }
}

/// Why a child process could not be started or talked to.
public enum ProcessError: Error, Hashable, CustomStringConvertible {
    /// No executable of this name was found in these places.
    case executableNotFound(name: String, searched: [String])
    /// `posix_spawn` (or creating its pipes) failed with this errno.
    case spawnFailed(path: String, errno: Int32)
    /// Writing to the child's standard input failed (`EPIPE`: it closed it or exited).
    case writeFailed(errno: Int32)
    /// Reading from one of the child's pipes failed with this errno.
    case readFailed(errno: Int32)

    public var description: String {
        switch self {
        case .executableNotFound(let name, let searched):
            "\(name) not found (looked in: \(searched.joined(separator: ", "))); "
                + "build it with `swift build --product \(name)`"
        case .spawnFailed(let path, let code):
            "could not start \(path): \(String(cString: strerror(code)))"
        case .writeFailed(let code):
            "writing to the child's standard input failed: \(String(cString: strerror(code)))"
        case .readFailed(let code):
            "reading the child's output failed: \(String(cString: strerror(code)))"
        }
    }
}

/// A child process started with `posix_spawn`: the package's one way to run
/// a program (Python's `subprocess.Popen`, `asyncio.create_subprocess_exec`,
/// and the machinery under `multiprocessing`).
///
/// - **Descriptors.** The child gets exactly its three standard streams
///   (`/dev/null`, a pipe to this process, or this process's own) and
///   nothing else: every other descriptor is closed in the child
///   (`posix_spawn_file_actions_addclosefrom_np`). SwiftNIO opens its
///   sockets without close-on-exec, and a child that inherited a server's
///   listener or connection would keep it open after the server closed it:
///   clients would wait for an EOF that never comes (the full-suite stall of
///   issue 11 was exactly that).
/// - **Signals.** The child starts with an empty signal mask and default
///   dispositions, whatever the spawning thread had blocked or ignored
///   (SwiftNIO ignores SIGPIPE; pool threads block SIGTERM and SIGINT).
/// - **Exit.** A reaper thread of its own waits for this pid only (`waitid`
///   without reaping, then `waitpid` under the same lock that guards
///   ``send(_:)``), so an exit is never missed — no SIGCHLD handler, no
///   Foundation `Process` termination handler — and a signal never reaches
///   a recycled pid. ``termination`` suspends without blocking any pool.
/// - **Lifetime.** Nothing here kills a child when this process dies; a
///   child that must not outlive it watches its standard input (a
///   ``Input/pipe`` whose write end only this process holds) and exits at EOF.
///
/// `Sendable`: the pid and descriptors are immutable; pipe ends are owned by
/// their ``PipeReader``/``PipeWriter``; the reaped flag is behind a lock.
public final class ChildProcess: Sendable {
    /// Where the child's standard input comes from.
    public enum Input: Sendable {
        /// `/dev/null`: reads see EOF at once.
        case null
        /// A pipe: write to it with ``ChildProcess/standardInput``.
        case pipe
        /// This process's own standard input.
        case inherit
        /// A descriptor of ours (duplicated into the child; we keep and close ours),
        /// such as a pseudo-terminal's slave side.
        case descriptor(Int32)
    }

    /// Where one of the child's output streams goes.
    public enum Output: Sendable {
        /// `/dev/null`.
        case null
        /// A pipe: read it with ``ChildProcess/standardOutput`` or ``ChildProcess/standardError``.
        case pipe
        /// This process's own stream.
        case inherit
        /// For standard error only: wherever standard output goes (`2>&1`).
        case standardOutput
        /// A descriptor of ours (duplicated into the child; we keep and close ours).
        case descriptor(Int32)
    }

    /// The child's process id.
    public let pid: pid_t
    /// The path that was spawned.
    public let executable: String
    /// The write end of the child's standard input (``Input/pipe`` only).
    public let standardInput: PipeWriter?
    /// The read end of the child's standard output (``Output/pipe`` only).
    public let standardOutput: PipeReader?
    /// The read end of the child's standard error (``Output/pipe`` only).
    public let standardError: PipeReader?

    /// Set once, by the reaper thread, in the same locked step that reaps
    /// the child: while it is `nil` the pid is still ours to signal.
    private let exit = Watched<ProcessTermination?>(nil)

    private init(
        pid: pid_t, executable: String, standardInput: PipeWriter?, standardOutput: PipeReader?,
        standardError: PipeReader?
    ) {
        self.pid = pid
        self.executable = executable
        self.standardInput = standardInput
        self.standardOutput = standardOutput
        self.standardError = standardError
        let exit = self.exit
        _ = spawnThread(name: "reap-\(pid)", stackSize: 64 << 10) {
            var info = siginfo_t()
            // Wait for the exit without reaping, so the pid stays ours until
            // the update below, under the lock that `send` also takes.
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            exit.update { termination in
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                termination = ProcessTermination(waitStatus: status)
            }
        }
    }

    /// Starts `executable` with `arguments`.
    ///
    /// - Parameters:
    ///   - executable: an absolute or relative path (no `PATH` search; use
    ///     `/usr/bin/env` and a name for that).
    ///   - arguments: the arguments after `argv[0]` (which is `executable`).
    ///   - environment: the child's whole environment; `nil` inherits this process's.
    ///   - workingDirectory: the child's current directory; `nil` inherits ours.
    ///   - standardInput, standardOutput, standardError: what the child's
    ///     three streams are connected to.
    /// - Throws: ``ProcessError/spawnFailed(path:errno:)`` if the pipes or the
    ///   process cannot be created, or `executable` cannot be executed.
    public static func spawn(
        _ executable: String,
        arguments: [String] = [],
        environment: [String: String]? = nil,
        workingDirectory: String? = nil,
        standardInput: Input = .null,
        standardOutput: Output = .pipe,
        standardError: Output = .pipe
    ) throws(ProcessError) -> ChildProcess {
        ignoreSIGPIPE
        var opened: [Int32] = []  // every descriptor made here, closed on failure
        func pipe() throws(ProcessError) -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            // O_CLOEXEC: a child spawned concurrently from another thread
            // must not inherit our ends.
            guard CLinux_pipe2(&fds, O_CLOEXEC) == 0 else { throw .spawnFailed(path: executable, errno: errno) }
            opened += fds
            return (fds[0], fds[1])
        }
        func closeAll() { for fd in opened { close(fd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        var ours: (stdin: Int32?, stdout: Int32?, stderr: Int32?) = (nil, nil, nil)
        var theirs: [Int32] = []
        do {
            switch standardInput {
            case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            case .inherit: break
            case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, 0)
            case .pipe:
                let p = try pipe()
                posix_spawn_file_actions_adddup2(&actions, p.read, 0)
                ours.stdin = p.write
                theirs.append(p.read)
            }
            for (target, output) in [(Int32(1), standardOutput), (Int32(2), standardError)] {
                switch output {
                case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
                case .inherit: break
                case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
                case .standardOutput:
                    if target == 2 { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
                case .pipe:
                    let p = try pipe()
                    posix_spawn_file_actions_adddup2(&actions, p.write, target)
                    if target == 1 { ours.stdout = p.read } else { ours.stderr = p.read }
                    theirs.append(p.write)
                }
            }
        } catch {
            closeAll()
            throw error
        }
        // Nothing but 0, 1 and 2 crosses into the child.
        let closing = CLinux_spawn_addclosefrom(&actions, 3)
        guard closing == 0 else {
            closeAll()
            throw .spawnFailed(path: executable, errno: closing)
        }
        if let workingDirectory {
            let status = CLinux_spawn_addchdir(&actions, workingDirectory)
            guard status == 0 else {
                closeAll()
                throw .spawnFailed(path: executable, errno: status)
            }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { env in
            env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { for entry in envp ?? [] { free(entry) } }

        var pid: pid_t = 0
        let status: Int32
        if let envp {
            status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        } else {
            status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        }
        for fd in theirs { close(fd) }
        guard status == 0 else {
            for fd in [ours.stdin, ours.stdout, ours.stderr].compactMap({ $0 }) { close(fd) }
            throw .spawnFailed(path: executable, errno: status)
        }
        return ChildProcess(
            pid: pid, executable: executable,
            standardInput: ours.stdin.map(PipeWriter.init(owning:)),
            standardOutput: ours.stdout.map(PipeReader.init(owning:)),
            standardError: ours.stderr.map(PipeReader.init(owning:)))
    }

    /// Sends `signal` (`kill(2)`), unless the child has already been reaped:
    /// its pid may then belong to another process.
    public func send(_ signal: Int32) {
        exit.update { termination in
            if termination == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Sends `SIGKILL` (a no-op once it has exited).
    public func kill() { send(SIGKILL) }

    /// How the child ended, once it has been reaped; `nil` while it runs.
    public var exitStatus: ProcessTermination? { exit.value }

    /// Suspends until the child has exited; returns how. Any number of tasks
    /// may wait.
    /// - Throws: `CancellationError` if the waiting task is cancelled (the
    ///   child goes on running: to end it, ``kill()`` it).
    public var termination: ProcessTermination {
        get async throws {
            try await exit.waitUntil { $0 != nil }
            return exit.value!
        }
    }

    /// Blocks the calling thread until the child has exited, or at most
    /// `timeout` (never on the cooperative pool: use ``termination``).
    /// - Returns: how it ended, or `nil` if the timeout ran out first.
    @discardableResult
    public func waitForExit(timeout: Duration? = nil) -> ProcessTermination? {
        exit.waitBlocking(until: { $0 != nil }, timeout: timeout)
        return exit.value
    }

    /// Reads the child's standard output and standard error to their ends,
    /// both at once on one thread (so a child that fills one pipe while we
    /// wait on the other cannot stall), then waits for its exit.
    ///
    /// Streams that are not pipes come back empty. Call it at most once.
    /// - Cancellation: cancelling the caller kills the child (`SIGKILL`);
    ///   the call still returns what it had printed and its termination.
    public func collectOutput() async -> CollectedOutput {
        let out = standardOutput, err = standardError
        let reader = spawnThread(name: "collect-\(pid)") { PipeReader.readToEnd(out, err) }
        return await withTaskCancellationHandler {
            // The pipes end when the child exits (or closes them), killed or
            // not; only a test's WaitLimit can end this wait first.
            let (stdout, stderr) = (try? await reader.value) ?? ([], [])
            // Not cancellable: a cancelled caller has killed the child, whose
            // exit then follows at once (a test's WaitLimit still applies).
            try? await exit.waitUntil(cancellable: false) { $0 != nil }
            return CollectedOutput(
                termination: exit.value ?? .signalled(SIGKILL), standardOutput: stdout, standardError: stderr)
        } onCancel: {
            self.kill()
        }
    }

    /// ``collectOutput()`` on the calling thread, for synchronous callers
    /// (never on the cooperative pool for a child that may run long).
    public func collectOutputBlocking() -> CollectedOutput {
        let (stdout, stderr) = PipeReader.readToEnd(standardOutput, standardError)
        return CollectedOutput(termination: waitForExit()!, standardOutput: stdout, standardError: stderr)
    }
}

/// What ``ChildProcess/collectOutput()`` and ``runProgram(_:arguments:environment:workingDirectory:)`` return.
public struct CollectedOutput: Sendable {
    /// How the child ended.
    public var termination: ProcessTermination
    /// Everything it wrote to standard output.
    public var standardOutput: [UInt8]
    /// Everything it wrote to standard error.
    public var standardError: [UInt8]

    /// Standard output as UTF-8 text.
    public var standardOutputText: String { String(decoding: standardOutput, as: UTF8.self) }
    /// Standard error as UTF-8 text.
    public var standardErrorText: String { String(decoding: standardError, as: UTF8.self) }
}

/// Runs the executable at `path` to completion (standard input from
/// `/dev/null`, both outputs captured) and returns its output and termination:
/// `subprocess.run(capture_output=True)`.
///
/// - Cancellation: cancelling the caller sends `SIGKILL` to the child.
/// - Throws: ``ProcessError/spawnFailed(path:errno:)`` if it cannot start. A
///   non-zero exit is not an error here: check the termination.
public func runProgram(
    _ path: String, arguments: [String] = [], environment: [String: String]? = nil, workingDirectory: String? = nil
) async throws(ProcessError) -> (pid: pid_t, output: CollectedOutput) {
    let child = try ChildProcess.spawn(
        path, arguments: arguments, environment: environment, workingDirectory: workingDirectory)
    return (child.pid, await child.collectOutput())
}

/// `SIGPIPE` ignored once per process, before the first pipe to a child
/// exists: writing to a child that has exited is then `EPIPE`
/// (``ProcessError/writeFailed(errno:)``), not the death of this process.
/// Children get the default disposition back (`POSIX_SPAWN_SETSIGDEF`).
private let ignoreSIGPIPE: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()
