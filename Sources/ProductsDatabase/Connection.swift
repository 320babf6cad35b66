import Foundation
import PostgresServer
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import CurriculumCore

/// The chapter's database helpers: connecting, the server version, the
/// product query. A namespace (asyncpg's module-level functions).
public enum ProductsDatabase {
    /// The logger the library hands to PostgresNIO (label `products-db`).
    public static let logger = Logger(label: "products-db")

    private static let nextConnectionID = Atomic<Int>(1)

    /// Opens one connection — no pool — to `endpoint`: asyncpg's `connect()`.
    ///
    /// TLS is disabled (loopback; PostgresNIO's default `.prefer` would first
    /// negotiate TLS). Suspends until the server accepts the login.
    /// Cancelling the calling task cancels the connection attempt.
    ///
    /// - Throws: ``DatabaseError/connectionRefused(host:port:)``,
    ///   ``DatabaseError/authenticationFailed(username:)``, or another
    ///   ``DatabaseError`` naming the cause.
    public static func connect(
        _ endpoint: PostgresEndpoint, applicationName: String? = nil
    ) async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(
                configuration: endpoint.connectionConfiguration(applicationName: applicationName),
                id: nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue,
                logger: logger)
        } catch {
            throw DatabaseError(error, endpoint: endpoint)
        }
    }

    /// Opens a connection, runs `body`, and always closes the connection
    /// (`async with asyncpg.connect(…)`, which asyncpg does not have: the
    /// book calls `close()` by hand).
    @discardableResult
    public static func withConnection<R>(
        _ endpoint: PostgresEndpoint, applicationName: String? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending R
    ) async throws -> sending R {
        let connection = try await connect(endpoint, applicationName: applicationName)
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// The server's version, from `SHOW server_version_num` and
    /// `SHOW server_version` (PostgresNIO has no accessor: SQL provides it).
    public static func serverVersion(on connection: PostgresConnection) async throws -> ServerVersion {
        let num = try await connection.run("SHOW server_version_num").rows.first?.decode(String.self)
        let text = try await connection.run("SHOW server_version").rows.first?.decode(String.self)
        guard let num, let text, let version = ServerVersion(versionNumber: num, text: text) else {
            throw DatabaseError.other("unexpected server version \(num ?? "?") / \(text ?? "?")")
        }
        return version
    }
}

/// A server version: asyncpg's `ServerVersion(major, minor, micro, …)`.
///
/// Since PostgreSQL 10 the number is `major * 10000 + minor` (`150018` is
/// 15.18); asyncpg reports 15.18 as `major=15, minor=0, micro=18`, this type
/// as `major 15, minor 18`.
public struct ServerVersion: Sendable, Hashable, CustomStringConvertible {
    /// e.g. 15.
    public var major: Int
    /// e.g. 18.
    public var minor: Int
    /// The server's own text, e.g. `"15.18 (Debian 15.18-0+deb12u1)"`.
    public var text: String

    /// Parses `server_version_num` (e.g. `"150018"`).
    public init?(versionNumber: String, text: String) {
        guard let n = Int(versionNumber.trimmingCharacters(in: .whitespaces)), n >= 100_000 else { return nil }
        major = n / 10_000
        minor = n % 10_000
        self.text = text
    }

    public var description: String { "\(major).\(minor)" }
}

extension PostgresEndpoint {
    /// A PostgresNIO single-connection configuration, TLS disabled.
    public func connectionConfiguration(applicationName: String? = nil) -> PostgresConnection.Configuration {
        var c = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        c.options.connectTimeout = .seconds(10)
        if let applicationName { c.options.additionalStartupParameters = [("application_name", applicationName)] }
        return c
    }

    /// A PostgresNIO pool configuration with exactly `size` connections
    /// (minimum = maximum), TLS disabled, tagged with `application_name`.
    public func clientConfiguration(size: Int, applicationName: String) -> PostgresClient.Configuration {
        var c = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        c.options.minimumConnections = size
        c.options.maximumConnections = size
        c.options.additionalStartupParameters = [("application_name", applicationName)]
        c.options.keepAliveBehavior = nil
        return c
    }

    /// A libpq connection string (`host=… port=… …`), quoted as libpq requires.
    public var libpqConnInfo: String {
        func q(_ s: String) -> String {
            "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var parts = ["host=\(q(host))", "port=\(port)", "user=\(q(username))", "dbname=\(q(database))",
                     "sslmode=disable", "connect_timeout=10"]
        if let password { parts.append("password=\(q(password))") }
        return parts.joined(separator: " ")
    }
}

/// One statement's outcome: rows and the command tag.
public struct QueryResult: Sendable {
    /// Every row (collected).
    public var rows: [PostgresRow]
    /// The command tag's verb, e.g. `"CREATE TABLE"`, `"INSERT"`, `"MOVE"`.
    public var command: String
    /// The tag's row count, when it has one (`INSERT 0 1` → 1).
    public var rowCount: Int?
}

/// Records every statement the library sends while bound: the evidence for
/// "exactly one statement was sent" and "only 100 rows crossed the wire".
///
/// Bind it like `EventLog.current`: `QueryTrace.$current.withValue(trace) { … }`.
/// Thread-safe (`Locked`).
public final class QueryTrace: Sendable {
    /// The trace that ``PostgresNIO/PostgresConnection/run(_:logger:)`` records into.
    @TaskLocal public static var current: QueryTrace?

    private let state = Locked<(statements: [String], rows: Int)>(([], 0))

    public init() {}

    /// Every SQL text sent, in order.
    public var statements: [String] { state.withLock { $0.statements } }
    /// Rows received in total.
    public var rowsReceived: Int { state.withLock { $0.rows } }

    func record(_ sql: String) { state.withLock { $0.statements.append(sql) } }
    func received(_ rows: Int) { state.withLock { $0.rows += rows } }
}

extension PostgresConnection {
    /// Runs one statement and collects its rows and command tag; errors become
    /// ``DatabaseError``. Records into ``QueryTrace/current``.
    ///
    /// One statement per string: PostgresNIO always uses the extended
    /// protocol, which rejects several commands in one string (42601).
    /// Suspends until the whole result has arrived; not cancellable once sent
    /// (use `statement_timeout` to bound a query).
    @discardableResult
    public func run(_ query: PostgresQuery, logger: Logger = ProductsDatabase.logger) async throws -> QueryResult {
        QueryTrace.current?.record(query.sql)
        // The EventLoopFuture flavour of `query` never completes on a closed
        // connection (PostgresNIO 1.33): answer for it.
        guard !isClosed else { throw DatabaseError.connectionClosed }
        do {
            let future: EventLoopFuture<PostgresQueryResult> = self.query(query, logger: logger)
            let result = try await future.get()
            QueryTrace.current?.received(result.rows.count)
            return QueryResult(rows: Array(result.rows), command: result.metadata.command, rowCount: result.metadata.rows)
        } catch {
            throw DatabaseError(error)
        }
    }
}
