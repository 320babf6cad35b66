import Logging
import PostgresNIO
import Synchronization

/// A database transaction on one connection, begun and finished exactly once:
/// asyncpg's `Transaction` (`connection.transaction()`).
///
/// `~Copyable`: ``commit()`` and ``rollback()`` are `consuming`, so finishing
/// twice is a compile-time error, and a transaction cannot be copied into two
/// places that might both finish it. If one is dropped unfinished (an early
/// `return`), its `deinit` logs a warning and sends `ROLLBACK` without waiting.
///
/// Nesting is savepoint-aware: the outermost level issues BEGIN / COMMIT /
/// ROLLBACK; ``nested(_:)`` levels issue `SAVEPOINT sp_n` / `RELEASE SAVEPOINT
/// sp_n` / `ROLLBACK TO SAVEPOINT sp_n`, as asyncpg does. PostgresNIO's own
/// `withTransaction` is not: nested, it sends a second BEGIN, and the inner
/// ROLLBACK silently discards the outer work.
///
/// Concurrency: a transaction belongs to one leased connection and one task;
/// run its statements one after another (``query(_:)``).
public struct Transaction: ~Copyable {
    /// How inner levels are opened. Only ``savepoint`` is correct;
    /// ``naiveBegin`` exists to demonstrate (and test) the data loss.
    public enum Nesting: Sendable {
        /// SAVEPOINT / RELEASE / ROLLBACK TO (correct; the default).
        case savepoint
        /// BEGIN / COMMIT / ROLLBACK at every level (PostgresNIO's nesting: loses data).
        case naiveBegin
    }

    /// The connection the transaction lives on.
    public let connection: PostgresConnection
    /// 0 for the outermost level.
    public let depth: Int
    /// The nesting strategy for levels opened from this one.
    public let nesting: Nesting
    private let finished: Atomic<Bool>

    private init(connection: PostgresConnection, depth: Int, nesting: Nesting) {
        self.connection = connection
        self.depth = depth
        self.nesting = nesting
        self.finished = Atomic(false)
    }

    private var usesSavepoint: Bool { depth > 0 && nesting == .savepoint }
    private var savepointName: String { "sp_\(depth)" }

    /// Starts a transaction (`BEGIN`): `tx = connection.transaction(); await tx.start()`.
    public static func begin(on connection: PostgresConnection, nesting: Nesting = .savepoint) async throws -> Transaction {
        let tx = Transaction(connection: connection, depth: 0, nesting: nesting)
        try await tx.send("BEGIN")
        return tx
    }

    /// Runs one statement inside the transaction (see `PostgresConnection.run`).
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> QueryResult {
        try await connection.run(query)
    }

    /// Commits (outermost: `COMMIT`; nested: `RELEASE SAVEPOINT`).
    ///
    /// - Throws: ``DatabaseError/rolledBackAtCommit`` when the server answers
    ///   COMMIT with ROLLBACK (an earlier statement had failed).
    public consuming func commit() async throws {
        finished.store(true, ordering: .relaxed)
        if usesSavepoint {
            try await send("RELEASE SAVEPOINT \(savepointName)")
        } else {
            let result = try await connection.run("COMMIT")
            if result.command == "ROLLBACK" { throw DatabaseError.rolledBackAtCommit }
        }
    }

    /// Rolls back (outermost: `ROLLBACK`; nested: `ROLLBACK TO SAVEPOINT`),
    /// also in an aborted transaction (25P02).
    public consuming func rollback() async throws {
        finished.store(true, ordering: .relaxed)
        try await send(usesSavepoint ? "ROLLBACK TO SAVEPOINT \(savepointName)" : "ROLLBACK")
    }

    /// Runs `body` in a nested level (`async with connection.transaction()`
    /// inside another): a savepoint that `body`'s error rolls back alone.
    /// Commits (releases) when `body` returns, rolls back and rethrows when it throws.
    @discardableResult
    public func nested<R>(_ body: (borrowing Transaction) async throws -> R) async throws -> R {
        let inner = Transaction(connection: connection, depth: depth + 1, nesting: nesting)
        try await inner.send(inner.usesSavepoint ? "SAVEPOINT \(inner.savepointName)" : "BEGIN")
        return try await Transaction.finish(inner, body)
    }

    /// Commits after `body` returns, rolls back (keeping `body`'s error) after it throws.
    static func finish<R>(_ tx: consuming Transaction, _ body: (borrowing Transaction) async throws -> R) async throws -> R {
        let value: R
        do {
            value = try await body(tx)
        } catch {
            do {
                try await tx.rollback()
            } catch let rollbackError {
                ProductsDatabase.logger.warning("rollback failed after \(error): \(rollbackError)")
            }
            throw error
        }
        try await tx.commit()
        return value
    }

    private func send(_ sql: String) async throws {
        try await connection.run(PostgresQuery(unsafeSQL: sql))
    }

    deinit {
        guard !finished.load(ordering: .relaxed) else { return }
        let sql = usesSavepoint ? "ROLLBACK TO SAVEPOINT \(savepointName)" : "ROLLBACK"
        ProductsDatabase.logger.warning("transaction dropped without commit() or rollback(): sending \(sql)")
        let _: EventLoopFuture<PostgresQueryResult> = connection.query(PostgresQuery(unsafeSQL: sql), logger: ProductsDatabase.logger)
    }
}

/// Runs `body` in a transaction on `connection`: `async with
/// connection.transaction():`. Commits when `body` returns; rolls back and
/// rethrows (as ``DatabaseError`` when it came from the server) when it throws.
///
/// Nested levels: call ``Transaction/nested(_:)`` on the transaction `body`
/// receives. The connection stays leased by the caller for the whole closure:
/// never run a transaction's statements through a pool's convenience `query`.
@discardableResult
public func withTransaction<R>(
    on connection: PostgresConnection, nesting: Transaction.Nesting = .savepoint,
    _ body: (borrowing Transaction) async throws -> R
) async throws -> R {
    let tx = try await Transaction.begin(on: connection, nesting: nesting)
    return try await Transaction.finish(tx, body)
}
