import AsyncPrimitives
import CurriculumCore
import Logging
import Hummingbird
import PostgresNIO
import PostgresServer
import ProductsDatabase

/// The SQL of chapter 9's routes, shared by the async app and its blocking
/// twin, and the errors they answer with.
public enum ProductsSQL {
    /// 9.2 and 9.5's query (the port adds `ORDER BY`, so answers compare byte
    /// for byte). With `delay`, a variant that first sleeps on the server
    /// (`pg_sleep` once, as a one-row function in the `FROM` list): a slow
    /// query for the concurrency tests.
    public static func brands(delay: Duration? = nil) -> String {
        guard let delay else { return "SELECT brand_id, brand_name FROM brand ORDER BY brand_id" }
        return "SELECT b.brand_id, b.brand_name FROM brand AS b, pg_sleep(\(delay.seconds)) ORDER BY b.brand_id"
    }

    /// 9.3's query.
    public static func product(id: Int32) -> PostgresQuery {
        "SELECT product_id, product_name, brand_id FROM product WHERE product_id = \(Int(id))"
    }

    /// 9.4's insert (the port adds `RETURNING product_id`).
    public static func insert(_ product: CreateProduct) -> PostgresQuery {
        "INSERT INTO product(product_id, product_name, brand_id) VALUES (DEFAULT, \(product.product_name), \(Int(product.brand_id))) RETURNING product_id"
    }
}

/// The errors the routes answer with, as Hummingbird `HTTPError`s (JSON
/// `{"error": {"message": …}}`).
enum APIError {
    /// The database did not answer within the route's bound, or refused.
    static func unavailable(_ why: String) -> HTTPError {
        HTTPError(.serviceUnavailable, message: "the database is unavailable: \(why)")
    }

    /// Maps a database failure of a route: a foreign-key violation is the
    /// client's (422); anything else means the database is not serving (503).
    static func from(_ error: any Error, endpoint: PostgresEndpoint) -> HTTPError {
        if let e = error as? HTTPError { return e }
        if error is TimeoutError { return unavailable("no answer in time") }
        let db = DatabaseError(error, endpoint: endpoint)
        switch db {
        case .foreignKeyViolation:
            return HTTPError(.unprocessableContent, message: "unknown brand: no brand has that brand_id")
        case .notNullViolation, .syntaxError:
            return HTTPError(.badRequest, message: "\(db)")
        default:
            return unavailable("\(db)")
        }
    }
}

/// 9.2–9.4's database access on a `PostgresClient`, every call bounded by
/// `timeout`: a client that cannot connect keeps queries waiting until its
/// circuit breaker trips (60 s in postgres-nio 1.33.2), so without a bound
/// a request would hang instead of getting its 503.
struct ProductsRepository: Sendable {
    let client: PostgresClient
    let endpoint: PostgresEndpoint
    let timeout: Duration
    let brandsDelay: Duration?
    let gauge: InFlightGauge
    let logger: Logger

    /// Runs `work` on a leased connection (counted by the gauge while leased), within `timeout`.
    private func bounded<T: Sendable>(_ work: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await withTimeout(timeout) {
                try await client.withConnection { connection in
                    gauge.enter()
                    defer { gauge.leave() }
                    return try await work(connection)
                }
            }
        } catch {
            throw APIError.from(error, endpoint: endpoint)
        }
    }

    func brands() async throws -> [BrandResponse] {
        let sql = ProductsSQL.brands(delay: brandsDelay)
        return try await bounded { connection in
            // All rows in one result: one hop back from the event loop, not one per row of the async row sequence.
            try BrandResponse.list(from: try await connection.run(PostgresQuery(unsafeSQL: sql), logger: logger).rows)
        }
    }

    func product(id: Int32) async throws -> ProductResponse? {
        try await bounded { connection in
            for try await (pid, name, brand) in try await connection.query(ProductsSQL.product(id: id), logger: logger).decode((Int, String, Int).self) {
                return ProductResponse(product_id: pid, product_name: name, brand_id: brand)
            }
            return nil
        }
    }

    func insert(_ product: CreateProduct) async throws -> Int {
        try await bounded { connection in
            for try await id in try await connection.query(ProductsSQL.insert(product), logger: logger).decode(Int.self) { return id }
            throw HTTPError(.internalServerError, message: "the insert returned no id")
        }
    }
}
