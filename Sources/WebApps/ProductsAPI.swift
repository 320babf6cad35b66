import CurriculumCore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import PostgresServer
import ProductsDatabase
import ServiceLifecycle

/// Chapter 9's REST API over chapter 5's products database (aiohttp + asyncpg
/// in the book): a Hummingbird 2 application whose database is a PostgresNIO
/// `PostgresClient` of 6 connections.
///
/// | route | answer |
/// |---|---|
/// | `GET /time` | 200 `{"month", "day", "time"}` (9.1) |
/// | `GET /brands` | 200 `[{"brand_id", "brand_name"}]` in id order; database down: 503 (9.2) |
/// | `GET /products/{id}` | 200 `{"product_id", "product_name", "brand_id"}`; not an Int32: 400; no row: 404 (9.3) |
/// | `POST /product` | 201 `{"product_id"}` + `Location`; bad or missing JSON: 400; unknown brand: 422; over 2 MiB: 413 (9.4) |
///
/// Errors are Hummingbird `HTTPError`s: JSON `{"error": {"message": …}}`
/// (the 413 has an empty body: Hummingbird's). Every database call is bounded
/// by `databaseTimeout`, so an unreachable database is a 503, not a hang.
///
/// Lifecycle (aiohttp's `on_startup`/`on_cleanup` hooks): the client is a
/// `Service` of the application, started with the server; graceful shutdown
/// stops the server first, then the pool.
public final class ProductsAPI: Service, Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0: any free port (read it with ``port()``).
        public var port = 8080
        /// The pool's connections (the book's asyncpg pool: 6).
        public var poolSize = 6
        /// The bound on every database call.
        public var databaseTimeout: Duration = .seconds(2)
        /// The `application_name` of the pool's connections.
        public var applicationName = "products-api"
        /// A server-side sleep before `/brands`' rows (tests of concurrency only).
        public var brandsDelay: Duration?

        public init(host: String = "127.0.0.1", port: Int = 8080) {
            self.host = host
            self.port = port
        }
    }

    public let endpoint: PostgresEndpoint
    public let configuration: Configuration
    /// Database calls running now, and the peak.
    public let gauge = InFlightGauge()
    private let app: Application<RouterResponder<APIContext>>
    private let bound: BoundPort

    /// - Parameters:
    ///   - now: the clock `/time` reads (injectable for tests).
    public init(
        endpoint: PostgresEndpoint, configuration: Configuration = .init(),
        now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "products-api", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.endpoint = endpoint
        self.configuration = configuration
        let client = PostgresClient(
            configuration: endpoint.clientConfiguration(size: configuration.poolSize, applicationName: configuration.applicationName),
            backgroundLogger: logger)
        let repository = ProductsRepository(
            client: client, endpoint: endpoint, timeout: configuration.databaseTimeout,
            brandsDelay: configuration.brandsDelay, gauge: gauge, logger: logger)
        let router = Router(context: APIContext.self)
        Self.addTimeRoute(to: router, now: now)
        router.get("brands") { _, _ in BrandList(try await repository.brands()) }
        router.get("products/:id") { _, context -> ProductResponse in
            let id = try context.parameters.require("id", as: Int32.self)
            guard let product = try await repository.product(id: id) else {
                throw HTTPError(.notFound, message: "no product has product_id \(id)")
            }
            return product
        }
        router.post("product") { request, context -> EditedResponse<CreatedProduct> in
            let new = try await request.decode(as: CreateProduct.self, context: context)
            let id = try await repository.insert(new)
            return EditedResponse(status: .created, headers: [.location: "/products/\(id)"], response: CreatedProduct(product_id: id))
        }
        let bound = BoundPort()
        self.bound = bound
        app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "products-api"),
            services: [client],
            onServerRunning: { bound.set($0.localAddress?.port) },
            logger: logger)
    }

    /// Serves until cancelled or shut down gracefully (server first, then the pool).
    public func run() async throws {
        defer { bound.stopped() }
        try await app.run()
    }

    /// The bound port, once the server listens.
    public func port() async throws -> Int { try await bound.port() }

    /// 9.1's route, shared with the blocking twin.
    static func addTimeRoute(to router: Router<APIContext>, now: @escaping @Sendable () -> Date) {
        router.get("time") { request, context -> TimeOfDayResponse in
            context.logger.debug("GET /time", metadata: ["headers": "\(request.headers)"])
            return TimeOfDayResponse(now())
        }
    }
}

/// The request context of both apps: Hummingbird's basic one, with JSON
/// keys sorted so that answers are the same bytes every time (Foundation's
/// encoder otherwise orders keys as its dictionary happens to).
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    public var responseEncoder: JSONEncoder { Self.encoder }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}

/// A server's port, known once it listens (`onServerRunning`).
final class BoundPort: Sendable {
    private let port = Watched<Int?>(nil)

    func set(_ value: Int?) { port.update { $0 = value } }

    /// The run ended: waiters get an error instead of waiting forever.
    func stopped() { port.stop(with: WebAppError.notRunning) }

    func port() async throws -> Int {
        try await port.waitUntil { $0 != nil }
        guard let value = port.value else { throw WebAppError.notRunning }
        return value
    }
}

/// A web app that is not (or no longer) serving.
public enum WebAppError: Error, Sendable, CustomStringConvertible {
    case notRunning

    public var description: String { "the server is not running" }
}
