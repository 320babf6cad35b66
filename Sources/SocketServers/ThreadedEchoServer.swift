import Glibc
import Logging
import CurriculumCore
import Threads

/// Listings 7.1–7.2: an echo server with one OS thread per client, on
/// blocking sockets, and an orderly ``stop()``.
///
/// An acceptor thread blocks in `accept()`; each client gets an
/// ``EchoClientThread`` that receives up to 2 KiB at a time and sends it
/// straight back (`MSG_NOSIGNAL`: a client that went away is an error, never
/// SIGPIPE). A silent client holds only its own thread — the 3.3 failure
/// cannot happen — but every thread reserves a stack, so this model stops
/// scaling long before an event loop does.
///
/// Events go to ``log``: `listening`, `accept(<peer port>)`,
/// `thread(<peer port>: <tid>)` (from the handler thread itself),
/// `echo(<peer port>: <byte count>)`, `goodbye(<peer port>)` (sent by
/// ``stop()``), and the handler's exit path: `closed(<peer port>)` at
/// end-of-stream or `failed(<peer port>: <error>)`.
///
/// Swift has no daemon threads: when `main` returns every thread dies
/// mid-call, so the shutdown is written out. ``stop()`` shuts the listener
/// down (the blocked `accept` fails with `EINVAL`), joins the acceptor, says
/// goodbye to every client still connected and shuts its socket down (the
/// blocked `recv` returns EOF), then joins every handler thread.
public final class ThreadedEchoServer: Sendable {
    /// What ``stop()`` sends each connected client before closing it
    /// (the book's "Shutting down!").
    public static let goodbye = Array("Stopping!\n".utf8)

    /// The bound port.
    public let port: Int
    /// The ordered evidence of what the server did.
    public let log: EventLog

    private struct Client {
        let connection: EchoClientThread
        let thread: JoinHandle<Void>
    }

    /// The clients by peer port. Only the acceptor thread adds to it, and
    /// ``stop()`` joins the acceptor before it reads it, so no client can be
    /// admitted behind stop()'s back.
    private let clients = Locked<[Int: Client]>([:])
    private let listenerSwitch = ShutdownSwitch()
    private let acceptor = Locked<JoinHandle<Void>?>(nil)

    /// Binds `host:port` (port 0: any free port; address reuse on) and starts accepting.
    public init(host: String = "127.0.0.1", port: Int = 0, log: EventLog = EventLog(), logger: Logger? = nil) throws {
        let listener = try TCPListener(host: host, port: port)
        self.port = listener.port
        self.log = log
        let fd = listener.releaseDescriptor()
        listenerSwitch.register(fd)
        log.record("listening")
        let thread = spawnThread(name: "echo-acceptor", stackSize: 256 << 10) { [self] in
            let listener = Socket(adopting: fd)
            acceptLoop(listener, logger: logger)
            listenerSwitch.remove(fd)
            listener.close()
        }
        acceptor.withLock { $0 = thread }
    }

    /// The handler thread of the client whose local port is `peerPort`,
    /// while the server keeps it (until the next accept after it ended, or ``stop()``).
    public func handlerThread(peerPort: Int) -> JoinHandle<Void>? {
        clients.withLock { $0[peerPort]?.thread }
    }

    private func acceptLoop(_ listener: borrowing Socket, logger: Logger?) {
        while !listenerSwitch.isStopping {
            do {
                try admit(listener.accept(), logger: logger)
            } catch SocketError.system(_, let code) where code == ECONNABORTED {
                continue  // the client gave up before we accepted it
            } catch {
                if !listenerSwitch.isStopping {
                    log.record("accept failed: \(error)")
                    logger?.error("accept failed; no more clients are accepted", metadata: ["error": "\(error)"])
                }
                return
            }
        }
    }

    /// Starts a handler thread for a new client (on the acceptor thread).
    private func admit(_ accepted: consuming Accepted, logger: Logger?) {
        let peerPort = accepted.peer.port ?? 0
        log.record("accept(\(peerPort))")
        logger?.info("connection accepted", metadata: ["peer": "\(accepted.peer)"])
        let connection = EchoClientThread(accepted.socket, peerPort: peerPort, log: log, logger: logger)
        // Registered before its thread can echo anything, so a client that got
        // an echo is known to stop() and to handlerThread(peerPort:).
        clients.withLock { clients in
            // Finished handlers of earlier clients are dropped here.
            clients = clients.filter { !$0.value.thread.isFinished }
            let thread = spawnThread(name: "echo-\(peerPort)", stackSize: 256 << 10) {
                connection.serve()
            }
            clients[peerPort] = Client(connection: connection, thread: thread)
        }
    }

    /// Stops the server: no new connections (a connect is refused
    /// afterwards), a goodbye to each client still connected, and every
    /// thread joined. Idempotent; safe from any task.
    public func stop() async {
        listenerSwitch.trip()
        if let acceptor = acceptor.withLock({ $0 }) { await acceptor.joined() }
        let clients = clients.withLock { Array($0.values) }
        for client in clients { client.connection.close(goodbye: Self.goodbye) }
        for client in clients { await client.thread.joined() }
        log.record("stopped")
    }
}

/// Listing 7.2's `ClientEchoThread`: one client's echo loop and its `close()`.
///
/// Its state is `running` while the loop owns the socket and `finished` once
/// the loop has left it, in one lock. The listing checks "alive" and then
/// sends, and the thread can finish in between; here ``close(goodbye:)`` and
/// the loop's exit take the same lock, so the goodbye is sent only to a
/// socket still open and never to a client that already left.
public final class EchoClientThread: Sendable {
    private enum Phase { case running, finished }

    /// The client's port (the server's log names clients by it).
    public let peerPort: Int
    private let fd: Int32
    private let phase = Locked(Phase.running)
    private let log: EventLog
    private let logger: Logger?

    init(_ socket: consuming Socket, peerPort: Int, log: EventLog, logger: Logger?) {
        self.fd = socket.releaseDescriptor()
        self.peerPort = peerPort
        self.log = log
        self.logger = logger
    }

    /// The echo loop (on the client's own thread): until end-of-stream or an
    /// error, then the socket is closed. Unlike the listing, which never
    /// checks for end-of-stream and would spin on empty reads forever after
    /// a disconnect, it stops at EOF.
    func serve() {
        let socket = Socket(adopting: fd)
        log.record("thread(\(peerPort): \(currentThreadID()))")
        var exit = "closed(\(peerPort))"
        do {
            while true {
                let bytes = try socket.recv(maxBytes: 2048)
                if bytes.isEmpty { break }
                try socket.sendAll(bytes)
                log.record("echo(\(peerPort): \(bytes.count))")
            }
        } catch {
            exit = "failed(\(peerPort): \(error))"
        }
        phase.withLock { $0 = .finished }
        socket.close()
        log.record(exit)
        logger?.info("connection closed", metadata: ["peer": "\(peerPort)"])
    }

    /// Sends `goodbye` and shuts the socket down in both directions (waking
    /// the blocked `recv` with EOF) — only while the loop still owns it.
    /// - Returns: whether the client was still connected.
    @discardableResult
    func close(goodbye: [UInt8]) -> Bool {
        phase.withLock { phase in
            guard case .running = phase else { return false }
            // Best effort, non-blocking: a client that stopped reading must not
            // hold the shutdown up; MSG_NOSIGNAL, so a dead peer is no SIGPIPE.
            let sent = goodbye.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            log.record(sent == goodbye.count ? "goodbye(\(peerPort))" : "goodbye failed(\(peerPort))")
            _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
            return true
        }
    }
}
