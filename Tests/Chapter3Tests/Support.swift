import Foundation
import Glibc
import NIOCore
import NIOPosix
import SocketServers
import Testing
import AsyncPrimitives
import CurriculumCore
import Processes
import Threads

// Test support for chapter 3: a blocking loopback client that never blocks the
// cooperative pool, the servers in scoped helpers, and a child-process driver
// for the `echo-server` executable.

/// Shorthands for a value shared between a test and a thread it started.
extension Locked where Value: Sendable {
    var get: Value { withLock { $0 } }
    func set(_ new: Value) { withLock { $0 = new } }
    func update<R: Sendable>(_ body: (inout Value) -> R) -> R { withLock { body(&$0) } }
}

/// A loopback TCP client. Each operation is a blocking syscall run on the
/// blocking pool (`toThread`), so waiting for an echo never occupies one of
/// the cooperative pool's threads, which the async server's tasks need.
/// Every socket has a 10 s timeout: a broken server fails a test, never hangs it.
///
/// `@unchecked Sendable`: the socket is an owned descriptor (syscalls on it
/// are thread-safe) and the read-ahead buffer is behind a `Locked`; a test
/// uses one client from one task at a time.
final class TestClient: @unchecked Sendable {
    let socket: Socket
    let localPort: Int
    private let pending = Locked<[UInt8]>([])

    private init(_ socket: consuming Socket) throws {
        try socket.setTimeout(.seconds(10))
        localPort = try socket.localPort
        self.socket = socket
    }

    /// Connects to `127.0.0.1:port`.
    static func connect(_ port: Int) async throws -> TestClient {
        try await toThread { try TestClient(Socket.connect(port: port)) }
    }

    /// Connects and immediately records `event` just before calling `connect`.
    static func connect(_ port: Int, recordingBefore event: String, in log: EventLog) async throws -> TestClient {
        try await toThread {
            log.record(event)
            return try TestClient(Socket.connect(port: port))
        }
    }

    func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) async throws {
        try await blocking("send") { try self.socket.sendAll(bytes) }
    }

    /// Runs a blocking socket operation on the blocking pool, turning the
    /// socket timeout (EAGAIN after 10 s) into an error that says which
    /// operation of which client waited in vain.
    private func blocking<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let localPort = localPort
        return try await toThread {
            do {
                return try body()
            } catch SocketError.wouldBlock {
                throw TestClientTimeout(operation: operation, localPort: localPort)
            }
        }
    }

    /// Reads one line (through `\n`), or what came before EOF.
    func readLine() async throws -> String {
        String(decoding: try await readLineBytes(), as: UTF8.self)
    }

    func readLineBytes() async throws -> [UInt8] {
        try await blocking("readLine") {
            try self.pending.withLock { buffer in
                while true {
                    if let nl = buffer.firstIndex(of: 10) {
                        defer { buffer.removeFirst(nl + 1) }
                        return Array(buffer[...nl])
                    }
                    let chunk = try self.socket.recv(maxBytes: 1 << 16)
                    if chunk.isEmpty {
                        defer { buffer = [] }
                        return buffer
                    }
                    buffer += chunk
                }
            }
        }
    }

    /// Reads exactly `count` bytes (fewer if EOF comes first).
    func read(_ count: Int) async throws -> [UInt8] {
        try await blocking("read(\(count))") {
            try self.pending.withLock { buffer in
                while buffer.count < count {
                    let chunk = try self.socket.recv(maxBytes: min(1 << 20, max(1 << 16, count - buffer.count)))
                    if chunk.isEmpty { break }
                    buffer += chunk
                }
                let n = min(count, buffer.count)
                defer { buffer.removeFirst(n) }
                return Array(buffer[..<n])
            }
        }
    }

    /// True if the server closed the connection (EOF, or a reset) within 10 s.
    func readsEOF() async throws -> Bool {
        try await blocking("readsEOF") {
            do {
                return try self.socket.recv(maxBytes: 1024).isEmpty
            } catch SocketError.connectionReset {
                return true
            }
        }
    }

    /// A bounded negative check: true if nothing arrives within `window`
    /// (a `poll()` with a timeout, not a sleep).
    func staysSilent(for window: Duration) async -> Bool {
        if !pending.withLock({ $0.isEmpty }) { return false }
        return await (try? toThread { !self.socket.waitReadable(timeout: window) }) ?? false
    }

    /// Half-closes: the server reads EOF, this client can still read.
    func finishSending() { socket.shutdown(Int32(SHUT_WR)) }

    /// Closes with a reset (`SO_LINGER` 0): the rudest disconnect.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(socket.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    /// Really closes the connection now. The descriptor number is atomically
    /// re-pointed at /dev/null (`dup2`), so the `Socket` owner still closes a
    /// valid descriptor of its own later and never a number reused by others.
    func close() {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        _ = dup2(null, socket.fd)
        _ = Glibc.close(null)
    }
}

/// True if nothing listens on `port` any more: a connect is refused.
func isRefused(_ port: Int) async -> Bool {
    await (try? toThread { () -> Bool in
        do {
            _ = try Socket.connect(port: port)
            return false
        } catch SocketError.connectionRefused {
            return true
        }
    }) ?? false
}

/// A ``TestClient`` operation that got nothing for 10 s (its socket timeout).
struct TestClientTimeout: Error, CustomStringConvertible {
    var operation: String
    var localPort: Int
    var description: String { "\(operation) of the client on local port \(localPort) got nothing within 10 s" }
}

/// True if no socket on this machine listens on `port` (TCP, IPv4 or IPv6),
/// read from `/proc/net/tcp` and `/proc/net/tcp6`: the listener is closed and
/// the port free for the next server.
///
/// Not "can bind it again": with other tests running at the same time, a
/// client socket may be handed the just-freed number as its own ephemeral
/// port within milliseconds, and then a `bind` fails for reasons that have
/// nothing to do with the server under test (seen once in ten full runs).
func nothingListens(on port: Int) -> Bool {
    let hexPort = String(format: ":%04X", port)
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
        for line in text.split(separator: "\n").dropFirst() {
            // "sl local_address rem_address st …": state 0A is LISTEN.
            let fields = line.split(separator: " ")
            if fields.count > 3, fields[1].hasSuffix(hexPort), fields[3] == "0A" { return false }
        }
    }
    return true
}

/// The two multi-client servers the reliability tests run against.
enum ServerKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case async, selector
    var testDescription: String { rawValue }
}

/// Runs `body` with a started server of `kind` and always stops it.
func withEchoServer<T: Sendable>(
    _ kind: ServerKind, log: EventLog = EventLog(),
    _ body: @Sendable (_ port: Int, _ log: EventLog) async throws -> T
) async throws -> T {
    switch kind {
    case .selector:
        let server = try SelectorEchoServer(log: log)
        do {
            let result = try await body(server.port, log)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    case .async:
        return try await withAsyncEchoServer(log: log) { server in try await body(server.port, log) }
    }
}

/// Runs `body` with a bound, serving ``AsyncEchoServer``; cancels it afterwards.
func withAsyncEchoServer<T: Sendable>(
    log: EventLog = EventLog(),
    _ body: @Sendable (AsyncEchoServer) async throws -> T
) async throws -> T {
    let server = try await AsyncEchoServer.bind(log: log)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            let result = try await body(server)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

extension EventLog {
    /// Waits until an entry whose name starts with `prefix` was recorded.
    func waitFor(prefix: String) async throws {
        try await waitUntil { $0.contains { $0.name.hasPrefix(prefix) } }
    }

    /// The index of the first entry called `name` (or Int.max: absent sorts last).
    func position(_ name: String) -> Int { index(of: name) ?? .max }
}

// MARK: - Child processes

/// A running `echo-server` child: its stdout and stderr lines recorded as
/// events (`out: <line>`, `err: <line>`), its exit as `exit(<status>)`.
/// Killed (SIGKILL) on `kill()` if still running, so no test leaks it.
///
/// On the package's one child-process runner (`Processes.ChildProcess`): the
/// exit is the runner's own `waitpid` of this pid, never a termination handler.
final class ChildProcess: Sendable {
    let events = EventLog()
    private let process: Processes.ChildProcess
    var pid: Int32 { process.pid }

    init(_ arguments: [String]) throws {
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
                events.record("exit(\(Self.status(status)))")
            }
        }
    }

    /// The exit status as a shell shows it (128 + signal for a signal).
    private static func status(_ termination: ProcessTermination) -> Int32 {
        switch termination {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        }
    }

    /// Starts `echo-server` with `arguments` and waits for `listening <port>`.
    static func startServer(_ arguments: [String]) async throws -> (ChildProcess, Int) {
        let child = try ChildProcess(arguments)
        try await child.events.waitUntil { $0.contains { $0.name.hasPrefix("out: listening ") || $0.name.hasPrefix("exit(") } }
        guard let line = child.events.names.first(where: { $0.hasPrefix("out: listening ") }),
              let port = Int(line.dropFirst("out: listening ".count))
        else {
            child.kill()
            throw ChildProcessError.noPort(child.events.names.joined(separator: "\n"))
        }
        return (child, port)
    }

    /// Sends `signal` to the child.
    func send(_ signal: Int32) { process.send(signal) }

    /// Waits for the exit (after its last output line); returns its status.
    func waitForExit() async throws -> Int32 {
        try await events.waitFor(prefix: "exit(")
        return Self.status(try await process.termination)
    }

    /// The lines the child wrote to `stream` ("out" or "err").
    func lines(_ stream: String) -> [String] {
        events.names.filter { $0.hasPrefix(stream + ": ") }.map { String($0.dropFirst(stream.count + 2)) }
    }

    /// Kills the child if it still runs (a failed test must not leak it).
    func kill() { process.kill() }
}

enum ChildProcessError: Error {
    case noPort(String)
}
