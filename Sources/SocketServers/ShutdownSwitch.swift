import Glibc
import CurriculumCore

/// Stops a server thread that is blocked in a syscall.
///
/// Swift task cancellation cannot interrupt a thread blocked in `accept()` or
/// `recv()`. The server thread registers every descriptor it may block on;
/// ``trip()`` (from any thread) marks the server as stopping and calls
/// `shutdown(fd, SHUT_RDWR)` on each, which wakes `accept` with `EINVAL` and
/// `recv` with EOF. A plain `close` would not reliably wake them.
///
/// Descriptors are removed under the same lock *before* their owner closes
/// them, so `trip()` never touches a number the kernel may have reused.
final class ShutdownSwitch: Sendable {
    private struct State {
        var stopping = false
        var fds: Set<Int32> = []
    }
    private let state = Locked(State())

    /// Whether ``trip()`` was called.
    var isStopping: Bool { state.withLock { $0.stopping } }

    /// Registers `fd`; shuts it down at once if already stopping.
    func register(_ fd: Int32) {
        state.withLock { s in
            s.fds.insert(fd)
            if s.stopping { _ = sysShutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Unregisters `fd` (call before closing it).
    func remove(_ fd: Int32) {
        _ = state.withLock { $0.fds.remove(fd) }
    }

    /// Marks stopping and shuts every registered descriptor down.
    func trip() {
        state.withLock { s in
            s.stopping = true
            for fd in s.fds { _ = sysShutdown(fd, Int32(SHUT_RDWR)) }
        }
    }
}

/// A connected client socket held by a server thread, with its peer's port.
///
/// A class so that servers can keep a list of them (`~Copyable` values cannot
/// go into an `Array`); it unregisters from the server's ``ShutdownSwitch``
/// before its socket closes.
final class ClientConnection {
    let socket: Socket
    let peerPort: Int
    private let registry: ShutdownSwitch?

    init(_ socket: consuming Socket, peerPort: Int, registry: ShutdownSwitch?) {
        self.socket = socket
        self.peerPort = peerPort
        self.registry = registry
        registry?.register(self.socket.fd)
    }

    var fd: Int32 { socket.fd }

    deinit {
        registry?.remove(socket.fd)
        // `socket` closes when this object is destroyed, after this line.
    }
}
