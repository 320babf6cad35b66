import PostgresNIO
import PostgresServer

extension ProductsDatabase {
    /// Makes sure `database` exists on `server` with the chapter 5 schema and
    /// seed data (creating and seeding it only when its `brand` table is
    /// empty), and returns its endpoint: the set-up `products-db seed` and
    /// `sql-client` share. Progress goes to `report`.
    public static func prepareProducts(
        on server: PostgresEndpoint, database: String = "products", seed: UInt64 = ProductsSeeder.defaultSeed,
        reset: Bool = false, report: (String) -> Void = { _ in }
    ) async throws -> PostgresEndpoint {
        // CREATE DATABASE has no IF NOT EXISTS: look first.
        try await withConnection(server) { admin in
            let exists = try await admin.run("SELECT 1 FROM pg_database WHERE datname = \(database)").rows.isEmpty == false
            if !exists {
                try await admin.run(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(database.replacingOccurrences(of: "\"", with: "\"\""))\""))
                report("Created database \(database).")
            }
        }
        let target = server.with(database: database)
        try await withConnection(target) { c in
            if reset {
                try await c.run("DROP TABLE IF EXISTS sku, product, product_size, product_color, brand CASCADE")
            }
            try await ProductsSchema.apply(on: c)
            let brands = try await c.run("SELECT count(*) FROM brand").rows[0].decode(Int.self)
            if brands > 0 {
                report("The brand table already has \(brands) rows: not seeding again (use --reset to start over).")
            } else {
                let started = ContinuousClock.now
                let summary = try await withTransaction(on: c) { tx in
                    try await ProductsSeeder.seed(on: tx.connection, seed: seed)
                }
                report("Seeded \(summary.brands) brands, \(summary.products) products, \(summary.skus) SKUs "
                       + "in \(ContinuousClock.now - started).")
            }
        }
        return target
    }
}
