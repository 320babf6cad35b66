import CCurl
import CurriculumCore

/// A blocking HTTP client on libcurl: the role of Python's `requests` library.
///
/// `BlockingHTTP.get` sends one request and does not return until the whole
/// response has arrived (or the transfer failed): the calling **OS thread**
/// sits idle in the kernel while bytes travel. That is the point of the
/// book's listings 1.7, 1.7a and 2.20.
///
/// Concurrency:
/// - Every call creates, uses and frees its own libcurl easy handle, so any
///   number of threads may call `get` at once (libcurl's rule: one handle per
///   thread at a time). `curl_global_init` runs exactly once, on first use.
/// - Blocking: never call it on the cooperative thread pool from async code
///   that should stay responsive — each call parks a pool thread for the whole
///   transfer (listing 2.20 shows the damage). From async code, run it on a
///   dedicated thread (`spawnThread`, a `ThreadPool`, or `toThread`).
/// - Cancellation: none. A Swift task cancelled while a thread is inside
///   `get` does not interrupt the transfer; bound it with `timeout`.
public enum BlockingHTTP {
    /// Listing 7.3's helper: a blocking GET that returns the status code
    /// (`requests.get(url).status_code`). A status such as 503 is returned,
    /// not thrown; only a failed transfer throws.
    public static func statusCode(_ url: String, timeout: Duration? = .seconds(30)) throws(BlockingHTTPError) -> Int {
        try get(url, timeout: timeout).status
    }

    /// Performs a GET of `url` and returns the status code and the body.
    ///
    /// Like `requests.get`, an HTTP error status (404, 500 …) is not an
    /// error: it is returned as `status`. Redirects are followed. Loopback
    /// addresses never go through a proxy.
    ///
    /// - Parameters:
    ///   - url: an absolute `http://` or `https://` URL.
    ///   - timeout: the limit for the whole transfer (connect included);
    ///     `nil` waits as long as it takes.
    /// - Returns: the final response's status code and its body bytes.
    /// - Throws: ``BlockingHTTPError`` naming `url`, when no HTTP response
    ///   could be read (bad URL, refused connection, timeout, reset …).
    public static func get(_ url: String, timeout: Duration? = nil) throws(BlockingHTTPError) -> (status: Int, body: [UInt8]) {
        let initCode = globalInit
        guard initCode == CURLE_OK else {
            throw .transfer(url: url, code: Int(initCode.rawValue), message: "curl_global_init failed")
        }
        guard let handle = curl_easy_init() else {
            throw .transfer(url: url, code: -1, message: "curl_easy_init returned NULL")
        }
        defer { curl_easy_cleanup(handle) }

        let sink = BodySink()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        defer { errorBuffer.deallocate() }

        let code: CURLcode = withExtendedLifetime(sink) {
            // NOSIGNAL is required in multithreaded programs: without it libcurl
            // may use SIGALRM for DNS timeouts, which is not thread-safe.
            var setup = ccurl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            if setup == CURLE_OK { setup = ccurl_easy_setopt_string(handle, CURLOPT_URL, url) }
            if setup == CURLE_OK { setup = ccurl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1) }
            if setup == CURLE_OK { setup = ccurl_easy_setopt_string(handle, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1") }
            if setup == CURLE_OK { setup = ccurl_easy_setopt_string(handle, CURLOPT_USERAGENT, "asyncio-curriculum BlockingHTTP") }
            if setup == CURLE_OK { setup = ccurl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer) }
            if setup == CURLE_OK { setup = ccurl_easy_setopt_write_function(handle, writeCallback) }
            if setup == CURLE_OK {
                setup = ccurl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
            }
            if setup == CURLE_OK, let timeout {
                setup = ccurl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, timeout.milliseconds))
            }
            guard setup == CURLE_OK else { return setup }
            return curl_easy_perform(handle)
        }

        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw BlockingHTTPError(url: url, code: code, message: message)
        }
        var status = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return (status, sink.bytes)
    }

    /// `curl_global_init`, run once (a global `let` is initialised lazily and
    /// exactly once, even when several threads race to read it).
    private static let globalInit: CURLcode = ccurl_global_init_default()
}

/// Why ``BlockingHTTP/get(_:timeout:)`` could not read a response. Every case
/// names the URL, so a failure among many requests says which one failed.
public enum BlockingHTTPError: Error, Equatable, CustomStringConvertible {
    /// libcurl rejected the URL (malformed, or an unsupported scheme).
    case invalidURL(url: String, message: String)
    /// The connection could not be made (refused, unresolvable host …).
    case connectionFailed(url: String, message: String)
    /// The `timeout` elapsed before the response was complete.
    case timedOut(url: String, message: String)
    /// Any other transfer failure (reset, empty reply …), with libcurl's code.
    case transfer(url: String, code: Int, message: String)

    /// The URL of the failed request.
    public var url: String {
        switch self {
        case .invalidURL(let url, _), .connectionFailed(let url, _),
             .timedOut(let url, _), .transfer(let url, _, _):
            return url
        }
    }

    public var description: String {
        switch self {
        case .invalidURL(let url, let message): "invalid URL \(url): \(message)"
        case .connectionFailed(let url, let message): "could not connect to \(url): \(message)"
        case .timedOut(let url, let message): "GET \(url) timed out: \(message)"
        case .transfer(let url, let code, let message): "GET \(url) failed (curl \(code)): \(message)"
        }
    }

    init(url: String, code: CURLcode, message: String) {
        switch code {
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            self = .invalidURL(url: url, message: message)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            self = .connectionFailed(url: url, message: message)
        case CURLE_OPERATION_TIMEDOUT:
            self = .timedOut(url: url, message: message)
        default:
            self = .transfer(url: url, code: Int(code.rawValue), message: message)
        }
    }
}

/// Collects the body bytes libcurl hands to the write callback. Used by one
/// transfer on one thread only (libcurl calls the callback synchronously
/// inside `curl_easy_perform`), so it needs no lock and is not `Sendable`.
private final class BodySink {
    var bytes: [UInt8] = []
}

/// CURLOPT_WRITEFUNCTION: appends each chunk to the `BodySink` in `userdata`.
private let writeCallback: ccurl_write_callback = { data, size, count, userdata in
    let length = size * count
    guard let userdata else { return 0 }
    let sink = Unmanaged<BodySink>.fromOpaque(userdata).takeUnretainedValue()
    if let data, length > 0 {
        sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
    }
    return length
}
