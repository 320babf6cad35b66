import Glibc
import Logging
import Synchronization
import CurriculumCore
import Threads

/// The blocking echo servers of listings 3.1–3.3, on one dedicated thread.
///
/// Two behaviours, both with blocking sockets:
/// - ``Mode/oneClientAtATime``: accept a client, echo its lines until it
///   disconnects, then accept the next (the app's `--mode blocking`).
/// - ``Mode/naiveMultiClient``: listing 3.3 exactly: every pass blocks in
///   `accept()`, appends the new client, then blocks reading one CRLF line
///   from *each* client in turn and echoes it. One silent client stalls
///   everybody, and nobody is served while the server waits for a new client.
///
/// Events go to ``log``: `listening`, `accept(<peer port>)`,
/// `echo(<peer port>: <line without CRLF>)`, `closed(<peer port>)`.
///
/// Concurrency: the server runs on its own thread (``Threads/spawnThread(name:stackSize:body:)``) (never the
/// cooperative pool); ``stop()`` may be called from anywhere: it shuts every
/// socket down (waking the blocked syscall) and joins the thread. Task
/// cancellation alone cannot stop a thread blocked in `accept()`.
public final class BlockingEchoServer: Sendable {
    /// How the server multiplexes clients (it doesn't).
    public enum Mode: String, Sendable, CaseIterable {
        /// Serve one client to completion, then the next.
        case oneClientAtATime
        /// Listing 3.3's loop: accept, then one line from each client in turn.
        case naiveMultiClient
    }

    /// The bound port.
    public let port: Int
    /// The ordered evidence of what the server did.
    public let log: EventLog
    private let switch_: ShutdownSwitch
    private let thread: JoinHandle<Void>

    /// Binds `host:port` (port 0: any free port), listens, and starts serving.
    public init(mode: Mode, host: String = "127.0.0.1", port: Int = 0, log: EventLog = EventLog(),
                logger: Logger? = nil) throws {
        let listener = try TCPListener(host: host, port: port)
        let registry = ShutdownSwitch()
        self.port = listener.port
        self.log = log
        self.switch_ = registry
        registry.register(listener.socket.fd)
        log.record("listening")
        // The thread takes over the listening socket's descriptor: it owns it
        // from now on and closes it when it returns.
        let fd = listener.releaseDescriptor()
        thread = spawnThread(name: "blocking-echo", stackSize: 1 << 20) {
            let listener = Socket(adopting: fd)
            switch mode {
            case .oneClientAtATime:
                Self.serveOneAtATime(listener, registry: registry, log: log, logger: logger)
            case .naiveMultiClient:
                Self.serveNaively(listener, registry: registry, log: log, logger: logger)
            }
            registry.remove(fd)
            listener.close()
        }
    }

    /// The serving thread (for CPU time and thread id evidence).
    public var serverThread: JoinHandle<Void> { thread }

    /// Stops the server: shuts down the listener and every client socket from
    /// this thread (waking the blocked `accept`/`recv`), then waits for the
    /// server thread to finish. Idempotent.
    public func stop() async {
        switch_.trip()
        await thread.joined()
    }

    private static func serveOneAtATime(_ listener: borrowing Socket, registry: ShutdownSwitch, log: EventLog, logger: Logger?) {
        while !registry.isStopping {
            guard let accepted = try? listener.accept() else { return }
            let peer = accepted.peer
            let client = ClientConnection(accepted.socket, peerPort: peer.port ?? 0, registry: registry)
            log.record("accept(\(client.peerPort))")
            logger?.info("connection accepted", metadata: ["peer": "\(peer)"])
            while !registry.isStopping {
                guard let line = try? client.socket.readUntil(Array("\n".utf8), chunkSize: 4096), !line.isEmpty
                else { break }
                log.record("echo(\(client.peerPort): \(Self.text(line)))")
                if (try? client.socket.sendAll(line)) == nil { break }
            }
            log.record("closed(\(client.peerPort))")
            logger?.info("connection closed", metadata: ["peer": "\(peer)"])
        }
    }

    private static func serveNaively(_ listener: borrowing Socket, registry: ShutdownSwitch, log: EventLog, logger: Logger?) {
        var connections: [ClientConnection] = []
        while !registry.isStopping {
            guard let accepted = try? listener.accept() else { return }
            let peer = accepted.peer
            let client = ClientConnection(accepted.socket, peerPort: peer.port ?? 0, registry: registry)
            log.record("accept(\(client.peerPort))")
            logger?.info("connection accepted", metadata: ["peer": "\(peer)"])
            connections.append(client)
            for connection in connections {
                if registry.isStopping { return }
                guard let line = try? connection.socket.readUntil(Array("\r\n".utf8), chunkSize: 2),
                    !line.isEmpty
                else { continue }
                log.record("echo(\(connection.peerPort): \(Self.text(line)))")
                try? connection.socket.sendAll(line)
            }
        }
    }

    /// A line as text for the log, without its trailing CR/LF.
    static func text(_ line: [UInt8]) -> String {
        var bytes = line[...]
        while let last = bytes.last, last == 10 || last == 13 { bytes = bytes.dropLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

