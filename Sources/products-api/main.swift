// products-api: chapter 9's products REST API (Hummingbird 2 on PostgresNIO),
// or with --blocking its synchronous twin (/brands on libpq worker threads).
//
//   swift run products-api [--port 8080] [--database-url URL] [--blocking [--workers 8]]
//   curl localhost:8080/brands
//
// Without --database-url or DATABASE_URL it starts an embedded PostgreSQL
// cluster with the chapter 5 products database (deleted on exit). A database
// that cannot be reached at start-up is an error within 10 s; one that goes
// away later gives 503s until it is back. Ctrl-C drains and exits 0.

import ArgumentParser
import AsyncPrimitives
import Foundation
import Logging
import PostgresServer
import ProductsDatabase
import ServiceLifecycle
import WebApps

@main
struct ProductsAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "products-api", abstract: "The products REST API of chapter 9 (or, with --blocking, its libpq twin).")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8080

    @Option(name: .customLong("database-url"), help: "postgres://user:password@host:port/database (default: DATABASE_URL, else an embedded cluster).")
    var databaseURL: String?

    @Flag(help: "Serve /brands from libpq on blocking worker threads (listing 9.5's Flask + gunicorn twin).")
    var blocking = false

    @Option(help: "With --blocking: the worker threads.")
    var workers = 8

    @Option(name: .customLong("pool-size"), help: "Without --blocking: the PostgresNIO pool's connections.")
    var poolSize = 6

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (1...256).contains(workers), (1...256).contains(poolSize) else { throw ValidationError("--workers and --pool-size must be 1...256") }
        if let databaseURL { _ = try PostgresEndpoint(url: databaseURL) }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "products-api")
        let endpoint: PostgresEndpoint
        if let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] {
            endpoint = try PostgresEndpoint(url: url)
        } else {
            logger.info("starting an embedded PostgreSQL cluster with the products database")
            endpoint = try await ProductsDatabase.prepareProducts(on: try await EmbeddedPostgres.shared()) { logger.info("\($0)") }
        }
        do {
            try await withTimeout(.seconds(10)) {
                try await ProductsDatabase.withConnection(endpoint) { c in _ = try await c.run("SELECT 1 FROM brand LIMIT 1") }
            }
        } catch {
            let why = error is TimeoutError ? "no answer within 10 s" : "\(error)"
            logger.error("cannot reach the products database \(endpoint.database) at \(endpoint.host):\(endpoint.port): \(why)")
            throw ExitCode.failure
        }
        let service: any Service
        let portOf: @Sendable () async throws -> Int
        if blocking {
            var configuration = BlockingProductsAPI.Configuration(host: host, port: port, workers: workers)
            configuration.applicationName = "products-api-blocking"
            let api = BlockingProductsAPI(endpoint: endpoint, configuration: configuration, logger: logger)
            (service, portOf) = (api, api.port)
        } else {
            var configuration = ProductsAPI.Configuration(host: host, port: port)
            configuration.poolSize = poolSize
            let api = ProductsAPI(endpoint: endpoint, configuration: configuration, logger: logger)
            (service, portOf) = (api, api.port)
        }
        let group = ServiceGroup(configuration: .init(
            services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                let bound = try await portOf()
                logger.info("listening on http://\(host):\(bound) (\(blocking ? "blocking, \(workers) libpq workers" : "PostgresNIO pool of \(poolSize)"))")
                print("listening \(bound)")
                fflush(nil)
            }
            try await tasks.waitForAll()
        }
        logger.info("stopped")
    }
}
