import Glibc
import NIOCore

/// A listening TCP socket: listing 3.1's `socket()`, `setsockopt(SO_REUSEADDR)`,
/// `bind()`, `listen()` in one owner.
///
/// `~Copyable` like ``Socket``: the listener closes when its owner's scope
/// ends. Bind port 0 and read ``port`` (tests never hard-code 8000).
public struct TCPListener: ~Copyable, Sendable {
    /// The listening socket.
    public let socket: Socket
    /// The port the kernel bound (`getsockname`).
    public let port: Int

    /// Creates, configures, binds and listens.
    /// - Parameters:
    ///   - host: the address to bind; loopback by default.
    ///   - port: 0 asks the kernel for a free port.
    ///   - backlog: pending connections the kernel queues before `accept`.
    ///   - nonBlocking: switch `O_NONBLOCK` on (listings 3.5–3.7).
    public init(host: String = "127.0.0.1", port: Int = 0, backlog: Int32 = 1024, nonBlocking: Bool = false) throws {
        let socket = try Socket.tcp()
        try socket.setReuseAddress()
        try socket.bind(host: host, port: port)
        try socket.listen(backlog: backlog)
        if nonBlocking { try socket.setNonBlocking() }
        self.port = try socket.localPort
        self.socket = socket
    }

    /// `accept()`: blocks (or throws ``SocketError/wouldBlock`` when non-blocking)
    /// until a client connects; returns the connected socket and the client's address.
    /// After another thread called ``Socket/shutdown(_:)`` on the listener it throws.
    public func accept() throws -> Accepted {
        try socket.accept()
    }

    /// Gives up ownership without closing (see ``Socket/releaseDescriptor()``).
    public consuming func releaseDescriptor() -> Int32 {
        socket.releaseDescriptor()
    }

    /// Closes the listener now.
    public consuming func close() {
        socket.close()
    }
}
