import Foundation
import WebClients
import AsyncPrimitives
import CurriculumCore

/// Why one feed could not be read. Every failure of the fetch phase is one of
/// these, carried in a ``FeedFetchOutcome`` — never thrown out of the run.
///
/// The seed logs whatever aiohttp raises and counts HTTP error pages and
/// HTML as feeds with zero entries; here each has its own case.
public enum FeedError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL cannot be requested (unparseable, no host, or not http/https).
    case invalidURL(String)
    /// No usable connection: refused, reset, or another transport failure.
    case connectionFailed(String)
    /// The request (connect, head and body) did not finish within its timeout.
    case timedOut(after: Duration)
    /// The server answered with a non-2xx status (after following redirects).
    case httpStatus(Int)
    /// The body is larger than the limit (`maxBytes`, 10 MiB by default).
    case tooLarge(limit: Int)
    /// Well-formed or not, the document is not RSS/RDF/Atom: an HTML page, an
    /// empty body. `rootElement` is the first element seen (`nil`: none).
    case notAFeed(rootElement: String?)
    /// The XML breaks at `line`:`column`; `partial` holds the entries that
    /// were complete before the break (feedparser's `bozo` with entries).
    case malformed(line: Int, column: Int, message: String, partial: Feed?)

    /// A stable machine name of the case, used in the JSON report.
    public var kind: String {
        switch self {
        case .invalidURL: "invalidURL"
        case .connectionFailed: "connectionFailed"
        case .timedOut: "timedOut"
        case .httpStatus: "httpStatus"
        case .tooLarge: "tooLarge"
        case .notAFeed: "notAFeed"
        case .malformed: "malformed"
        }
    }

    public var description: String {
        switch self {
        case .invalidURL(let why): "invalid URL (\(why))"
        case .connectionFailed(let why): "connection failed (\(why))"
        case .timedOut(let after): "timed out after \(formatSeconds(after))"
        case .httpStatus(let code): "HTTP status \(code)"
        case .tooLarge(let limit): "body larger than \(formatBytes(limit))"
        case .notAFeed(let root?): "not a feed (root element <\(root)>)"
        case .notAFeed(nil): "not a feed (empty body or no XML element)"
        case .malformed(let line, let column, let message, let partial):
            "malformed XML at line \(line), column \(column): \(message)"
                + (partial.map { " (\(entryCount($0.entries.count)) before the error)" } ?? "")
        }
    }
}

extension FeedError {
    /// Maps the HTTP layer's error (``WebClients/WebClientError``) onto a feed error.
    static func from(_ error: WebClientError, timeout: Duration) -> FeedError {
        switch error {
        case .timedOut, .connectTimedOut: .timedOut(after: timeout)
        case .connectionRefused: .connectionFailed("connection refused")
        case .connectionReset: .connectionFailed("connection reset before a complete response")
        case .unsupportedURL: .invalidURL("unsupported scheme")
        case .invalidURL: .invalidURL("unparseable")
        case .httpStatus(_, let code): .httpStatus(code)
        case .tooLarge(_, let max): .tooLarge(limit: max)
        case .clientShutDown: .connectionFailed("HTTP client shut down")
        case .transport(_, let reason): .connectionFailed(reason)
        }
    }
}

/// `1.5 s`, `250 ms`.
func formatSeconds(_ d: Duration) -> String {
    let s = d.seconds
    return s < 1 ? "\(Int((s * 1000).rounded())) ms" : String(format: "%.1f s", s)
}

/// `10 MiB`, `512 KiB`, `300 bytes`.
func formatBytes(_ n: Int) -> String {
    if n >= 1 << 20, n % (1 << 20) == 0 { return "\(n >> 20) MiB" }
    if n >= 1 << 10, n % (1 << 10) == 0 { return "\(n >> 10) KiB" }
    return "\(n) bytes"
}

/// `1 entry`, `3 entries`.
func entryCount(_ n: Int) -> String { n == 1 ? "1 entry" : "\(n) entries" }
