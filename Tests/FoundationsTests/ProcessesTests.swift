import CurriculumCore
import CurriculumTesting
import Glibc
import Processes
import Testing
import Threads

/// The package's one child-process runner. Every chapter that starts a
/// program (workers, the echo-server child, the embedded Postgres, the
/// benchmarks' Python peers) stands on it, so its guarantees are tested here.
@Suite("Foundations · child processes", .curriculum, .tags(.processes), .timeLimit(.minutes(3)))
struct ProcessesTests {
    /// The descriptors a live process has open, from `/proc/<pid>/fd`.
    static func openDescriptors(of pid: pid_t) -> Set<Int32> {
        guard let dir = opendir("/proc/\(pid)/fd") else { return [] }
        defer { closedir(dir) }
        var fds: Set<Int32> = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = Int32(name) { fds.insert(fd) }
        }
        return fds
    }

    /// What descriptor `fd` of process `pid` refers to (`readlink /proc/<pid>/fd/<fd>`).
    static func target(of fd: Int32, in pid: pid_t) -> String? {
        var buffer = [CChar](repeating: 0, count: 512)
        let n = readlink("/proc/\(pid)/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test("A child inherits nothing but its three streams, however many descriptors the parent holds open")
    func noInheritedDescriptors() async throws {
        // SwiftNIO opens sockets without close-on-exec. A child that inherited a
        // server's listener or connection kept it open after the server closed it:
        // clients waited for an EOF that never came (the full-suite stall).
        let leaky = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)  // no SOCK_CLOEXEC, as NIO's
        try #require(leaky >= 0)
        defer { close(leaky) }
        let socketName = try #require(Self.target(of: leaky, in: getpid()))  // "socket:[inode]"
        let child = try ChildProcess.spawn("/bin/cat", standardInput: .pipe)
        defer { child.kill() }
        // What the child holds: its three streams (plus, at most, a file cat itself opens at start-up).
        let held = Self.openDescriptors(of: child.pid).compactMap { Self.target(of: $0, in: child.pid) }
        #expect(!held.contains(socketName), "the child holds the parent's socket: \(held)")
        #expect(!held.contains { $0.hasPrefix("socket:") }, "\(held)")
        #expect(Self.openDescriptors(of: child.pid).isSuperset(of: [0, 1, 2]))
        child.standardInput!.close()  // cat reads EOF and exits
        #expect(try await eventually { try await child.termination } == .exited(0))
    }

    @Test("Output of both streams is collected in full, exit status and signals are reported")
    func outputAndTermination() async throws {
        // 1 MiB to stderr while stdout also writes: a runner that read one pipe to EOF first would stall.
        let big = try await eventually {
            try await runProgram("/bin/sh", arguments: ["-c", "head -c 1048576 /dev/zero >&2; echo out; exit 7"])
        }
        #expect(big.output.termination == .exited(7))
        #expect(big.output.standardOutputText == "out\n")
        #expect(big.output.standardError.count == 1 << 20)

        let env = try await runProgram(
            "/bin/sh", arguments: ["-c", "echo $GREETING; pwd"], environment: ["GREETING": "hi"], workingDirectory: "/tmp")
        #expect(env.output.standardOutputText == "hi\n/tmp\n")

        let sleeper = try ChildProcess.spawn("/bin/sleep", arguments: ["30"])
        #expect(sleeper.exitStatus == nil)
        sleeper.send(SIGTERM)  // default disposition in the child, whatever this thread blocks
        #expect(try await eventually { try await sleeper.termination } == .signalled(SIGTERM))
        sleeper.send(SIGKILL)  // reaped: no signal may reach a recycled pid, and none is sent
        #expect(sleeper.exitStatus == .signalled(SIGTERM))
    }

    @Test("Cancelling the caller kills the child; a missing program and a closed pipe are clear errors")
    func cancellationAndErrors() async throws {
        let started = ContinuousClock.now
        let run = Task { try await runProgram("/bin/sleep", arguments: ["30"]) }
        run.cancel()
        let result = try await eventually { try await run.value }
        #expect(result.output.termination == .signalled(SIGKILL))
        #expect(ContinuousClock.now - started < .seconds(10))

        #expect(throws: ProcessError.spawnFailed(path: "/nonexistent/program", errno: ENOENT)) {
            try ChildProcess.spawn("/nonexistent/program")
        }
        #expect(throws: ProcessError.self) { try SiblingExecutable.locate("no-such-sibling") }

        // Writing to a child that has gone: EPIPE as an error, not SIGPIPE killing the test runner.
        let gone = try ChildProcess.spawn("/bin/true", standardInput: .pipe)
        try await eventually { _ = try await gone.termination }
        #expect(throws: ProcessError.writeFailed(errno: EPIPE)) {
            try gone.standardInput!.write(Array(repeating: 0, count: 1 << 17))
        }
    }

    @Test("Lines and bytes arrive as the child prints them, a last line without a newline too")
    func lines() async throws {
        let child = try ChildProcess.spawn("/bin/sh", arguments: ["-c", "echo one; echo two; printf three"])
        let lines = child.standardOutput!.lines()
        let got = try await eventually {
            var got: [String] = []
            for try await line in lines { got.append(line) }
            return got
        }
        #expect(got == ["one", "two", "three"])
        #expect(try await eventually { try await child.termination } == .exited(0))

        let bytes = try ChildProcess.spawn("/bin/sh", arguments: ["-c", "head -c 100000 /dev/zero | tr '\\0' x"])
        let chunks = bytes.standardOutput!.chunks()
        let all = try await eventually {
            var all: [UInt8] = []
            for try await chunk in chunks { all += chunk }
            return all
        }
        #expect(all == Array(repeating: UInt8(ascii: "x"), count: 100_000))
    }
}

/// The package's one OS-thread type.
@Suite("Foundations · threads", .curriculum, .timeLimit(.minutes(3)))
struct ThreadsTests {
    @Test("A spawned thread is a named kernel thread with its own id and CPU clock; join gives its result")
    func spawnAndJoin() async throws {
        let gate = Gate()
        let worker = spawnThread(name: "curriculum-test") { () -> pid_t in
            burn(.milliseconds(30))
            gate.enterBlocking()
            return currentThreadID()
        }
        #expect(worker.threadID != currentThreadID())
        let comm = try String(contentsOfProcFile: "/proc/self/task/\(worker.threadID)/comm")
        #expect(comm == "curriculum-test\n")
        #expect(!worker.isFinished)
        gate.open()
        #expect(try await eventually { try await worker.value } == worker.threadID)
        #expect(worker.cpuTime >= .milliseconds(30))

        struct Boom: Error {}
        let failing = spawnThread { () throws -> Int in throw Boom() }
        #expect(throws: Boom.self) { try failing.join() }
    }
}

/// Spins the calling thread for `cpu` of its own CPU time.
private func burn(_ cpu: Duration) {
    let end = CPUTime.thread() + cpu
    while CPUTime.thread() < end {}
}


/// The evidence recorders the chapters' concurrency claims rest on.
@Suite("Foundations · evidence", .curriculum, .timeLimit(.minutes(3)))
struct EvidenceTests {
    @Test("Intervals overlap only when they share a moment; touching or disjoint ones do not")
    func intervals() {
        let a = Interval(start: 0, end: 10), b = Interval(start: 5, end: 15)
        let touching = Interval(start: 10, end: 20), later = Interval(start: 11, end: 12)
        #expect(a.overlaps(b) && b.overlaps(a))
        #expect(!a.overlaps(touching) && !touching.overlaps(a))
        #expect(!a.overlaps(later) && !later.overlaps(a))
        #expect(Interval.allOverlap([a, b, Interval(start: 9, end: 11)]))
        #expect(!Interval.allOverlap([a, b, later]))
        #expect(!Interval.allOverlap([a]))
    }

    @Test("A thread's CPU clock counts that thread only; the process clock counts every thread")
    func cpuClocks() async throws {
        // An observer thread reads both clocks, then blocks in join() while a second thread burns
        // 200 ms of its own CPU. Blocked, the observer uses almost none: its thread clock barely
        // moves while the process clock moves by at least the burn. Load cannot change either.
        let (observerCPU, processCPU, burnt) = try await spawnThread(name: "observer") { () throws -> (Duration, Duration, Duration) in
            let thread0 = CPUTime.thread(), process0 = CPUTime.process()
            let burner = spawnThread(name: "burner") { () -> Duration in
                let start = CPUTime.thread()
                burn(.milliseconds(200))
                return CPUTime.thread() - start
            }
            let burnt = try burner.join()
            return (CPUTime.thread() - thread0, CPUTime.process() - process0, burnt)
        }.value
        #expect(burnt >= .milliseconds(200))
        #expect(processCPU >= burnt, "the process clock includes the burner's CPU")
        #expect(observerCPU < .milliseconds(50), "a blocked thread's own clock stays still: \(observerCPU)")
    }

    @Test("An event log keeps the order of its entries and wakes exactly the waiters whose condition holds")
    func eventLog() async throws {
        let log = EventLog()
        let waiter = Task { try await log.waitFor("b") }
        log.record("a")
        log.record("b")
        try await eventually { try await waiter.value }
        #expect(log.names == ["a", "b"])
        #expect(log.index(of: "b") == 1 && log.index(of: "c") == nil)
        let cancelled = Task { try await log.waitFor("never") }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
    }
}
