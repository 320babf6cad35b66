import CLibPQ
import PostgresServer

/// A blocking PostgreSQL connection on libpq: psycopg2's role, the contrast to
/// the async pool (every call blocks its thread until the server answers).
///
/// Not `Sendable`: like a psycopg2 connection, use it from one thread. Never
/// call it on the cooperative pool from async code: wrap the whole session in
/// `toThread` (asyncio's `to_thread`). Closed in `deinit` (`PQfinish`).
public final class BlockingPostgres {
    private let connection: OpaquePointer

    /// Connects (`psycopg2.connect`); blocks until the login completes.
    /// - Throws: ``DatabaseError`` naming the cause (refused, authentication, …).
    public init(_ endpoint: PostgresEndpoint, applicationName: String? = nil) throws {
        let info = endpoint.libpqConnInfo + (applicationName.map { " application_name='\($0.replacingOccurrences(of: "'", with: ""))'" } ?? "")
        guard let c = PQconnectdb(info) else { throw DatabaseError.other("PQconnectdb returned NULL") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c))
            PQfinish(c)
            if message.contains("refused") { throw DatabaseError.connectionRefused(host: endpoint.host, port: endpoint.port) }
            if message.contains("authentication failed") { throw DatabaseError.authenticationFailed(username: endpoint.username) }
            throw DatabaseError.other(message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        connection = c
    }

    deinit { PQfinish(connection) }

    /// Runs one statement with text parameters (`$1`, `$2`, …) and returns
    /// every row as text (NULL → nil). Blocks the calling thread.
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        let cStrings = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cStrings.forEach { free($0) } }
        let result: OpaquePointer? = cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer { buffer in
            PQexecParams(connection, sql, Int32(parameters.count), nil, buffer.baseAddress, nil, nil, 0)
        }
        guard let result else { throw DatabaseError.other(String(cString: PQerrorMessage(connection))) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            let rows = PQntuples(result), columns = PQnfields(result)
            return (0..<rows).map { r in
                (0..<columns).map { c in
                    PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c))
                }
            }
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "?"
            let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? ""
            throw DatabaseError.server(sqlState: state, message: message)
        }
    }
}

import Foundation
