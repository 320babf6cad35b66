#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors creating the connect-failure fixtures.
public enum ConnectFixtureError: Error, Sendable, CustomStringConvertible {
    /// A socket call failed with this errno.
    case socketCall(String, errno: Int32)

    public var description: String {
        switch self {
        case .socketCall(let call, let e): "\(call) failed: \(String(cString: strerror(e)))"
        }
    }
}

/// A loopback port where every connect is refused (`ECONNREFUSED`).
///
/// The socket is bound but never listens, so the port stays reserved: no
/// other test can start a server on it meanwhile, unlike "pick a free port
/// and hope". Close it when done.
public final class RefusingPort: Sendable {
    /// The refused port on 127.0.0.1.
    public let port: Int
    private let fd: Int32

    public init() throws {
        (fd, port) = try boundLoopbackSocket()
    }

    /// `http://127.0.0.1:PORT`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Releases the port.
    public func close() { _ = Glibc.close(fd) }
}

/// A loopback listener that never accepts, whose queue is already full: a
/// new `connect` to it neither succeeds nor fails, so a client's connect
/// timeout fires — a genuine connect timeout on 127.0.0.1.
///
/// It listens with backlog 0 and fills the accept queue with its own
/// connection; the kernel then drops further SYNs.
public final class BlackholeListener: Sendable {
    /// The port on 127.0.0.1.
    public let port: Int
    private let fd: Int32
    private let fillers: [Int32]

    public init() throws {
        let (fd, port) = try boundLoopbackSocket()
        guard listen(fd, 0) == 0 else {
            let e = errno
            _ = Glibc.close(fd)
            throw ConnectFixtureError.socketCall("listen", errno: e)
        }
        self.fd = fd
        self.port = port
        // Fill the accept queue (backlog 0 admits one); non-blocking so a
        // filler that is itself dropped does not block us.
        var fillers: [Int32] = []
        for _ in 0..<2 {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard s >= 0 else { continue }
            var addr = loopback(port: port)
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(s)
        }
        self.fillers = fillers
        // Give the kernel's loopback handshake of the first filler a moment:
        // wait (bounded) until it is writable, i.e. established.
        if let first = fillers.first {
            var pfd = pollfd(fd: first, events: Int16(POLLOUT), revents: 0)
            _ = poll(&pfd, 1, 1000)
        }
    }

    /// `http://127.0.0.1:PORT`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Closes the listener and its fillers.
    public func close() {
        for f in fillers { _ = Glibc.close(f) }
        _ = Glibc.close(fd)
    }
}

private func loopback(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

/// A TCP socket bound to 127.0.0.1 on a free port, and that port.
private func boundLoopbackSocket() throws -> (Int32, Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ConnectFixtureError.socketCall("socket", errno: errno) }
    var addr = loopback(port: 0)
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else {
        let e = errno
        _ = Glibc.close(fd)
        throw ConnectFixtureError.socketCall("bind", errno: e)
    }
    var out = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &out) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return (fd, Int(UInt16(bigEndian: out.sin_port)))
}
