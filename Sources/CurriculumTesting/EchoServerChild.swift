import CurriculumCore
import Processes

/// A running `echo-server` child: its stdout and stderr lines recorded as
/// events (`out: <line>`, `err: <line>`), its exit as `exit(<status>)`.
/// Killed (SIGKILL) on `kill()` if still running, so no test leaks it.
///
/// On the package's one child-process runner (`Processes.ChildProcess`): the
/// exit is the runner's own `waitpid` of this pid, never a termination handler.
public final class EchoServerChild: Sendable {
    public let events = EventLog()
    private let process: Processes.ChildProcess
    public var pid: Int32 { process.pid }

    public init(_ arguments: [String]) throws {
        // stdin is a pipe only this process writes: the child (run with
        // `--exit-with-parent`) exits when it closes, i.e. when this test process dies.
        process = try Processes.ChildProcess.spawn(
            try SiblingExecutable.locate("echo-server"), arguments: arguments + ["--exit-with-parent"],
            standardInput: .pipe)
        let events = self.events, process = self.process
        let out = process.standardOutput!.lines(), err = process.standardError!.lines()
        Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { do { for try await line in out { events.record("out: " + line) } } catch {} }
                group.addTask { do { for try await line in err { events.record("err: " + line) } } catch {} }
            }
            // Both pipes ended: the child exited (or closed them); record the exit after its last line.
            if let status = try? await process.termination {
                events.record("exit(\(status.shellStatus))")
            }
        }
    }


    /// Starts `echo-server` with `arguments` and waits for `listening <port>`.
    public static func startServer(_ arguments: [String]) async throws -> (EchoServerChild, Int) {
        let child = try EchoServerChild(arguments)
        try await child.events.waitUntil { $0.contains { $0.name.hasPrefix("out: listening ") || $0.name.hasPrefix("exit(") } }
        guard let line = child.events.names.first(where: { $0.hasPrefix("out: listening ") }),
              let port = Int(line.dropFirst("out: listening ".count))
        else {
            child.kill()
            throw EchoServerChildError.noPort(child.events.names.joined(separator: "\n"))
        }
        return (child, port)
    }

    /// Sends `signal` to the child.
    public func send(_ signal: Int32) { process.send(signal) }

    /// Waits for the exit (after its last output line); returns its status.
    public func waitForExit() async throws -> Int32 {
        try await events.waitFor(prefix: "exit(")
        return try await process.termination.shellStatus
    }

    /// The lines the child wrote to `stream` ("out" or "err").
    public func lines(_ stream: String) -> [String] {
        events.names.filter { $0.hasPrefix(stream + ": ") }.map { String($0.dropFirst(stream.count + 2)) }
    }

    /// Kills the child if it still runs (a failed test must not leak it).
    public func kill() { process.kill() }
}

public enum EchoServerChildError: Error {
    case noPort(String)
}
