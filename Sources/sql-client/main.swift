// sql-client: listing 8.11's asynchronous SQL client, a full-screen terminal app.
//
//   swift run sql-client [--database-url postgres://user@host:port/db] [--pool-size 6]
//
// Each line you type runs as one SQL statement in the background on a pool
// of connections; its result ("Fetched N rows by query: …" or the error with
// its SQLSTATE) appears above the input line when it finishes, while you keep
// typing. Without --database-url or DATABASE_URL it starts an embedded
// PostgreSQL cluster with the chapter 5 products database (deleted on exit).
// Ctrl-C cancels the running statements on the server, restores the
// terminal and exits 0. A database that cannot be reached is an error within 10 s.

import ArgumentParser
import AsyncPrimitives
import Foundation
import PostgresServer
import ProductsDatabase
import Streams
import TerminalUI

@main
struct SQLClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql-client", abstract: "The asynchronous SQL client of listing 8.11.")

    @Option(name: .customLong("database-url"), help: "postgres://user:password@host:port/database (default: DATABASE_URL, else an embedded cluster).")
    var databaseURL: String?

    @Option(name: .customLong("pool-size"), help: "Connections in the pool: how many statements run at once.")
    var poolSize = 6

    func validate() throws {
        guard (1...100).contains(poolSize) else { throw ValidationError("--pool-size must be 1...100") }
        if let databaseURL { _ = try PostgresEndpoint(url: databaseURL) }
    }

    func run() async throws {
        let (url, poolSize) = (databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"], poolSize)
        let status = await TerminalSession.run(name: "sql-client") { screen, input in
            let endpoint: PostgresEndpoint
            if let url {
                endpoint = try PostgresEndpoint(url: url)
            } else {
                await screen.post("Starting an embedded PostgreSQL cluster with the products database…")
                let server = try await EmbeddedPostgres.shared()
                endpoint = try await ProductsDatabase.prepareProducts(on: server) { _ in }
            }
            // Reachable? A clear error within 10 s, not an endless retry.
            do {
                try await withTimeout(.seconds(10)) {
                    try await ProductsDatabase.withConnection(endpoint) { c in _ = try await c.run("SELECT 1") }
                }
            } catch {
                throw SQLClientError.unreachable(endpoint: endpoint, reason: error is TimeoutError ? "no answer within 10 s" : "\(error)")
            }
            let console = SQLConsole(endpoint: endpoint, poolSize: poolSize)
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await console.run() }
                await screen.post("Connected to \(endpoint.database) on \(endpoint.host):\(endpoint.port). One statement per line; Ctrl-C quits.")
                try await withThrowingDiscardingTaskGroup { queries in
                    for try await line in input.editedLines(echoingOn: screen) {
                        if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                        queries.addTask { await screen.post(await console.run(line)) }
                    }
                }
                group.cancelAll()  // end of input: stop the pool
            }
        }
        throw ExitCode(status)
    }
}

enum SQLClientError: Error, CustomStringConvertible {
    case unreachable(endpoint: PostgresEndpoint, reason: String)

    var description: String {
        switch self {
        case .unreachable(let e, let reason): "cannot reach the database \(e.database) at \(e.host):\(e.port): \(reason)"
        }
    }
}
