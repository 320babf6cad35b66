#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed socket call, with `errno` turned into a typed case.
///
/// Python raises an exception from every failing socket call
/// (`BlockingIOError`, `ConnectionRefusedError`, …). In Swift the syscalls
/// return -1 and set `errno`; the ``Socket`` wrapper reads `errno` at once
/// (before any other call can overwrite it) and throws one of these.
public enum SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `EAGAIN`/`EWOULDBLOCK` (11 on Linux): a non-blocking call would have
    /// to wait. asyncio's `BlockingIOError: [Errno 11] Resource temporarily unavailable`.
    case wouldBlock
    /// `ECONNREFUSED`: nobody listens on that port (`ConnectionRefusedError`).
    case connectionRefused
    /// `ECONNRESET`: the peer reset the connection (`ConnectionResetError`).
    case connectionReset
    /// `EPIPE`: writing to a connection the peer closed (`BrokenPipeError`).
    case brokenPipe
    /// Any other failure: the call's name and its `errno`.
    case system(call: String, errno: Int32)

    /// Maps the current `errno` of a failed `call` to a case.
    static func fromErrno(_ call: String, _ code: Int32 = errno) -> SocketError {
        switch code {
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        case ECONNREFUSED: return .connectionRefused
        case ECONNRESET: return .connectionReset
        case EPIPE: return .brokenPipe
        default: return .system(call: call, errno: code)
        }
    }

    /// The failure in words, with `strerror` for system errors.
    public var description: String {
        switch self {
        case .wouldBlock: return "operation would block (EAGAIN)"
        case .connectionRefused: return "connection refused"
        case .connectionReset: return "connection reset by peer"
        case .brokenPipe: return "broken pipe"
        case .system(let call, let code): return "\(call) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
