import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import AsyncPrimitives
import CurriculumCore

/// A complete HTTP response: status, headers and the whole body.
///
/// What aiohttp's `ClientResponse` offers once `await resp.read()` returned.
public struct WebResponse: Sendable {
    /// The URL that answered (after redirects, if any were followed).
    public var url: String
    /// The status code, e.g. 200.
    public var status: Int
    /// The response headers.
    public var headers: HTTPHeaders
    /// The body (empty for `HEAD` and for ``fetchHead(client:url:method:timeout:)``).
    public var body: ByteBuffer

    /// The body decoded as UTF-8 (invalid sequences repaired).
    public var text: String { String(buffer: body) }

    /// Returns `self` if the status is below 400, else throws
    /// ``WebClientError/httpStatus(_:_:)``: aiohttp's `raise_for_status()`.
    @discardableResult
    public func raiseForStatus() throws(WebClientError) -> WebResponse {
        guard status < 400 else { throw .httpStatus(url, status) }
        return self
    }
}

/// Requests `url` and returns its status, headers and body:
/// `async with session.request(method, url, timeout=…) as resp: await resp.read()`.
///
/// Suspends until the last body byte arrived; the connection then returns to
/// the client's pool. Redirects are followed if the client's configuration
/// says so. HTTP error statuses are *not* errors (as in aiohttp): check
/// ``WebResponse/status`` or call ``WebResponse/raiseForStatus()``.
///
/// - Parameters:
///   - client: the session.
///   - url: an absolute `http://` or `https://` URL.
///   - method: the HTTP method; `.HEAD` gives an empty body.
///   - headers: extra request headers.
///   - timeout: total time allowed for this request (connect, head and
///     body); `nil` uses the client's default.
///   - maxBytes: the largest body accepted (default 10 MiB).
/// - Throws: ``WebClientError`` naming `url`; `CancellationError` if the
///   calling task is cancelled (the connection is then closed, and the
///   server sees the client go away).
public func fetch(
    client: WebClient,
    url: String,
    method: HTTPMethod = .GET,
    headers: HTTPHeaders = [:],
    timeout: Duration? = nil,
    maxBytes: Int = 10 * 1024 * 1024
) async throws -> WebResponse {
    let deadline = NIODeadline.now() + TimeAmount(timeout ?? client.timeout)
    do {
        let request = try HTTPClient.Request(url: url, method: method, headers: headers)
        let response = try await client.admitted(request, deadline: deadline) {
            try await run(
                client.http.execute(
                    request: request,
                    delegate: ResponseAccumulator(request: request, maxBodySize: maxBytes),
                    deadline: deadline))
        }
        return WebResponse(
            url: response.history.last?.request.url.absoluteString ?? url,
            status: Int(response.status.code),
            headers: response.headers,
            body: response.body ?? ByteBuffer()
        )
    } catch is ResponseAccumulator.ResponseTooBigError {
        throw WebClientError.tooLarge(url, maxBytes: maxBytes)
    } catch {
        throw WebClientError.map(error, url: url, maxBytes: maxBytes)
    }
}

/// Requests `url` and returns as soon as the response head arrives, without
/// downloading the body: for link checks and `HEAD`-like probes.
///
/// For a method other than `HEAD` the unread body is dropped, which makes
/// AsyncHTTPClient close that connection rather than return it to the pool.
/// The returned ``WebResponse/body`` is empty. Timeouts, errors and
/// cancellation as in ``fetch(client:url:method:headers:timeout:maxBytes:)``.
public func fetchHead(
    client: WebClient,
    url: String,
    method: HTTPMethod = .HEAD,
    timeout: Duration? = nil
) async throws -> WebResponse {
    let deadline = NIODeadline.now() + TimeAmount(timeout ?? client.timeout)
    do {
        let response = try await execute(client, url, method, [:], deadline)
        return WebResponse(
            url: response.history.last?.request.url ?? url,
            status: Int(response.status.code),
            headers: response.headers,
            body: ByteBuffer()
        )
    } catch {
        throw WebClientError.map(error, url: url)
    }
}

/// Waits `delay` book seconds, GETs `url` and returns the status code: the
/// book's `fetch_status(session, url, delay=0)` (listings 4.2–4.15).
///
/// The delay is ``AsyncPrimitives/delay(_:)-(Int)``, so it records
/// `"start(n)"`/`"end(n)"` in `EventLog.current` and is cancellable: a task
/// cancelled during it never sends its request. The body is read and
/// discarded, so the connection goes back to the pool. Any status, 404 and
/// 500 included, is returned, not thrown.
///
/// - Parameters:
///   - client: the session.
///   - url: the URL to GET.
///   - delay: book seconds to wait before the request (0: none).
///   - timeout: total time allowed for the request (not counting `delay`);
///     `nil` uses the client's default.
/// - Returns: the HTTP status code.
/// - Throws: ``WebClientError`` naming `url`, or `CancellationError`.
public func fetchStatus(
    client: WebClient,
    url: String,
    delay seconds: Int = 0,
    timeout: Duration? = nil
) async throws -> Int {
    if seconds > 0 { try await delay(seconds) }
    let deadline = NIODeadline.now() + TimeAmount(timeout ?? client.timeout)
    do {
        let request = try HTTPClient.Request(url: url, method: .GET)
        return try await client.admitted(request, deadline: deadline) {
            try await run(client.http.execute(request: request, delegate: StatusDelegate(), deadline: deadline))
        }
    } catch {
        throw WebClientError.map(error, url: url)
    }
}

/// Awaits an AsyncHTTPClient task; cancelling the caller cancels the request
/// (AHC then closes its connection and fails it with `.cancelled`).
///
/// The delegate-based API is used for complete requests because its deadline
/// covers the whole exchange, body included, with no extra timer task.
private func run<T: Sendable>(_ task: HTTPClient.Task<T>) async throws -> T {
    try await withTaskCancellationHandler {
        try await task.futureResult.get()
    } onCancel: {
        task.cancel()
    }
}

/// Keeps the status of the response and discards its body as it arrives.
///
/// AHC calls it on the request's event loop; the status sits in a `Locked`
/// (a TSan-visible mutex) so the class is `Sendable` as the protocol requires.
private final class StatusDelegate: HTTPClientResponseDelegate {
    typealias Response = Int
    private let status = Locked(0)

    func didReceiveHead(task: HTTPClient.Task<Int>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        status.withLock { $0 = Int(head.status.code) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Int>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Int>) throws -> Int {
        status.withLock { $0 }
    }
}

/// `client.execute` with a deadline covering connect, send and the head.
private func execute(
    _ client: WebClient,
    _ url: String,
    _ method: HTTPMethod,
    _ headers: HTTPHeaders,
    _ deadline: NIODeadline
) async throws -> HTTPClientResponse {
    var request = HTTPClientRequest(url: url)
    request.method = method
    if !headers.isEmpty { request.headers.add(contentsOf: headers) }
    // Only for its host (and the same URL errors as the other calls).
    let target = try HTTPClient.Request(url: url, method: method)
    return try await client.admitted(target, deadline: deadline) {
        try await client.http.execute(request, deadline: deadline)
    }
}
