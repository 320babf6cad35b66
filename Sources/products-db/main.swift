import ArgumentParser
import Foundation
import PostgresServer
import PostgresNIO
import ProductsDatabase

/// `swift run products-db seed`: creates and seeds the chapter 5 `products`
/// database, on `DATABASE_URL` when set, otherwise on a throwaway embedded
/// cluster that lives as long as this command (Ctrl-C stops it and deletes it).
@main
struct ProductsDB: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "products-db",
        abstract: "The products database of chapter 5 (embedded PostgreSQL by default, or DATABASE_URL).",
        subcommands: [Seed.self]
    )
}

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the `products` database, its schema, and 100 brands, 1,000 products, 100,000 SKUs.")

    @Option(help: "The random seed (same seed, same data).")
    var seed: UInt64 = ProductsSeeder.defaultSeed

    @Option(help: "The database to create and seed.")
    var database: String = "products"

    @Flag(help: "Drop the five tables first if they exist (otherwise a seeded database is left alone).")
    var reset = false

    @Flag(help: "With the embedded cluster: exit after seeding instead of serving until Ctrl-C (the cluster is then deleted).")
    var exit = false

    func run() async throws {
        let server: PostgresEndpoint
        do {
            server = try await EmbeddedPostgres.shared()
        } catch {
            print("error: \(error)")
            throw ExitCode.failure
        }
        print(server.isEmbedded ? "Started an embedded PostgreSQL cluster: \(server)" : "Using DATABASE_URL: \(server)")

        let target = try await ProductsDatabase.prepareProducts(
            on: server, database: database, seed: seed, reset: reset) { print($0) }
        print("""

            Connect with:
              psql '\(target.url)'
              export DATABASE_URL='\(target.url)'
            """)
        guard server.isEmbedded, !exit else { return }
        print("The embedded cluster runs until you press Ctrl-C (it is then stopped and deleted).")
        fflush(nil)  // flush stdout now, not at exit (it may be a pipe or a file)
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
