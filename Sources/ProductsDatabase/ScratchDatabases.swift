import Foundation
import PostgresServer
import PostgresNIO
import Synchronization

/// What a scratch database starts from.
public enum ProductsTemplate: String, Sendable, CaseIterable {
    /// An empty database (from `template0`): for creating the schema.
    case empty
    /// Tables, reference rows (colours, sizes) and the `rendezvous` helper; no brands.
    case schema
    /// `schema` plus 100 brands, 1,000 products and 100,000 SKUs from
    /// ``ProductsSeeder/defaultSeed``.
    case seeded
}

/// Throwaway databases cloned from seeded templates — one per test, one per
/// benchmark run — on ``EmbeddedPostgres``
/// (or `DATABASE_URL`).
///
/// The first use builds two template databases once per process
/// (`products_schema`, `products_seeded`); each test then gets its own
/// database with `CREATE DATABASE … TEMPLATE …`, so tests never see each
/// other's rows and can run in parallel. Postgres refuses to clone a template
/// while a session is connected to it, so every template connection is closed
/// before the first clone.
public actor ProductsScratchDatabases {
    /// The process-wide instance.
    public static let shared = ProductsScratchDatabases()

    private var setup: Task<PostgresEndpoint, any Error>?
    private var counter = 0

    /// The names of the two templates.
    public static func templateName(_ template: ProductsTemplate) -> String {
        switch template {
        case .empty: "template0"
        case .schema: "products_schema"
        case .seeded: "products_seeded"
        }
    }

    /// The server endpoint (admin database), with the templates built.
    public func prepared() async throws -> PostgresEndpoint {
        if let setup { return try await setup.value }
        let task = Task<PostgresEndpoint, any Error> {
            let server = try await EmbeddedPostgres.shared()
            try await ProductsDatabase.withConnection(server) { admin in
                for t in [ProductsTemplate.seeded, .schema] {
                    try await admin.run(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(Self.templateName(t)) WITH (FORCE)"))
                }
                try await admin.run(PostgresQuery(unsafeSQL: "CREATE DATABASE \(Self.templateName(.schema)) TEMPLATE template0"))
            }
            try await ProductsDatabase.withConnection(server.with(database: Self.templateName(.schema))) {
                try await ProductsSchema.apply(on: $0)
            }
            try await ProductsDatabase.withConnection(server) { admin in
                try await admin.run(PostgresQuery(unsafeSQL:
                    "CREATE DATABASE \(Self.templateName(.seeded)) TEMPLATE \(Self.templateName(.schema))"))
            }
            try await ProductsDatabase.withConnection(server.with(database: Self.templateName(.seeded))) { c in
                _ = try await ProductsSeeder.seed(on: c)
                try await c.run("VACUUM ANALYZE")
            }
            return server
        }
        setup = task
        return try await task.value
    }

    /// Creates a fresh database from `template` and returns its endpoint.
    public func create(from template: ProductsTemplate) async throws -> PostgresEndpoint {
        let server = try await prepared()
        counter += 1
        let name = "test_\(getpid())_\(counter)"
        try await ProductsDatabase.withConnection(server) { admin in
            try await admin.run(PostgresQuery(unsafeSQL:
                "CREATE DATABASE \(name) TEMPLATE \(Self.templateName(template))"))
        }
        return server.with(database: name)
    }

    /// Drops a database made by ``create(from:)`` (disconnecting any session).
    public func drop(_ database: PostgresEndpoint) async throws {
        let server = try await prepared()
        try await ProductsDatabase.withConnection(server) { admin in
            try await admin.run(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database.database) WITH (FORCE)"))
        }
    }
}

/// Runs `body` with a database of its own, cloned from `template`, and drops
/// the database afterwards (also when `body` throws).
///
/// The scoped helper every Postgres test uses: `try await
/// withScratchProductsDatabase(.seeded) { db in … }` where `db` is the endpoint
/// to connect to (``ProductsDatabase/connect(_:applicationName:)``,
/// ``withProductsPool(_:size:applicationName:isolation:_:)``, libpq).
public func withScratchProductsDatabase<R>(
    _ template: ProductsTemplate = .seeded,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresEndpoint) async throws -> sending R
) async throws -> sending R {
    let db = try await ProductsScratchDatabases.shared.create(from: template)
    do {
        let value = try await body(db)
        try await ProductsScratchDatabases.shared.drop(db)
        return value
    } catch {
        try? await ProductsScratchDatabases.shared.drop(db)
        throw error
    }
}
