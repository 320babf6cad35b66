import Foundation
import NIOHTTP1
import WebClients

/// The outcome class of one link check.
public enum LinkStatus: Sendable, Equatable, CustomStringConvertible {
    /// A 2xx answer at the URL itself.
    case ok(Int)
    /// Redirects were followed to `to`, which answered `status` (2xx/3xx).
    case redirected(to: String, status: Int)
    /// A 4xx answer (after redirects).
    case clientError(Int)
    /// A 5xx answer (after redirects).
    case serverError(Int)
    /// No answer head within the link timeout.
    case timedOut
    /// Refused, reset, or another transport failure.
    case connectionFailed(String)
    /// The link cannot be requested (unparseable, relative, not http/https).
    case invalidURL(String)

    /// A stable machine name (`ok`, `redirected`, `clientError`, …).
    public var name: String {
        switch self {
        case .ok: "ok"
        case .redirected: "redirected"
        case .clientError: "clientError"
        case .serverError: "serverError"
        case .timedOut: "timedOut"
        case .connectionFailed: "connectionFailed"
        case .invalidURL: "invalidURL"
        }
    }

    /// The final HTTP status, if an answer came.
    public var statusCode: Int? {
        switch self {
        case .ok(let s), .clientError(let s), .serverError(let s), .redirected(_, let s): s
        default: nil
        }
    }

    /// Whether the link counts as broken (everything but `ok` and `redirected`).
    public var isBroken: Bool {
        switch self {
        case .ok, .redirected: false
        default: true
        }
    }

    public var description: String {
        switch self {
        case .ok(let s): "\(s)"
        case .redirected(let to, let s): "\(s) after redirect to \(to)"
        case .clientError(let s), .serverError(let s): "HTTP \(s)"
        case .timedOut: "timed out"
        case .connectionFailed(let why): "connection failed (\(why))"
        case .invalidURL(let why): "invalid URL (\(why))"
        }
    }
}

/// One checked link, delivered as soon as its check is done.
public struct LinkOutcome: Sendable, PhaseProgress {
    /// The position of this link in the checked list.
    public var index: Int
    /// The link.
    public var url: String
    /// What the check found.
    public var status: LinkStatus
    /// The request method that decided it: `HEAD`, or `GET` when the server
    /// refused `HEAD` (405/501).
    public var method: String
    /// Time the check took.
    public var elapsed: Duration
    /// Checks finished so far, this one included.
    public var done: Int
    /// Checks not finished yet.
    public var pending: Int
}

/// The check phase: the status of every link, concurrently, each request
/// with its own deadline.
public enum LinkChecker {
    /// Checks one link: `HEAD`, falling back to a `GET` whose body is never
    /// downloaded when the server refuses `HEAD` (405 or 501). Redirects are
    /// followed by the client. Never throws; `timeout` covers both requests.
    ///
    /// Cancellation: the request is cancelled; the result is
    /// `.connectionFailed("cancelled")`.
    public static func checkLink(_ url: String, client: WebClient, timeout: Duration) async -> (status: LinkStatus, method: String) {
        if let why = FeedSources.problem(with: url) { return (.invalidURL(why), "HEAD") }
        let start = ContinuousClock.now
        var method = HTTPMethod.HEAD
        do {
            var response = try await fetchHead(client: client, url: url, method: .HEAD, timeout: timeout)
            if response.status == 405 || response.status == 501 {
                method = .GET
                let left = timeout - (.now - start)
                guard left > .zero else { return (.timedOut, "GET") }
                response = try await fetchHead(client: client, url: url, method: .GET, timeout: left)
            }
            return (classify(response, requested: url), method.rawValue)
        } catch let error as WebClientError {
            let status: LinkStatus = switch error {
            case .timedOut, .connectTimedOut: .timedOut
            case .connectionRefused: .connectionFailed("connection refused")
            case .connectionReset: .connectionFailed("connection reset")
            case .unsupportedURL: .invalidURL("unsupported scheme")
            case .invalidURL: .invalidURL("unparseable")
            case .httpStatus(_, let code): code >= 500 ? .serverError(code) : .clientError(code)
            case .tooLarge, .clientShutDown, .transport: .connectionFailed(error.description)
            }
            return (status, method.rawValue)
        } catch {
            return (.connectionFailed(error is CancellationError ? "cancelled" : "\(error)"), method.rawValue)
        }
    }

    static func classify(_ response: WebResponse, requested: String) -> LinkStatus {
        let code = response.status
        switch code {
        case 500...: return .serverError(code)
        case 400..<500: return .clientError(code)
        default:
            if response.url != requested { return .redirected(to: response.url, status: code) }
            return (200..<300).contains(code) ? .ok(code) : .redirected(to: response.url, status: code)
        }
    }

    /// Checks every link concurrently, at most `maxConcurrent` at a time,
    /// and yields each outcome **as it completes** — the seed's check phase,
    /// whose `wait(..., timeout=5)` only bounded a wait round; here every
    /// request has its own deadline and is cancelled when it passes.
    ///
    /// - Returns: a stream of exactly `urls.count` outcomes in completion
    ///   order. Stopping the iteration early cancels the remaining checks.
    public static func check(
        _ urls: [String],
        client: WebClient,
        maxConcurrent: Int,
        timeout: Duration
    ) -> AsyncStream<LinkOutcome> {
        let total = urls.count
        return streamConcurrently(urls, maxConcurrent: maxConcurrent) { index, url in
            let start = ContinuousClock.now
            let (status, method) = await checkLink(url, client: client, timeout: timeout)
            return LinkOutcome(
                index: index, url: url, status: status, method: method,
                elapsed: .now - start, done: 0, pending: total)
        }
    }
}
