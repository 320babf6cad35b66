import PostgresServer
import PostgresNIO
import CurriculumCore

/// Counts connections in use right now and the peak since the last reset:
/// the evidence that a pool runs queries at once, and never more than its size.
public final class InFlightGauge: Sendable {
    private let state = Watched<(current: Int, peak: Int)>((0, 0))

    public init() {}

    /// Connections leased right now.
    public var current: Int { state.value.current }
    /// The most leased at once since creation or ``reset()``.
    public var peak: Int { state.value.peak }

    /// Starts a new measurement (peak = current).
    public func reset() { state.update { $0.peak = $0.current } }

    public func enter() {
        state.update {
            $0.current += 1
            $0.peak = max($0.peak, $0.current)
        }
    }

    public func leave() { state.update { $0.current -= 1 } }

    /// Suspends until at least `n` are in use at once (tests: "the slow
    /// queries are running now"), without polling.
    public func waitUntil(current n: Int) async throws {
        try await state.waitUntil { $0.current >= n }
    }
}

/// A connection pool of fixed size on PostgresNIO's `PostgresClient`:
/// asyncpg's `Pool`.
///
/// Obtain one with ``withProductsPool(_:size:applicationName:isolation:_:)``,
/// which runs the client for the scope's lifetime. `Sendable`: share it with
/// any number of tasks; requests beyond `size` wait in the client's queue.
public final class ProductsPool: Sendable {
    /// The PostgresNIO client (the pool itself).
    public let client: PostgresClient
    /// The number of connections (minimum = maximum).
    public let size: Int
    /// In-flight leases, measured around every ``withConnection(_:)``.
    public let gauge = InFlightGauge()

    init(client: PostgresClient, size: Int) {
        self.client = client
        self.size = size
    }

    /// Leases a connection for `body`'s duration: `async with pool.acquire()`.
    ///
    /// Suspends until a connection is free. Cancelling the caller while it
    /// waits ends the wait with an error. The connection must not escape `body`.
    public func withConnection<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        do {
            return try await client.withConnection { connection in
                gauge.enter()
                defer { gauge.leave() }
                return try await body(connection)
            }
        } catch {
            throw DatabaseError(error)
        }
    }

    /// Runs the product query on a leased connection.
    public func queryProduct(id: Int) async throws -> ProductRow? {
        try await withConnection { try await ProductsDatabase.queryProduct(id: id, on: $0) }
    }
}

/// Opens a pool of exactly `size` connections for `body`'s duration: asyncpg's
/// `async with asyncpg.create_pool(…, min_size=6, max_size=6) as pool`.
///
/// `PostgresClient` only hands out connections while its `run()` is running:
/// this runs it in a child task, and cancels it (closing every connection)
/// when `body` returns or throws. Cancelling the caller cancels both.
public func withProductsPool<R>(
    _ endpoint: PostgresEndpoint, size: Int = 6, applicationName: String = "ch5-pool",
    isolation: isolated (any Actor)? = #isolation,
    _ body: (ProductsPool) async throws -> R
) async throws -> R {
    let client = PostgresClient(configuration: endpoint.clientConfiguration(size: size, applicationName: applicationName))
    let pool = ProductsPool(client: client, size: size)
    return try await withThrowingTaskGroup(of: Void.self, returning: R.self) { group in
        group.addTask { await client.run() }
        do {
            let value = try await body(pool)
            group.cancelAll()
            return value
        } catch {
            group.cancelAll()
            throw error
        }
    }
}
