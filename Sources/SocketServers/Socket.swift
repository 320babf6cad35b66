#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import CurriculumCore

/// A TCP socket that owns its file descriptor: Python's `socket.socket`.
///
/// `Socket` is `~Copyable`: exactly one owner holds each descriptor, and the
/// descriptor is closed when that owner goes out of scope (`deinit`) or calls
/// ``close()``. Python closes sockets whenever the garbage collector gets to
/// them; here a leak is a compile-time matter.
///
/// Every call is a plain POSIX syscall on the calling thread: in blocking
/// mode `accept`/`recv` park the thread, so run them on a dedicated thread
/// (``Threads/spawnThread(name:stackSize:body:)``), never on Swift's cooperative pool. Sends use
/// `MSG_NOSIGNAL`: CPython ignores `SIGPIPE` at start-up, a Swift process
/// would be killed by it when writing to a closed peer.
///
/// Sendable because it is only an integer; the kernel serialises concurrent
/// syscalls on one descriptor. ``shutdown(_:)`` from another thread is the
/// way to wake a thread blocked in `accept`/`recv` on it.
public struct Socket: ~Copyable, Sendable {
    /// The file descriptor (owned by this value).
    public let fd: Int32

    /// Adopts `fd`: this value now closes it.
    public init(adopting fd: Int32) {
        self.fd = fd
    }

    /// A new blocking TCP/IPv4 socket: `socket.socket(AF_INET, SOCK_STREAM)`.
    public static func tcp() throws -> Socket {
        #if canImport(Glibc)
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SocketError.fromErrno("socket") }
        return Socket(adopting: fd)
    }

    /// A blocking socket connected to `host:port` (`socket.create_connection`).
    public static func connect(host: String = "127.0.0.1", port: Int) throws -> Socket {
        let socket = try Socket.tcp()
        var addr = try Self.ipv4(host, port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                retryingEINTR { sysConnect(socket.fd, p, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard rc == 0 else { throw SocketError.fromErrno("connect") }
        return socket
    }

    deinit {
        _ = sysClose(fd)
    }

    /// Closes the descriptor now (instead of at the end of the owner's scope).
    public consuming func close() {
        let fd = self.fd
        discard self
        _ = sysClose(fd)
    }

    /// Gives up ownership without closing: the caller now owns the returned
    /// descriptor (e.g. to hand it to a server thread, which adopts it).
    public consuming func releaseDescriptor() -> Int32 {
        let fd = self.fd
        discard self
        return fd
    }

    // MARK: Options

    /// `setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)`: lets a restarted server bind
    /// its port again at once, although old connections are in TIME_WAIT.
    public func setReuseAddress() throws {
        try setOption(SOL_SOCKET, SO_REUSEADDR, 1)
    }

    /// Switches `O_NONBLOCK` on (or off): `sock.setblocking(False)`.
    /// Afterwards calls that would wait throw ``SocketError/wouldBlock``.
    public func setNonBlocking(_ on: Bool = true) throws {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw SocketError.fromErrno("fcntl") }
        let newFlags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        guard fcntl(fd, F_SETFL, newFlags) == 0 else { throw SocketError.fromErrno("fcntl") }
    }

    /// `SO_RCVTIMEO` and `SO_SNDTIMEO`: a blocking call that waits longer
    /// throws ``SocketError/wouldBlock`` (`sock.settimeout`). Tests use it so
    /// a broken server makes them fail instead of hang.
    public func setTimeout(_ timeout: Duration) throws {
        var tv = timeout.timeval
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            guard setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw SocketError.fromErrno("setsockopt")
            }
        }
    }

    /// Sets an integer socket option.
    public func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws {
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SocketError.fromErrno("setsockopt")
        }
    }

    // MARK: Server side

    /// `bind((host, port))`; port 0 lets the kernel choose (read it back with ``localPort``).
    public func bind(host: String = "127.0.0.1", port: Int) throws {
        var addr = try Self.ipv4(host, port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sysBind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw SocketError.fromErrno("bind") }
    }

    /// `listen(backlog)`.
    public func listen(backlog: Int32 = 1024) throws {
        guard sysListen(fd, backlog) == 0 else { throw SocketError.fromErrno("listen") }
    }

    /// `accept()`: the new connected socket and the client's address. Blocks
    /// in blocking mode; throws ``SocketError/wouldBlock`` in non-blocking
    /// mode when nobody is waiting. The new socket is blocking.
    public func accept() throws -> Accepted {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let client = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                retryingEINTR { sysAccept(fd, p, &len) }
            }
        }
        guard client >= 0 else { throw SocketError.fromErrno("accept") }
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // never leak into child processes
        return Accepted(socket: Socket(adopting: client), peer: Self.address(addr))
    }

    /// This socket's own address (`getsockname`).
    public func localAddress() throws -> SocketAddress {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { throw SocketError.fromErrno("getsockname") }
        return Self.address(addr)
    }

    /// This socket's local port (after `bind`/`connect`).
    public var localPort: Int {
        get throws { try localAddress().port ?? 0 }
    }

    // MARK: Data

    /// `recv(maxBytes)`: up to `maxBytes` bytes; an empty array means the peer
    /// closed its side (EOF).
    public func recv(maxBytes: Int) throws -> [UInt8] {
        let bytes = try [UInt8](unsafeUninitializedCapacity: maxBytes) { buffer, count in
            let n = retryingEINTR { sysRecv(fd, buffer.baseAddress, maxBytes, 0) }
            guard n >= 0 else { throw SocketError.fromErrno("recv") }
            count = n
        }
        return bytes
    }

    /// One `send(..., MSG_NOSIGNAL)`: how many bytes the kernel took (maybe fewer).
    public func send(_ bytes: some Collection<UInt8>) throws -> Int {
        let n = bytes.withContiguousStorageIfAvailable { buf in
            retryingEINTR { sysSend(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL)) }
        } ?? Array(bytes).withUnsafeBufferPointer { buf in
            retryingEINTR { sysSend(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL)) }
        }
        guard n >= 0 else { throw SocketError.fromErrno("send") }
        return n
    }

    /// `sendall`: loops until every byte was sent (blocking mode).
    public func sendAll(_ bytes: some Collection<UInt8>) throws {
        let all = Array(bytes)
        var offset = 0
        while offset < all.count {
            offset += try send(all[offset...])
        }
    }

    /// Reads `chunkSize` bytes at a time until the data ends with `delimiter`
    /// or the peer closes (listing 3.2's loop). Calls `onChunk` with each chunk.
    ///
    /// - Returns: everything read; without the delimiter at the end when the
    ///   peer closed first (a partial message, never a hang).
    public func readUntil(
        _ delimiter: [UInt8] = Array("\r\n".utf8),
        chunkSize: Int = 2,
        onChunk: ([UInt8]) -> Void = { _ in }
    ) throws -> [UInt8] {
        var buffer: [UInt8] = []
        while !buffer.ends(with: delimiter) {
            let chunk = try recv(maxBytes: chunkSize)
            if chunk.isEmpty { break }
            onChunk(chunk)
            buffer += chunk
        }
        return buffer
    }

    /// Reads exactly `count` bytes (fewer only if the peer closes first).
    public func readExactly(_ count: Int) throws -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(count)
        while buffer.count < count {
            let chunk = try recv(maxBytes: min(count - buffer.count, 1 << 16))
            if chunk.isEmpty { break }
            buffer += chunk
        }
        return buffer
    }

    /// `shutdown(fd, how)`: `SHUT_WR` sends EOF; `SHUT_RDWR` from another thread
    /// wakes a thread blocked in `accept` (EINVAL) or `recv` (EOF).
    public func shutdown(_ how: Int32 = Int32(SHUT_RDWR)) {
        _ = sysShutdown(fd, how)
    }

    /// Waits up to `timeout` until the socket is readable (data or EOF):
    /// `poll(POLLIN)`. A bounded negative check, never a sleep.
    public func waitReadable(timeout: Duration) -> Bool {
        Self.poll(fd, Int16(POLLIN), timeout)
    }

    /// Waits up to `timeout` until the socket can take more bytes: `poll(POLLOUT)`.
    public func waitWritable(timeout: Duration) -> Bool {
        Self.poll(fd, Int16(POLLOUT), timeout)
    }

    // MARK: Helpers

    static func poll(_ fd: Int32, _ events: Int16, _ timeout: Duration) -> Bool {
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = max(0, (deadline - .now).milliseconds)
            let rc = Glibc.poll(&pfd, 1, Int32(clamping: left))
            if rc > 0 { return true }
            if rc == 0 { return false }
            if errno != EINTR { return false }
        }
    }

    static func ipv4(_ host: String, _ port: Int) throws -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw SocketError.system(call: "inet_pton(\(host))", errno: EINVAL)
        }
        return addr
    }

    static func address(_ addr: sockaddr_in) -> SocketAddress {
        var a = addr.sin_addr
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
        let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return SocketAddress(addr, host: host)
    }
}

/// What `accept()` returns: the new connected socket and the client's address
/// (Python's `(connection, client_address)` tuple; Swift tuples cannot hold
/// a `~Copyable` value).
public struct Accepted: ~Copyable, Sendable {
    /// The connected socket (blocking), owned by whoever takes it.
    public var socket: Socket
    /// The client's address: 127.0.0.1 and its ephemeral port on loopback.
    public var peer: SocketAddress
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}

/// Retries a syscall interrupted by a signal (`EINTR`), as Python does (PEP 475).
@inline(__always)
func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
    while true {
        let rc = call()
        if rc == -1 && errno == EINTR { continue }
        return rc
    }
}

// Glibc names that clash with our methods.
@inline(__always) func sysClose(_ fd: Int32) -> Int32 { Glibc.close(fd) }
@inline(__always) func sysBind(_ fd: Int32, _ a: UnsafePointer<sockaddr>, _ l: socklen_t) -> Int32 { Glibc.bind(fd, a, l) }
@inline(__always) func sysListen(_ fd: Int32, _ b: Int32) -> Int32 { Glibc.listen(fd, b) }
@inline(__always) func sysConnect(_ fd: Int32, _ a: UnsafePointer<sockaddr>, _ l: socklen_t) -> Int32 { Glibc.connect(fd, a, l) }
@inline(__always) func sysAccept(_ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>, _ l: UnsafeMutablePointer<socklen_t>) -> Int32 {
    Glibc.accept(fd, a, l)
}
@inline(__always) func sysRecv(_ fd: Int32, _ b: UnsafeMutableRawPointer?, _ n: Int, _ f: Int32) -> Int { Glibc.recv(fd, b, n, f) }
@inline(__always) func sysSend(_ fd: Int32, _ b: UnsafeRawPointer?, _ n: Int, _ f: Int32) -> Int { Glibc.send(fd, b, n, f) }
@inline(__always) func sysShutdown(_ fd: Int32, _ how: Int32) -> Int32 { Glibc.shutdown(fd, how) }
