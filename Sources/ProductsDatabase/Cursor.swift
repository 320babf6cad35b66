import PostgresNIO
import Synchronization
import CurriculumCore

/// What a cursor has done so far.
public struct CursorStats: Sendable, Hashable {
    /// FETCH statements sent.
    public var fetches = 0
    /// FETCHes that returned at least one row.
    public var nonEmptyFetches = 0
    /// Rows that crossed the wire.
    public var rowsReceived = 0
    /// Rows skipped on the server by MOVE.
    public var rowsMoved = 0

    /// All zero.
    public init() {}
}

/// A server-side cursor (`DECLARE c NO SCROLL CURSOR FOR …`) read on demand:
/// asyncpg's `connection.cursor(query)`.
///
/// As an `AsyncSequence` it fetches `prefetch` rows at a time (asyncpg: 50),
/// only when the consumer has used up the previous batch, so memory holds one
/// batch, never the whole result. ``forward(_:)`` and ``fetch(_:)`` move it by
/// hand. Records `"fetch(n)"` into `EventLog.current` before the n-th FETCH.
///
/// Lives inside ``withCursor(_:prefetch:in:_:)``, which closes it at the end of
/// the scope (an iterator cannot run async clean-up when dropped). Use it from
/// one task at a time: its statements share the transaction's connection.
public final class Cursor: AsyncSequence, Sendable {
    public typealias Element = PostgresRow

    /// The cursor's SQL name.
    public let name: String
    /// Rows per FETCH when iterating.
    public let prefetch: Int
    private let connection: PostgresConnection
    private let state = Locked(CursorStats())

    init(name: String, prefetch: Int, connection: PostgresConnection) {
        self.name = name
        self.prefetch = prefetch
        self.connection = connection
    }

    /// What the cursor has done so far.
    public var stats: CursorStats { state.withLock { $0 } }

    /// `FETCH n FROM c`: the next `n` rows (fewer at the end, none past it).
    public func fetch(_ n: Int) async throws -> [PostgresRow] {
        let number = state.withLock { s -> Int in
            s.fetches += 1
            return s.fetches
        }
        EventLog.current?.record("fetch(\(number))")
        let rows = try await connection.run(PostgresQuery(unsafeSQL: "FETCH \(n) FROM \(name)")).rows
        state.withLock {
            $0.rowsReceived += rows.count
            if !rows.isEmpty { $0.nonEmptyFetches += 1 }
        }
        return rows
    }

    /// `MOVE FORWARD n IN c`: skips `n` rows on the server; returns how many
    /// were skipped (the `MOVE` tag's count). No row crosses the wire.
    @discardableResult
    public func forward(_ n: Int) async throws -> Int {
        let r = try await connection.run(PostgresQuery(unsafeSQL: "MOVE FORWARD \(n) IN \(name)"))
        let moved = r.rowCount ?? 0
        state.withLock { $0.rowsMoved += moved }
        return moved
    }

    /// An iterator that fetches `prefetch` rows whenever its buffer is empty.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(cursor: self) }

    /// Pulls one batch at a time; ends after the first empty FETCH.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let cursor: Cursor
        var buffer: [PostgresRow] = []
        var index = 0
        var done = false

        /// The next row; suspends for a FETCH when the batch is used up.
        /// Cancellation: the FETCH in flight completes (PostgresNIO queries are not cancellable).
        public mutating func next() async throws -> PostgresRow? {
            if index == buffer.count {
                guard !done else { return nil }
                buffer = try await cursor.fetch(cursor.prefetch)
                index = 0
                if buffer.isEmpty {
                    done = true
                    return nil
                }
            }
            defer { index += 1 }
            return buffer[index]
        }
    }
}

private let cursorCounter = Atomic<Int>(0)

/// Declares a server-side cursor for `query` inside `transaction`, runs `body`
/// with it, and `CLOSE`s it when `body` returns or throws.
///
/// Cursors only exist inside a transaction block (outside, the server answers
/// 25P01, and asyncpg refuses too), hence the `Transaction` parameter.
/// `query` must be a single SELECT (its parameters are bound as usual).
@discardableResult
public func withCursor<R>(
    _ query: PostgresQuery, prefetch: Int = 50, in transaction: borrowing Transaction,
    _ body: (Cursor) async throws -> R
) async throws -> R {
    let name = "c_\(cursorCounter.wrappingAdd(1, ordering: .relaxed).newValue)"
    let connection = transaction.connection
    try await connection.run(PostgresQuery(unsafeSQL: "DECLARE \(name) NO SCROLL CURSOR FOR \(query.sql)", binds: query.binds))
    let cursor = Cursor(name: name, prefetch: prefetch, connection: connection)
    let value: R
    do {
        value = try await body(cursor)
    } catch {
        // In an aborted transaction CLOSE fails too; the rollback closes it anyway.
        _ = try? await connection.run(PostgresQuery(unsafeSQL: "CLOSE \(name)"))
        throw error
    }
    try await connection.run(PostgresQuery(unsafeSQL: "CLOSE \(name)"))
    return value
}
