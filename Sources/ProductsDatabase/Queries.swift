import PostgresNIO
import CurriculumCore

/// A row of the `brand` table.
public struct Brand: Sendable, Hashable {
    /// `brand_id`.
    public var id: Int
    /// `brand_name`.
    public var name: String

    /// A brand value (no database access).
    public init(id: Int, name: String) {
        self.id = id
        self.name = name
    }
}

/// One product joined with one of its SKUs, colour and size names: the
/// chapter's product query (5.7, 5.8, chapter 9).
public struct ProductRow: Sendable, Hashable {
    /// `product.product_id`.
    public var productID: Int
    /// `product.product_name`.
    public var productName: String
    /// `product.brand_id`.
    public var brandID: Int
    /// `sku.sku_id` (the lowest of the product's SKUs).
    public var skuID: Int
    /// `product_color.product_color_name` of that SKU.
    public var colorName: String
    /// `product_size.product_size_name` of that SKU.
    public var sizeName: String
}

/// A product row plus the evidence of where and when it ran.
public struct ProductProbe: Sendable, Hashable {
    /// The row (nil if the product has no SKU).
    public var row: ProductRow?
    /// `pg_backend_pid()` of the connection that ran it.
    public var backendPID: Int
    /// The `rendezvous(…)` result, when one was asked for.
    public var met: Bool?
}

extension ProductsDatabase {
    /// The product query for one product id. The book takes the first row
    /// without `ORDER BY`; the port adds `ORDER BY sku_id LIMIT 1` for a
    /// deterministic single row (PostgresNIO reads whole results; asyncpg's
    /// `fetchrow` stops after one row).
    public static func productQuery(id: Int) -> PostgresQuery {
        """
        SELECT p.product_id, p.product_name, p.brand_id, s.sku_id,
               pc.product_color_name, ps.product_size_name
        FROM product AS p
        JOIN sku AS s ON s.product_id = p.product_id
        JOIN product_color AS pc ON pc.product_color_id = s.product_color_id
        JOIN product_size AS ps ON ps.product_size_id = s.product_size_id
        WHERE p.product_id = \(id)
        ORDER BY s.sku_id LIMIT 1
        """
    }

    /// Runs the product query on `connection`: `connection.fetchrow(query)`.
    public static func queryProduct(id: Int, on connection: PostgresConnection) async throws -> ProductRow? {
        try await connection.run(productQuery(id: id)).rows.first.map(decodeProduct)
    }

    /// The product query with evidence: the backend pid, optionally a
    /// `rendezvous(tag, parties, timeout)` that waits until `parties` sessions
    /// have arrived at the same tag (proof of simultaneity without a
    /// stopwatch: one session alone, or one after the other on the same
    /// connection, times out), and optionally a server-side `pg_sleep` (a latency-bound
    /// variant for timing claims).
    ///
    /// - Parameter tag: letters, digits and `_` only (it is spliced into the
    ///   SQL text as a comment so that `pg_stat_activity` shows it).
    public static func probeProduct(
        id: Int, rendezvous tag: String? = nil, parties: Int = 2, timeout: Duration = .seconds(5),
        sleep: Duration? = nil, on connection: PostgresConnection
    ) async throws -> ProductProbe {
        var select = "pg_backend_pid()"
        if let tag {
            precondition(tag.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "tag must be alphanumeric")
            select += ", rendezvous('\(tag)', \(parties), \(timeout.milliseconds))"
        }
        if let sleep { select += ", pg_sleep(\(Double(sleep.milliseconds) / 1000))::text" }
        let probe = try await connection.run(PostgresQuery(unsafeSQL: "SELECT \(select)")).rows[0]
        let pid = try probe.decode(Int.self)
        var met: Bool?
        if tag != nil {
            let (_, rendezvous) = try probe.decode((Int, Bool).self)
            met = rendezvous
        }
        let row = try await queryProduct(id: id, on: connection)
        return ProductProbe(row: row, backendPID: pid, met: met)
    }

    /// Inserts a brand with a database-generated id (listing 5.4). `name` is
    /// a bound parameter, never spliced into the SQL text.
    @discardableResult
    public static func insertBrand(_ name: String, on connection: PostgresConnection) async throws -> QueryResult {
        try await connection.run("INSERT INTO brand VALUES(DEFAULT, \(name))")
    }

    /// Every brand, ordered by id (listing 5.4's `fetch`).
    public static func allBrands(on connection: PostgresConnection) async throws -> [Brand] {
        try await connection.run("SELECT brand_id, brand_name FROM brand ORDER BY brand_id").rows.map {
            let (id, name) = try $0.decode((Int, String).self)
            return Brand(id: id, name: name)
        }
    }

    private static func decodeProduct(_ row: PostgresRow) throws -> ProductRow {
        let (pid, name, brand, sku, color, size) = try row.decode((Int, String, Int, Int, String, String).self)
        return ProductRow(productID: pid, productName: name, brandID: brand, skuID: sku, colorName: color, sizeName: size)
    }
}

