import AsyncHTTPClient
import NIOCore
import NIOPosix

/// How a ``WebClient`` behaves: the options of aiohttp's `ClientSession`
/// (`timeout=ClientTimeout(total:, connect:)`, `TCPConnector(limit:)`).
///
/// The defaults follow aiohttp's: a 5-minute total timeout per request, up
/// to 100 connections at once (AsyncHTTPClient's own default is 8 per host),
/// redirects followed (at most 10).
public struct WebClientConfiguration: Sendable {
    /// The default total time one request may take, from the call to the
    /// last body byte (aiohttp's `ClientTimeout.total`). A request's own
    /// `timeout:` argument overrides it.
    public var timeout: Duration
    /// How long establishing one TCP connection may take
    /// (aiohttp's `ClientTimeout.connect`); `nil` is AsyncHTTPClient's 10 s.
    public var connectTimeout: Duration?
    /// The longest silence between two received bytes (aiohttp's
    /// `sock_read`); `nil`: no limit besides the total timeout.
    public var readTimeout: Duration?
    /// Requests in flight at once to one host, each on its own connection
    /// (aiohttp's connector `limit`, 100; AHC's
    /// `concurrentHTTP1ConnectionsPerHostSoftLimit`, default 8). Requests
    /// beyond it wait for a free connection in arrival order, and their wait
    /// counts towards their total timeout. At least 1.
    public var maxConnectionsPerHost: Int
    /// Whether 3xx responses are followed (at most `maxRedirects` times).
    public var followRedirects: Bool
    /// The redirect limit when following (aiohttp's `max_redirects`, 10).
    public var maxRedirects: Int

    /// - Parameters:
    ///   - timeout: default total per request (aiohttp: 300 s).
    ///   - connectTimeout: connect timeout (`nil`: 10 s).
    ///   - readTimeout: idle-read timeout (`nil`: none).
    ///   - maxConnectionsPerHost: pool size per host (aiohttp: 100).
    ///   - followRedirects: follow 3xx responses.
    ///   - maxRedirects: redirect limit.
    public init(
        timeout: Duration = .seconds(300),
        connectTimeout: Duration? = nil,
        readTimeout: Duration? = nil,
        maxConnectionsPerHost: Int = 100,
        followRedirects: Bool = true,
        maxRedirects: Int = 10
    ) {
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.followRedirects = followRedirects
        self.maxRedirects = maxRedirects
    }

    /// The AsyncHTTPClient configuration these options stand for.
    ///
    /// Connection establishment is not retried: a refused connection fails
    /// the request at once (as in aiohttp) instead of being retried with
    /// back-off until the connect timeout.
    public var httpClientConfiguration: HTTPClient.Configuration {
        var c = HTTPClient.Configuration()
        c.timeout = .init(connect: connectTimeout.map { TimeAmount($0) }, read: readTimeout.map { TimeAmount($0) })
        c.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = maxConnectionsPerHost
        c.connectionPool.retryConnectionEstablishment = false
        c.redirectConfiguration = followRedirects
            ? .follow(max: maxRedirects, allowCycles: false) : .disallow
        return c
    }
}

/// A client session: one AsyncHTTPClient `HTTPClient` (a connection pool)
/// plus the default total timeout of its requests. aiohttp's `ClientSession`.
///
/// `Sendable`: share one across many concurrent tasks — that is the point of
/// a pool. Obtain one from ``withHTTPClient(configuration:isolation:_:)``,
/// which owns its lifetime, or wrap an `HTTPClient` you manage yourself
/// (e.g. `HTTPClient.shared`) with ``init(_:timeout:)``.
public struct WebClient: Sendable {
    /// The underlying AsyncHTTPClient client, for anything this layer lacks.
    public let http: HTTPClient
    /// The default total timeout of one request.
    public let timeout: Duration

    /// Wraps a client whose lifetime the caller manages (the caller shuts it
    /// down; `HTTPClient.shared` needs no shutdown).
    public init(_ http: HTTPClient, timeout: Duration = .seconds(300)) {
        self.init(http, timeout: timeout, maxRequestsPerHost: nil)
    }

    /// Wraps `http`; at most `maxRequestsPerHost` of the requests made
    /// through this value run at once per host, the rest wait in FIFO order
    /// (`nil`: no limit here, AsyncHTTPClient's pool queues them).
    init(_ http: HTTPClient, timeout: Duration, maxRequestsPerHost: Int?) {
        self.http = http
        self.timeout = timeout
        self.limiter = maxRequestsPerHost.map { ConnectionLimiter(limit: $0, timerLoop: http.eventLoopGroup.next()) }
    }

    /// Queues requests beyond the connection limit (see ``ConnectionLimiter``).
    let limiter: ConnectionLimiter?

    /// Requests waiting for a free connection right now (0 without a limit).
    public var queuedRequests: Int { limiter?.queued.value ?? 0 }

    /// Suspends until exactly `count` requests wait for a free connection:
    /// the evidence that a request is queued, for tests.
    public func waitUntil(queuedRequests count: Int) async throws {
        guard let limiter else { return }
        try await limiter.queued.waitUntil { $0 == count }
    }

    /// Runs `body` once `request` may start: at once without a limiter, else
    /// when a permit for its host is free (waiting until `deadline` at most).
    func admitted<T: Sendable>(
        _ request: HTTPClient.Request, deadline: NIODeadline, _ body: () async throws -> T
    ) async throws -> T {
        guard let limiter else { return try await body() }
        let host = "\(request.scheme)://\(request.host):\(request.port)"
        return try await limiter.withPermit(host: host, deadline: deadline, body)
    }
}

/// Runs `body` with a new ``WebClient`` and always shuts the client down
/// afterwards: `async with aiohttp.ClientSession(...) as session:`.
///
/// The client runs on `eventLoopGroup` (SwiftNIO's singleton group unless
/// given; the caller keeps ownership of a group it passes); `body` runs on
/// the caller's isolation. When `body` returns or throws — including by
/// cancellation — the client is shut down (`HTTPClient.shutdown()`, which
/// closes idle connections and fails requests still running) before this
/// function returns; a client used after that throws
/// ``WebClientError/clientShutDown(_:)``. An error from `body` wins over one
/// from the shutdown.
///
/// - Parameters:
///   - configuration: timeouts, pool size, redirects.
///   - eventLoopGroup: the event loops the client's connections run on.
///   - body: the code that uses the client.
/// - Returns: what `body` returns.
public func withHTTPClient<Result>(
    configuration: WebClientConfiguration = .init(),
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (WebClient) async throws -> Result
) async throws -> Result {
    guard configuration.maxConnectionsPerHost >= 1 else {
        throw WebClientConfigurationError(
            "maxConnectionsPerHost must be at least 1, not \(configuration.maxConnectionsPerHost)")
    }
    let http = HTTPClient(
        eventLoopGroup: eventLoopGroup,
        configuration: configuration.httpClientConfiguration
    )
    let client = WebClient(http, timeout: configuration.timeout, maxRequestsPerHost: configuration.maxConnectionsPerHost)
    let result: Result
    do {
        result = try await body(client)
    } catch {
        try? await http.shutdown()
        throw error
    }
    try await http.shutdown()
    return result
}

/// A ``WebClientConfiguration`` that cannot work (say a connection limit of 0),
/// thrown by ``withHTTPClient(configuration:eventLoopGroup:isolation:_:)``
/// before any client is made.
public struct WebClientConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}
