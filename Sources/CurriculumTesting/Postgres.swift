// Test support for the database listings (chapters 5, 8, 9): who may run,
// one-off connections, small query helpers.

import PostgresServer
import PostgresNIO
import ProductsDatabase
import Synchronization
import Testing

extension Trait where Self == ConditionTrait {
    /// Runs the test when PostgreSQL is available (`DATABASE_URL` or the
    /// machine's server binaries) or required (`REQUIRE_POSTGRES=1`: it then
    /// fails with the same message); otherwise skips it, naming both fixes.
    public static var needsPostgres: Self {
        .enabled(if: EmbeddedPostgres.shouldRunTests, Comment(rawValue: EmbeddedPostgres.unavailableMessage))
    }
}

/// Opens a single connection to `db` for `body`, and closes it.
@discardableResult
public func withConnection<R>(
    _ db: PostgresEndpoint, isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresConnection) async throws -> sending R
) async throws -> sending R {
    try await ProductsDatabase.withConnection(db, body)
}

extension PostgresConnection {
    /// The single integer a `SELECT count(*) …` returns.
    public func count(_ query: PostgresQuery) async throws -> Int {
        try await run(query).rows[0].decode(Int.self)
    }

    /// The single text column of every row.
    public func strings(_ query: PostgresQuery) async throws -> [String] {
        try await run(query).rows.map { try $0.decode(String.self) }
    }
}

/// Counts the elements an async sequence hands out (the evidence that
/// `prefix(5)` pulls exactly five).
public final class PullCounter: Sendable {
    private let n = Atomic<Int>(0)
    public init() {}
    public func pulled() { n.add(1, ordering: .relaxed) }
    public var count: Int { n.load(ordering: .relaxed) }
}

/// A unique tag for `rendezvous` (letters, digits, `_`).
public func uniqueTag(_ prefix: String) -> String {
    "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
}
