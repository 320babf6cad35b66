import AsyncPrimitives
import CurriculumCore
import Foundation
import Glibc
import SocketServers
import Testing
import Threads

// A blocking loopback TCP client for server tests (chapters 3, 7, 8), which
// never blocks the cooperative pool, and checks that a port is closed.

/// Shorthands for a value shared between a test and a thread it started.
extension Locked where Value: Sendable {
    public var get: Value { withLock { $0 } }
    public func set(_ new: Value) { withLock { $0 = new } }
    public func update<R: Sendable>(_ body: (inout Value) -> R) -> R { withLock { body(&$0) } }
}

/// The thread pool the test clients block on: 32 threads of their own, so
/// that many clients of tests running side by side can wait for an echo at
/// once, and a test that saturates ``Threads/ThreadPool/shared`` on purpose
/// (chapter 7) never starves them, nor they it.
extension ThreadPool {
    public static let testIO = ThreadPool(threads: 32, name: "test-io")
}

/// A loopback TCP client. Each operation is a blocking syscall run on the
/// test clients' own pool (`toThread(on: .testIO)`), so waiting for an echo never occupies one of
/// the cooperative pool's threads, which the async server's tasks need.
/// Every socket has a 10 s timeout: a broken server fails a test, never hangs it.
///
/// `@unchecked Sendable`: the socket is an owned descriptor (syscalls on it
/// are thread-safe) and the read-ahead buffer is behind a `Locked`; a test
/// uses one client from one task at a time.
public final class TestClient: @unchecked Sendable {
    public let socket: Socket
    public let localPort: Int
    private let pending = Locked<[UInt8]>([])

    private init(_ socket: consuming Socket) throws {
        try socket.setTimeout(.seconds(10))
        localPort = try socket.localPort
        self.socket = socket
    }

    /// Connects to `127.0.0.1:port`.
    public static func connect(_ port: Int) async throws -> TestClient {
        try await toThread(on: .testIO) { try TestClient(Socket.connect(port: port)) }
    }

    /// Connects and immediately records `event` just before calling `connect`.
    public static func connect(_ port: Int, recordingBefore event: String, in log: EventLog) async throws -> TestClient {
        try await toThread(on: .testIO) {
            log.record(event)
            return try TestClient(Socket.connect(port: port))
        }
    }

    public func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) async throws {
        try await blocking("send") { try self.socket.sendAll(bytes) }
    }

    /// Runs a blocking socket operation on the blocking pool, turning the
    /// socket timeout (EAGAIN after 10 s) into an error that says which
    /// operation of which client waited in vain.
    private func blocking<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let localPort = localPort
        return try await toThread(on: .testIO) {
            do {
                return try body()
            } catch SocketError.wouldBlock {
                throw TestClientTimeout(operation: operation, localPort: localPort)
            }
        }
    }

    /// Reads one line (through `\n`), or what came before EOF.
    public func readLine() async throws -> String {
        String(decoding: try await readLineBytes(), as: UTF8.self)
    }

    public func readLineBytes() async throws -> [UInt8] {
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
    public func read(_ count: Int) async throws -> [UInt8] {
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
    public func readsEOF() async throws -> Bool {
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
    public func staysSilent(for window: Duration) async -> Bool {
        if !pending.withLock({ $0.isEmpty }) { return false }
        return await (try? toThread(on: .testIO) { !self.socket.waitReadable(timeout: window) }) ?? false
    }

    /// Half-closes: the server reads EOF, this client can still read.
    public func finishSending() { socket.shutdown(Int32(SHUT_WR)) }

    /// Closes with a reset (`SO_LINGER` 0): the rudest disconnect.
    public func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(socket.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    /// Really closes the connection now. The descriptor number is atomically
    /// re-pointed at /dev/null (`dup2`), so the `Socket` owner still closes a
    /// valid descriptor of its own later and never a number reused by others.
    public func close() {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        _ = dup2(null, socket.fd)
        _ = Glibc.close(null)
    }
}

/// True if nothing listens on `port` any more: a connect is refused.
public func isRefused(_ port: Int) async -> Bool {
    await (try? toThread(on: .testIO) { () -> Bool in
        do {
            _ = try Socket.connect(port: port)
            return false
        } catch SocketError.connectionRefused {
            return true
        }
    }) ?? false
}

/// A ``TestClient`` operation that got nothing for 10 s (its socket timeout).
public struct TestClientTimeout: Error, CustomStringConvertible {
    public var operation: String
    public var localPort: Int
    public var description: String { "\(operation) of the client on local port \(localPort) got nothing within 10 s" }
}

/// True if no socket on this machine listens on `port` (TCP, IPv4 or IPv6),
/// read from `/proc/net/tcp` and `/proc/net/tcp6`: the listener is closed and
/// the port free for the next server.
///
/// Not "can bind it again": with other tests running at the same time, a
/// client socket may be handed the just-freed number as its own ephemeral
/// port within milliseconds, and then a `bind` fails for reasons that have
/// nothing to do with the server under test (seen once in ten full runs).
public func nothingListens(on port: Int) -> Bool {
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
