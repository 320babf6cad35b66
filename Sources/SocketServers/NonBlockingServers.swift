import Glibc
import Logging
import Synchronization
import CurriculumCore
import Threads

/// Listing 3.5: the blocking server with `setblocking(False)` sprinkled on,
/// and nothing else changed. It exists to fail.
///
/// ``run()`` performs the listing's loop on the calling thread. With nobody
/// connecting, the very first non-blocking `accept()` has nothing to return
/// and fails with `EAGAIN`, which ``Socket`` surfaces as
/// ``SocketError/wouldBlock`` (asyncio's `BlockingIOError: [Errno 11]
/// Resource temporarily unavailable`). It never blocks, so calling it from a
/// task is harmless.
public struct NaiveNonBlockingServer: ~Copyable {
    private let listener: TCPListener

    /// Binds a non-blocking listener on `host:port` (0: any free port).
    public init(host: String = "127.0.0.1", port: Int = 0) throws {
        listener = try TCPListener(host: host, port: port, nonBlocking: true)
    }

    /// The bound port.
    public var port: Int { listener.port }

    /// The listing's loop. Throws ``SocketError/wouldBlock`` as soon as a
    /// non-blocking call has nothing ready — at once, when no client is there.
    public func run() throws {
        var connections: [ClientConnection] = []
        while true {
            let accepted = try listener.accept()
            try accepted.socket.setNonBlocking()
            connections.append(ClientConnection(accepted.socket, peerPort: accepted.peer.port ?? 0, registry: nil))
            for connection in connections {
                let line = try connection.socket.readUntil(Array("\r\n".utf8), chunkSize: 2)
                try connection.socket.sendAll(line)
            }
        }
    }
}

/// Listing 3.6: non-blocking sockets whose `BlockingIOError`s are caught and
/// ignored, in an endless loop that never waits.
///
/// It serves several clients, but the thread spins: it burns a whole core
/// even when nobody talks to it (compare ``Threads/JoinHandle/cpuTime`` with
/// ``SelectorEchoServer``'s).
///
/// Faithful to the book in one more way, on purpose: each pass reads a
/// client's line into a *fresh* buffer, and throws away what it read when
/// the next read would block. A line split across two passes loses its
/// first part (logged as `discarded(<port>: <bytes>)`). Other events:
/// `accept(<port>)`, `echo(<port>: <line>)`, `closed(<port>)`.
///
/// Unlike the book, a client that disconnected is removed (the book's loop
/// would keep reading EOF from it forever).
///
/// Concurrency: runs on its own thread (``Threads/spawnThread(name:stackSize:body:)``); ``stop()`` from
/// anywhere sets a flag the loop checks on every pass, then joins.
public final class BusyPollingEchoServer: Sendable {
    /// The bound port.
    public let port: Int
    /// What the server did, in order.
    public let log: EventLog
    private let registry = ShutdownSwitch()
    private let counter = PassCounter()
    private let thread: JoinHandle<Void>

    /// Binds `host:port` and starts spinning.
    public init(host: String = "127.0.0.1", port: Int = 0, log: EventLog = EventLog()) throws {
        let listener = try TCPListener(host: host, port: port, nonBlocking: true)
        self.port = listener.port
        self.log = log
        let fd = listener.releaseDescriptor()
        let registry = self.registry
        let counter = self.counter
        thread = spawnThread(name: "busy-echo", stackSize: 1 << 20) {
            let listener = Socket(adopting: fd)
            Self.spin(listener, registry: registry, counter: counter, log: log)
            listener.close()
        }
    }

    /// The spinning thread (its ``Threads/JoinHandle/cpuTime`` is the cost).
    public var serverThread: JoinHandle<Void> { thread }

    /// How many times the loop has gone round (each pass: one `accept` and
    /// one `recv` per client, whatever happens). Millions while idle.
    public var passes: Int { counter.value.load(ordering: .relaxed) }

    /// Stops the loop and joins the thread. Idempotent.
    public func stop() async {
        registry.trip()
        await thread.joined()
    }

    private static func spin(_ listener: borrowing Socket, registry: ShutdownSwitch, counter: PassCounter, log: EventLog) {
        var connections: [ClientConnection] = []
        while !registry.isStopping {
            counter.value.add(1, ordering: .relaxed)
            do {
                let accepted = try listener.accept()
                try accepted.socket.setNonBlocking()
                let client = ClientConnection(accepted.socket, peerPort: accepted.peer.port ?? 0, registry: nil)
                log.record("accept(\(client.peerPort))")
                connections.append(client)
            } catch {
                // BlockingIOError: nobody new; go on at once.
            }
            var closed: Set<Int32> = []
            for connection in connections {
                var buffer: [UInt8] = []
                do {
                    while !buffer.ends(with: Array("\r\n".utf8)) {
                        let data = try connection.socket.recv(maxBytes: 2)
                        if data.isEmpty {
                            closed.insert(connection.fd)
                            break
                        }
                        buffer += data
                    }
                    if !buffer.isEmpty {
                        log.record("echo(\(connection.peerPort): \(BlockingEchoServer.text(buffer)))")
                        _ = try connection.socket.send(buffer)
                    }
                } catch SocketError.wouldBlock {
                    // The book's `except BlockingIOError: pass` — and the
                    // partial line in `buffer` is gone with it.
                    if !buffer.isEmpty {
                        log.record("discarded(\(connection.peerPort): \(String(decoding: buffer, as: UTF8.self)))")
                    }
                } catch {
                    closed.insert(connection.fd)
                }
            }
            if !closed.isEmpty {
                for c in connections where closed.contains(c.fd) { log.record("closed(\(c.peerPort))") }
                connections.removeAll { closed.contains($0.fd) }
            }
        }
    }
}

/// A counter shared between the spinning thread and its observers.
final class PassCounter: Sendable {
    let value = Atomic<Int>(0)
}
