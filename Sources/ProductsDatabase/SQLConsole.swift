import Foundation
import Logging
import PostgresNIO
import PostgresServer
import ServiceLifecycle

/// Listing 8.11's query runner: each statement the user types runs on a
/// pool of 6 connections (a `PostgresClient`, asyncpg's `create_pool`), and
/// its outcome comes back as one line to show.
///
/// Unlike the listing, it reports the real row count (the listing's "rows"
/// is the first row's column count, and a query with no rows is reported as
/// an exception), shows errors with their SQLSTATE and the server's message
/// (`PSQLError.description` is deliberately generic), and says plainly that
/// it runs one statement at a time: PostgresNIO speaks only the extended
/// query protocol, which takes one statement per call.
///
/// PostgresNIO never sends a CancelRequest, so a cancelled task's statement
/// would go on running on the server. A query whose task is cancelled
/// (the app quitting) therefore asks the server to cancel every running
/// statement of this console — `pg_cancel_backend` from a connection of its
/// own, found by the console's `application_name` — and returns only once
/// that is done, so quitting leaves no statement behind.
public final class SQLConsole: Service, Sendable {
    /// The `application_name` of the console's connections (unique per process).
    public let applicationName: String
    public let endpoint: PostgresEndpoint
    private let client: PostgresClient

    /// A console on `endpoint` with `poolSize` connections; ``run()`` must run
    /// (as a `Service`) for queries to be served.
    public init(endpoint: PostgresEndpoint, poolSize: Int = 6, applicationName: String? = nil) {
        self.endpoint = endpoint
        self.applicationName = applicationName ?? "sql-client-\(getpid())"
        client = PostgresClient(
            configuration: endpoint.clientConfiguration(size: poolSize, applicationName: self.applicationName),
            backgroundLogger: Logger(label: "sql-client", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Runs the connection pool until cancelled.
    public func run() async throws { await client.run() }

    /// Runs one statement and says how it went: "Fetched N rows by query: …",
    /// or "Error in query …: …" with the SQLSTATE.
    public func run(_ query: String) async -> String {
        let sql = query.trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = sql.count > 60 ? sql.prefix(57) + "..." : sql
        guard !sql.isEmpty else { return "Type an SQL statement, then Enter." }
        guard Self.statementCount(sql) == 1 else {
            return "One statement at a time, please: '\(shown)' holds several (PostgresNIO runs one per query)."
        }
        do {
            let rows = try await withTaskCancellationHandler {
                try await client.withConnection { connection in
                    var n = 0
                    for try await _ in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: ProductsDatabase.logger) {
                        n += 1
                    }
                    return n
                }
            } onCancel: {
                _ = self.cancelRound()  // while the query may still be waiting for the server
            }
            return "Fetched \(rows) \(rows == 1 ? "row" : "rows") by query: \(shown)"
        } catch {
            if Task.isCancelled {
                _ = await cancelRound().value  // and once more now, in case it had not yet started then
                return "Cancelled query '\(shown)' (stopped on the server too)"
            }
            return "Error in query '\(shown)': \(DatabaseError(error, endpoint: endpoint))"
        }
    }

    /// Asks the server to cancel every statement this console is running
    /// (`pg_cancel_backend`); returns how many it cancelled.
    @discardableResult
    public func cancelRunningQueries() async -> Int { await cancelRound().value }

    /// One round of cancelling, in a task of its own: it must run even when
    /// the task that asks for it is cancelled.
    private func cancelRound() -> Task<Int, Never> {
        let (endpoint, name) = (endpoint, applicationName)
        return Task {
            (try? await ProductsDatabase.withConnection(endpoint, applicationName: name + "-cancel") { c in
                try await c.run("""
                    SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity
                    WHERE application_name = \(name) AND state = 'active' AND pid <> pg_backend_pid()
                    """).rows[0].decode(Int.self)
            }) ?? 0
        }
    }

    /// How many statements `sql` holds: semicolons outside quotes, comments
    /// and dollar quotes separate them; a trailing one does not count.
    static func statementCount(_ sql: String) -> Int {
        var statements = 0
        var current = false  // the statement being read has text
        var quote: Character? = nil
        var dollarTag: String? = nil
        let chars = Array(sql)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if let tag = dollarTag {
                if c == "$", String(chars[i...].prefix(tag.count)) == tag {
                    dollarTag = nil
                    i += tag.count
                    continue
                }
            } else if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
                current = true
            } else if c == "-", i + 1 < chars.count, chars[i + 1] == "-" {
                while i < chars.count, chars[i] != "\n" { i += 1 }
                continue
            } else if c == "$", let end = chars[(i + 1)...].firstIndex(of: "$"),
                      chars[(i + 1)..<end].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                dollarTag = String(chars[i...end])
                current = true
                i = end + 1
                continue
            } else if c == ";" {
                if current { statements += 1 }
                current = false
            } else if !c.isWhitespace {
                current = true
            }
            i += 1
        }
        return statements + (current ? 1 : 0)
    }
}
