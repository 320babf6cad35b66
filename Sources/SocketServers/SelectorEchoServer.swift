import Glibc
import CLinux  // <sys/epoll.h>, which Glibc's module map does not export
import Logging
import Synchronization
import CurriculumCore
import Threads

/// Listing 3.7: an echo server for many clients on one thread, driven by
/// the kernel's readiness notifications (`epoll` on Linux, the
/// `selectors.DefaultSelector` of the book).
///
/// The loop waits in `epoll_wait` (with a timeout: the book's
/// `selector.select(timeout=1)`) until some registered socket is ready:
/// the listener (accept every pending client, make it non-blocking,
/// register it) or a client (read up to `readSize` bytes, queue complete
/// lines for echo, send what the socket takes). It never blocks on a single
/// client and uses no CPU while idle. It is, in miniature, what a SwiftNIO
/// event loop does inside.
///
/// Beyond the listing:
/// - per-connection output buffers: a client that does not read gets
///   `EPOLLOUT` interest while its buffer is non-empty, and is no longer
///   *read* once `highWaterMark` bytes wait for it (backpressure: memory per
///   client stays bounded);
/// - line framing, so a line split by TCP is still echoed whole, and a
///   line `boom` is a failing handler: that connection alone is closed and the
///   error logged (listing 3.10's behaviour);
/// - a client that disconnects is unregistered and closed (the listing
///   keeps it registered, and its EOF readiness then spins the loop forever).
///
/// Events in ``log`` (when given): `listening`, `no events` (each timeout),
/// `accept(<port>)`, `echo(<port>: <line or size>)`, `error(<port>: <why>)`,
/// `closed(<port>)`.
///
/// Concurrency: the loop runs on its own thread (``Threads/spawnThread(name:stackSize:body:)``). ``stop()``
/// (from anywhere) wakes it through a pipe registered with the same
/// `epoll` instance, then joins it; all sockets close.
public final class SelectorEchoServer: Sendable {
    /// Counters the loop publishes (read them from any thread).
    public struct Stats: Sendable, Equatable {
        /// Clients accepted so far.
        public var accepted = 0
        /// Clients currently registered with the selector.
        public var registered = 0
        /// `epoll_wait` timeouts with no events ("no events" lines).
        public var idleTicks = 0
        /// The most bytes ever waiting in one client's buffers.
        public var peakBufferedBytes = 0
        /// Every thread that handled an event (one, by design).
        public var handlerThreads: Set<pid_t> = []
    }

    /// The bound port.
    public let port: Int
    /// The event log, if one was given.
    public let log: EventLog?
    private let shared: SelectorShared
    private let wakeWrite: Int32
    private let thread: JoinHandle<Void>

    /// Binds `host:port`, registers the listener and starts the loop.
    /// - Parameters:
    ///   - selectTimeout: `epoll_wait`'s timeout (the book's `timeout=1`).
    ///   - readSize: bytes per `recv` (the book's 1024).
    ///   - highWaterMark: stop reading a client while this many bytes wait for it.
    ///   - maxLineLength: a longer unfinished line closes that connection.
    public init(
        host: String = "127.0.0.1", port: Int = 0, selectTimeout: Duration = .seconds(1),
        readSize: Int = 1024, highWaterMark: Int = 256 * 1024, maxLineLength: Int = 8 << 20,
        log: EventLog? = nil, logger: Logger? = nil
    ) throws {
        let listener = try TCPListener(host: host, port: port, nonBlocking: true)
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw SocketError.fromErrno("pipe") }
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        let epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else {
            let error = SocketError.fromErrno("epoll_create1")
            _ = sysClose(pipeFDs[0]); _ = sysClose(pipeFDs[1])
            throw error
        }
        self.port = listener.port
        self.log = log
        self.wakeWrite = pipeFDs[1]
        let shared = SelectorShared(log: log, logger: logger)
        self.shared = shared
        let config = SelectorLoop.Config(
            timeoutMs: Int32(clamping: selectTimeout.milliseconds), readSize: readSize,
            highWaterMark: highWaterMark, maxLineLength: maxLineLength)
        let listenFD = listener.releaseDescriptor()
        let wakeRead = pipeFDs[0]
        log?.record("listening")
        thread = spawnThread(name: "selector-echo", stackSize: 1 << 20) {
            let loop = SelectorLoop(
                epfd: epfd, listener: Socket(adopting: listenFD), wakeRead: wakeRead, config: config, shared: shared)
            loop.run()
            loop.closeAll()
            _ = sysClose(epfd)
            _ = sysClose(wakeRead)
        }
    }

    /// A snapshot of the loop's counters.
    public var stats: Stats { shared.stats.withLock { $0 } }

    /// Clients currently registered with the selector.
    public var registeredCount: Int { stats.registered }

    /// The loop's thread (its ``Threads/JoinHandle/cpuTime`` is the idle cost).
    public var serverThread: JoinHandle<Void> { thread }

    /// Wakes the loop, which closes every socket and returns; waits for it.
    /// Idempotent.
    public func stop() async {
        if shared.stopRequested.exchange(true, ordering: .acquiringAndReleasing) == false {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
        await thread.joined()
        if shared.wakeClosed.exchange(true, ordering: .acquiringAndReleasing) == false {
            _ = sysClose(wakeWrite)
        }
    }
}

/// What the loop thread shares with the rest of the process.
final class SelectorShared: Sendable {
    let stats = Locked(SelectorEchoServer.Stats())
    let stopRequested = Atomic<Bool>(false)
    let wakeClosed = Atomic<Bool>(false)
    let log: EventLog?
    let logger: Logger?

    init(log: EventLog?, logger: Logger?) {
        self.log = log
        self.logger = logger
    }
}

/// The event loop itself. Confined to the server thread (not Sendable).
final class SelectorLoop {
    struct Config {
        var timeoutMs: Int32
        var readSize: Int
        var highWaterMark: Int
        var maxLineLength: Int
    }

    /// One registered client: its socket and its buffers.
    final class Connection {
        let socket: Socket
        let peerPort: Int
        var input: [UInt8] = []
        var scanned = 0  // input[..<scanned] holds no newline
        var output: [UInt8] = []
        var outputOffset = 0
        var interest: UInt32 = 0
        init(_ socket: consuming Socket, peerPort: Int) {
            self.socket = socket
            self.peerPort = peerPort
        }
        var pending: Int { output.count - outputOffset }
    }

    let epfd: Int32
    let listener: Socket
    let wakeRead: Int32
    let config: Config
    let shared: SelectorShared
    var connections: [Int32: Connection] = [:]

    init(epfd: Int32, listener: consuming Socket, wakeRead: Int32, config: Config, shared: SelectorShared) {
        self.epfd = epfd
        self.listener = listener
        self.wakeRead = wakeRead
        self.config = config
        self.shared = shared
        register(self.listener.fd, events: UInt32(EPOLLIN.rawValue))
        register(wakeRead, events: UInt32(EPOLLIN.rawValue))
    }

    private func register(_ fd: Int32, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        _ = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event)
    }

    private func modify(_ connection: Connection, events: UInt32) {
        guard connection.interest != events else { return }
        var event = epoll_event()
        event.events = events
        event.data.fd = connection.socket.fd
        _ = epoll_ctl(epfd, EPOLL_CTL_MOD, connection.socket.fd, &event)
        connection.interest = events
    }

    /// `while True: events = selector.select(timeout=…); for key, mask in events: …`
    func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        let me = currentThreadID()
        while true {
            let n = epoll_wait(epfd, &events, Int32(events.count), config.timeoutMs)
            if n < 0 {
                if errno == EINTR { continue }
                shared.logger?.error("epoll_wait failed", metadata: ["errno": "\(errno)"])
                return
            }
            if n == 0 {
                shared.stats.withLock { $0.idleTicks += 1 }
                shared.log?.record("no events")
                continue
            }
            shared.stats.withLock { _ = $0.handlerThreads.insert(me) }
            for i in 0..<Int(n) {
                let fd = events[i].data.fd
                let mask = events[i].events
                if fd == wakeRead { return }
                if fd == listener.fd {
                    acceptAll()
                } else if let connection = connections[fd] {
                    handle(connection, mask: mask)
                }
            }
        }
    }

    private func acceptAll() {
        while true {
            let accepted: Accepted
            do {
                accepted = try listener.accept()
            } catch {
                return  // EAGAIN: no more pending clients (or a transient error)
            }
            let peer = accepted.peer
            let connection = Connection(accepted.socket, peerPort: peer.port ?? 0)
            guard (try? connection.socket.setNonBlocking()) != nil else { continue }
            connections[connection.socket.fd] = connection
            connection.interest = UInt32(EPOLLIN.rawValue)
            register(connection.socket.fd, events: connection.interest)
            let registered = connections.count
            shared.stats.withLock {
                $0.accepted += 1
                $0.registered = registered
            }
            shared.log?.record("accept(\(connection.peerPort))")
            shared.logger?.info("connection accepted", metadata: ["peer": "\(peer)"])
        }
    }

    private func handle(_ connection: Connection, mask: UInt32) {
        let readable = mask & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
        if readable && connection.interest & UInt32(EPOLLIN.rawValue) != 0 {
            let data: [UInt8]
            do {
                data = try connection.socket.recv(maxBytes: config.readSize)
            } catch SocketError.wouldBlock {
                return
            } catch {
                close(connection, reason: nil)
                return
            }
            if data.isEmpty {
                close(connection, reason: nil)  // EOF: unregister, or it reports readable forever
                return
            }
            connection.input += data
            guard frameLines(connection) else { return }
        }
        guard flush(connection) else { return }
        updateInterest(connection)
    }

    /// Moves every complete line from the input to the output buffer.
    /// Returns false if the connection was closed (a failing handler).
    private func frameLines(_ connection: Connection) -> Bool {
        var start = 0
        var i = connection.scanned
        let input = connection.input
        while let nl = input[i...].firstIndex(of: 10) {
            let line = input[start...nl]
            if Self.isBoom(line) {
                close(connection, reason: "boom")
                return false
            }
            connection.output += line
            if let log = shared.log {
                let text = line.count <= 256 ? BlockingEchoServer.text(Array(line)) : "\(line.count) bytes"
                log.record("echo(\(connection.peerPort): \(text))")
            }
            start = nl + 1
            i = start
        }
        if start > 0 { connection.input.removeFirst(start) }
        connection.scanned = connection.input.count
        if connection.input.count > config.maxLineLength {
            close(connection, reason: "line longer than \(config.maxLineLength) bytes")
            return false
        }
        let buffered = connection.pending + connection.input.count
        shared.stats.withLock { $0.peakBufferedBytes = max($0.peakBufferedBytes, buffered) }
        return true
    }

    static func isBoom(_ line: ArraySlice<UInt8>) -> Bool {
        line.elementsEqual("boom\n".utf8) || line.elementsEqual("boom\r\n".utf8)
    }

    /// Sends what the socket takes. Returns false if the connection closed.
    private func flush(_ connection: Connection) -> Bool {
        while connection.pending > 0 {
            do {
                let n = try connection.socket.send(connection.output[connection.outputOffset...])
                connection.outputOffset += n
            } catch SocketError.wouldBlock {
                break
            } catch {
                close(connection, reason: nil)
                return false
            }
        }
        if connection.pending == 0 {
            connection.output.removeAll(keepingCapacity: connection.output.count <= 1 << 16)
            connection.outputOffset = 0
        } else if connection.outputOffset > 1 << 16 {
            connection.output.removeFirst(connection.outputOffset)
            connection.outputOffset = 0
        }
        return true
    }

    /// Read while little is buffered; ask for writability while anything is.
    private func updateInterest(_ connection: Connection) {
        var events: UInt32 = 0
        if connection.pending < config.highWaterMark { events |= UInt32(EPOLLIN.rawValue) }
        if connection.pending > 0 { events |= UInt32(EPOLLOUT.rawValue) }
        modify(connection, events: events)
    }

    private func close(_ connection: Connection, reason: String?) {
        let fd = connection.socket.fd
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
        connections[fd] = nil  // the socket closes with the Connection
        let registered = connections.count
        shared.stats.withLock { $0.registered = registered }
        if let reason {
            shared.log?.record("error(\(connection.peerPort): \(reason))")
            shared.logger?.error("connection handler failed", metadata: ["peer": "\(connection.peerPort)", "error": "\(reason)"])
        }
        shared.log?.record("closed(\(connection.peerPort))")
        shared.logger?.info("connection closed", metadata: ["peer": "\(connection.peerPort)"])
    }

    func closeAll() {
        for (fd, _) in connections { _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil) }
        connections.removeAll()
        shared.stats.withLock { $0.registered = 0 }
    }
}
