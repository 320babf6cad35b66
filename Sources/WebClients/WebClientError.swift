import AsyncHTTPClient
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a request made through ``fetch(client:url:method:headers:timeout:maxBytes:)``
/// or ``fetchStatus(client:url:delay:timeout:)`` failed: one clear case per
/// failure a caller may want to handle, each naming the URL.
///
/// aiohttp raises a family of `ClientError`s (`ClientConnectorError`,
/// `InvalidURL`, `ServerDisconnectedError`, `ClientResponseError` from
/// `raise_for_status()`) and `asyncio.TimeoutError`; AsyncHTTPClient throws
/// `HTTPClientError` and raw SwiftNIO errors. This type maps both onto one
/// typed vocabulary. Cancellation is never a `WebClientError`: it surfaces as
/// `CancellationError`, like asyncio's `CancelledError`.
public enum WebClientError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The whole request (connect, send, head and body) did not finish
    /// within its total timeout (aiohttp: `asyncio.TimeoutError`).
    case timedOut(String)
    /// No TCP connection could be made within the connect timeout
    /// (aiohttp: `ServerTimeoutError`/`ConnectionTimeoutError`).
    case connectTimedOut(String)
    /// The server refused the connection (nothing listening on the port;
    /// aiohttp: `ClientConnectorError` wrapping `ConnectionRefusedError`).
    case connectionRefused(String)
    /// The connection was reset or closed before a complete response arrived
    /// (aiohttp: `ServerDisconnectedError` / `ClientOSError` ECONNRESET).
    case connectionReset(String)
    /// The URL's scheme is not `http`/`https` (e.g. `error://…`); rejected
    /// before any I/O (aiohttp: `InvalidURL`/`NonHttpUrlClientError`).
    case unsupportedURL(String)
    /// The URL could not be parsed, or has no scheme or no host (aiohttp: `InvalidURL`).
    case invalidURL(String)
    /// The server answered with an error status and the caller asked for
    /// success (``WebResponse/raiseForStatus()``; aiohttp: `ClientResponseError`).
    case httpStatus(String, Int)
    /// The body is longer than the caller's `maxBytes` limit.
    case tooLarge(String, maxBytes: Int)
    /// The client was used after ``withHTTPClient(configuration:isolation:_:)``
    /// shut it down (aiohttp: "Session is closed").
    case clientShutDown(String)
    /// Any other transport failure, with the underlying error's description.
    case transport(String, reason: String)

    /// The URL the failed request was for.
    public var url: String {
        switch self {
        case .timedOut(let u), .connectTimedOut(let u), .connectionRefused(let u),
            .connectionReset(let u), .unsupportedURL(let u), .invalidURL(let u),
            .httpStatus(let u, _), .tooLarge(let u, _), .clientShutDown(let u),
            .transport(let u, _):
            return u
        }
    }

    public var description: String {
        switch self {
        case .timedOut(let u): "request to \(u) timed out"
        case .connectTimedOut(let u): "connecting to \(u) timed out"
        case .connectionRefused(let u): "connection to \(u) was refused"
        case .connectionReset(let u): "connection to \(u) was reset before a complete response"
        case .unsupportedURL(let u): "unsupported URL scheme: \(u)"
        case .invalidURL(let u): "invalid URL: \(u)"
        case .httpStatus(let u, let code): "\(u) answered HTTP \(code)"
        case .tooLarge(let u, let max): "response body of \(u) exceeds \(max) bytes"
        case .clientShutDown(let u): "HTTP client already shut down (request to \(u))"
        case .transport(let u, let reason): "request to \(u) failed: \(reason)"
        }
    }
}

extension WebClientError {
    /// Maps an error thrown by AsyncHTTPClient or SwiftNIO while requesting
    /// `url` onto a ``WebClientError``; cancellation becomes `CancellationError`.
    ///
    /// - Returns: the error to throw: a `WebClientError`, or `CancellationError`.
    static func map(_ error: any Error, url: String, maxBytes: Int = 0) -> any Error {
        if error is WebClientError || error is CancellationError { return error }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return WebClientError.timedOut(url)
            case .connectTimeout, .getConnectionFromPoolTimeout: return WebClientError.connectTimedOut(url)
            case .cancelled: return CancellationError()
            case .invalidURL, .emptyHost, .emptyScheme: return WebClientError.invalidURL(url)
            case .remoteConnectionClosed: return WebClientError.connectionReset(url)
            case .alreadyShutdown: return WebClientError.clientShutDown(url)
            default:
                // `unsupportedScheme(_:)` carries the scheme, so it has no
                // constant to compare with; its short description is fixed.
                if e.shortDescription == "Unsupported scheme" { return WebClientError.unsupportedURL(url) }
                return WebClientError.transport(url, reason: String(describing: e))
            }
        }
        if error is NIOTooManyBytesError { return WebClientError.tooLarge(url, maxBytes: maxBytes) }
        if let e = error as? ChannelError, case .connectTimeout = e { return WebClientError.connectTimedOut(url) }
        if let e = error as? NIOConnectionError {
            // One failure per address tried: report the most telling one.
            let causes = e.connectionErrors.map { $0.error }
            if causes.contains(where: { errno(of: $0) == ECONNREFUSED }) {
                return WebClientError.connectionRefused(url)
            }
            if causes.contains(where: { ($0 as? ChannelError).map { if case .connectTimeout = $0 { true } else { false } } ?? false }) {
                return WebClientError.connectTimedOut(url)
            }
            if let first = causes.first { return map(first, url: url, maxBytes: maxBytes) }
            return WebClientError.transport(url, reason: String(describing: e))
        }
        switch errno(of: error) {
        case ECONNREFUSED: return WebClientError.connectionRefused(url)
        case ECONNRESET, EPIPE: return WebClientError.connectionReset(url)
        case ETIMEDOUT: return WebClientError.connectTimedOut(url)
        default: break
        }
        if let e = error as? ChannelError, e == .eof || e == .ioOnClosedChannel || e == .outputClosed {
            return WebClientError.connectionReset(url)
        }
        return WebClientError.transport(url, reason: String(describing: error))
    }

    private static func errno(of error: any Error) -> Int32? {
        (error as? IOError)?.errnoCode
    }
}
