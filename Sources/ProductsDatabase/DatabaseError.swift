import Foundation
import PostgresServer
import NIOCore
import NIOPosix
import PostgresNIO

/// A database failure, typed by its cause: the Swift face of asyncpg's
/// exception classes (`UniqueViolationError`, `PostgresSyntaxError`, …).
///
/// Built from PostgresNIO's `PSQLError` by reading the server's SQLSTATE
/// (`serverInfo[.sqlState]`) or the underlying socket error.
public enum DatabaseError: Error, Equatable, CustomStringConvertible {
    /// Nothing listens at `host:port` (ECONNREFUSED).
    case connectionRefused(host: String, port: Int)
    /// The server refused the login (28P01 / 28000).
    case authenticationFailed(username: String)
    /// The connection was closed (by us or by the server).
    case connectionClosed
    /// 42601: the SQL does not parse (or holds several commands).
    case syntaxError(message: String)
    /// 23505: a unique or primary-key constraint was violated.
    case uniqueViolation(constraint: String)
    /// 23502: a NOT NULL column received NULL.
    case notNullViolation(column: String)
    /// 23503: a foreign key points nowhere.
    case foreignKeyViolation(constraint: String)
    /// 25P02: an earlier statement failed; only ROLLBACK is accepted now.
    case inFailedTransaction
    /// 25P01: the statement needs a transaction block (e.g. DECLARE CURSOR).
    case noActiveTransaction
    /// 57014: the statement was cancelled (statement_timeout, pg_cancel_backend).
    case queryCancelled(message: String)
    /// COMMIT found the transaction already aborted: the server rolled it back.
    case rolledBackAtCommit
    /// Any other server error.
    case server(sqlState: String, message: String)
    /// Anything else (decoding, protocol, I/O).
    case other(String)

    /// The SQLSTATE this error stands for, when it came from the server.
    public var sqlState: String? {
        switch self {
        case .authenticationFailed: "28P01"
        case .syntaxError: "42601"
        case .uniqueViolation: "23505"
        case .notNullViolation: "23502"
        case .foreignKeyViolation: "23503"
        case .inFailedTransaction: "25P02"
        case .noActiveTransaction: "25P01"
        case .queryCancelled: "57014"
        case .server(let state, _): state
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .connectionRefused(let h, let p): "connection refused by \(h):\(p) (is the server running?)"
        case .authenticationFailed(let u): "password authentication failed for user \"\(u)\""
        case .connectionClosed: "the connection is closed"
        case .syntaxError(let m): "SQL syntax error (42601): \(m)"
        case .uniqueViolation(let c): "unique violation (23505) of constraint \(c)"
        case .notNullViolation(let c): "not-null violation (23502) in column \(c)"
        case .foreignKeyViolation(let c): "foreign-key violation (23503) of constraint \(c)"
        case .inFailedTransaction: "current transaction is aborted (25P02): roll back first"
        case .noActiveTransaction: "no transaction in progress (25P01)"
        case .queryCancelled(let m): "query cancelled (57014): \(m)"
        case .rolledBackAtCommit: "COMMIT found an aborted transaction: it was rolled back"
        case .server(let s, let m): "server error \(s): \(m)"
        case .other(let m): m
        }
    }

    /// Classifies any error thrown by PostgresNIO (or already a `DatabaseError`).
    /// `endpoint` names host and port for connection failures.
    public init(_ error: any Error, endpoint: PostgresEndpoint? = nil) {
        if let e = error as? DatabaseError { self = e; return }
        if let t = error as? PostgresTransactionError {
            let inner = t.closureError ?? t.beginError ?? t.commitError ?? t.rollbackError
            self = inner.map { DatabaseError($0, endpoint: endpoint) } ?? .other(String(describing: t))
            return
        }
        guard let p = error as? PSQLError else {
            self = Self.socketError(error, endpoint: endpoint) ?? .other(String(describing: error))
            return
        }
        switch p.code {
        case .server:
            let state = p.serverInfo?[.sqlState] ?? "?"
            let message = p.serverInfo?[.message] ?? ""
            switch state {
            case "28P01", "28000": self = .authenticationFailed(username: endpoint?.username ?? Self.quoted(in: message))
            case "42601": self = .syntaxError(message: message)
            case "23505": self = .uniqueViolation(constraint: p.serverInfo?[.constraintName] ?? "")
            case "23502": self = .notNullViolation(column: p.serverInfo?[.columnName] ?? "")
            case "23503": self = .foreignKeyViolation(constraint: p.serverInfo?[.constraintName] ?? "")
            case "25P02": self = .inFailedTransaction
            case "25P01": self = .noActiveTransaction
            case "57014": self = .queryCancelled(message: message)
            default: self = .server(sqlState: state, message: message)
            }
        case .clientClosedConnection, .serverClosedConnection:
            self = .connectionClosed
        case .connectionError:
            self = p.underlying.flatMap { Self.socketError($0, endpoint: endpoint) }
                ?? .other("connection error: \(String(describing: p.underlying))")
        default:
            self = .other(String(describing: p))
        }
    }

    private static func socketError(_ error: any Error, endpoint: PostgresEndpoint?) -> DatabaseError? {
        let refused: Bool
        if let io = error as? IOError {
            refused = io.errnoCode == ECONNREFUSED
        } else if let c = error as? NIOConnectionError {
            refused = c.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
        } else {
            refused = String(describing: error).localizedLowercase.contains("refused")
        }
        guard refused else { return nil }
        return .connectionRefused(host: endpoint?.host ?? "?", port: endpoint?.port ?? 0)
    }

    private static func quoted(in message: String) -> String {
        let parts = message.split(separator: "\"")
        return parts.count >= 2 ? String(parts[1]) : ""
    }
}
