import CurriculumCore
import Foundation
import Hummingbird
import Logging
import NIOPosix
import PostgresServer
import ProductsDatabase
import ServiceLifecycle
import Threads

/// Listing 9.5's synchronous twin (Flask + psycopg2 under `gunicorn -w 8`):
/// `/brands` answered by libpq on a fixed set of blocking worker threads —
/// the package's ``Threads/ThreadPool`` with `workers` threads, each owning one
/// libpq connection (thread-confined, like one psycopg2 connection per
/// gunicorn worker). HTTP stays in Hummingbird on NIO; only the database
/// access model differs, which is what the chapter compares: at most
/// `workers` queries run at once, each holding its thread while it waits.
///
/// Unlike psycopg2, which opens a transaction and never commits (its
/// connection sits "idle in transaction"), libpq runs in autocommit mode: the
/// connections are `idle` between requests.
public final class BlockingProductsAPI: Service, Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 8081
        /// The worker threads (gunicorn's `-w 8`).
        public var workers = 8
        public var applicationName = "products-api-blocking"
        /// A server-side sleep before `/brands`' rows (tests of concurrency only).
        public var brandsDelay: Duration?

        public init(host: String = "127.0.0.1", port: Int = 8081, workers: Int = 8) {
            self.host = host
            self.port = port
            self.workers = workers
        }
    }

    public let endpoint: PostgresEndpoint
    public let configuration: Configuration
    /// Queries running now, and the peak.
    public var gauge: InFlightGauge { workers.gauge }
    /// The worker threads.
    public var pool: ThreadPool { workers.pool }
    private let workers: LibPQWorkers
    private let app: Application<RouterResponder<APIContext>>
    private let bound: BoundPort

    public init(
        endpoint: PostgresEndpoint, configuration: Configuration = .init(),
        now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "products-api-blocking", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.endpoint = endpoint
        self.configuration = configuration
        let workers = LibPQWorkers(endpoint: endpoint, threads: configuration.workers, applicationName: configuration.applicationName)
        self.workers = workers
        let router = Router(context: APIContext.self)
        ProductsAPI.addTimeRoute(to: router, now: now)
        let sql = ProductsSQL.brands(delay: configuration.brandsDelay)
        router.get("brands") { _, _ -> BrandList in
            do {
                return BrandList(try await workers.pool.run { try workers.brands(sql) })
            } catch {
                throw APIError.from(error, endpoint: endpoint)
            }
        }
        let bound = BoundPort()
        self.bound = bound
        app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "products-api-blocking"),
            onServerRunning: { bound.set($0.localAddress?.port) },
            logger: logger)
    }

    /// Serves until cancelled or shut down gracefully; then stops the workers
    /// and closes their connections.
    public func run() async throws {
        defer {
            bound.stopped()
            workers.stop()
        }
        try await app.run()
    }

    /// The bound port, once the server listens.
    public func port() async throws -> Int { try await bound.port() }

    /// libpq calls made on an event-loop thread or outside the pool (0 when correct).
    public var misplacedCalls: Int { workers.misplacedCalls }
}

/// The blocking side: a ``Threads/ThreadPool`` whose every thread owns one
/// libpq connection, opened on its first query.
final class LibPQWorkers: Sendable {
    let pool: ThreadPool
    let gauge = InFlightGauge()
    private let endpoint: PostgresEndpoint
    private let applicationName: String
    private let connections = Locked<[Int32: ThreadConfinedConnection]>([:])
    private let misplaced = Locked(0)

    init(endpoint: PostgresEndpoint, threads: Int, applicationName: String) {
        self.endpoint = endpoint
        self.applicationName = applicationName
        pool = ThreadPool(threads: max(1, threads), name: "libpq")
    }

    var misplacedCalls: Int { misplaced.withLock { $0 } }

    /// On a pool thread: that thread's connection, one blocking query.
    func brands(_ sql: String) throws -> [BrandResponse] {
        let thread = currentThreadID()
        if MultiThreadedEventLoopGroup.currentEventLoop != nil || !pool.threadIDs.contains(thread) {
            misplaced.withLock { $0 += 1 }
        }
        let connection: ThreadConfinedConnection
        if let open = connections.withLock({ $0[thread] }) {
            connection = open
        } else {
            connection = ThreadConfinedConnection(try BlockingPostgres(endpoint, applicationName: applicationName))
            connections.withLock { $0[thread] = connection }
        }
        gauge.enter()
        defer { gauge.leave() }
        return try connection.value.query(sql).map { row in
            BrandResponse(brand_id: Int(row[0] ?? "") ?? 0, brand_name: row[1] ?? "")
        }
    }

    /// Joins the threads, then closes their connections (`PQfinish`).
    func stop() {
        pool.shutdown()
        connections.withLock { $0 = [:] }
    }
}

/// A libpq connection used by exactly one pool thread (its key in the map).
private final class ThreadConfinedConnection: @unchecked Sendable {
    let value: BlockingPostgres
    init(_ value: BlockingPostgres) { self.value = value }
}
