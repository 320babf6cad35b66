import ArgumentParser
import Foundation
import PostgresServer
import PostgresNIO
import ProductsDatabase
import AsyncPrimitives
import CurriculumCore

/// `swift run -c release benchmarks postgres [--queries 10000] [--pool-size 6]`:
/// chapter 5's claim that a pool of connections queried concurrently beats one
/// connection queried in turn.
///
/// On the embedded cluster (or `DATABASE_URL`), in a database cloned from the
/// seeded template, runs N single-row queries (`SELECT brand_id, brand_name
/// FROM brand WHERE brand_id = $1`, a primary-key lookup, so round trips
/// dominate):
/// - sequentially on a blocking libpq connection (psycopg2's role), on a thread;
/// - sequentially on one PostgresNIO connection (awaits in turn);
/// - all at once on a PostgresNIO `PostgresClient` pool of `--pool-size`
///   connections (asyncpg's pool + gather).
/// Client and server share this machine's cores.
struct PostgresBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Single-row queries per second: sequential libpq vs a concurrent PostgresNIO pool."
    )

    @Option(help: "Queries per run.")
    var queries: Int = 10_000

    @Option(help: "Connections in the PostgresNIO pool.")
    var poolSize: Int = 6

    @Option(help: "Server-side latency added to every query with pg_sleep, in ms (0: none). A stand-in for a database across a network, where the book's claim lives.")
    var serverDelayMs: Int = 0

    func validate() throws {
        guard queries > 0, poolSize > 0 else { throw ValidationError("--queries and --pool-size must be > 0") }
    }

    func run() async throws {
        let server = try await EmbeddedPostgres.shared()
        print("server: \(server)")
        let n = queries
        try await withScratchProductsDatabase(.seeded) { db in
            let delay = serverDelayMs > 0 ? ", pg_sleep(\(Double(serverDelayMs) / 1000))::text" : ""
            let sql = "SELECT brand_id, brand_name\(delay) FROM brand WHERE brand_id = $1"
            if serverDelayMs > 0 { print("every query waits \(serverDelayMs) ms on the server (pg_sleep)") }
            func query(_ i: Int) -> PostgresQuery {
                var bindings = PostgresBindings()
                bindings.append(i % 100 + 1)
                return PostgresQuery(unsafeSQL: sql, binds: bindings)
            }

            // 1. Blocking libpq, one query after the other (on a thread, off the cooperative pool).
            let libpq = try await toThread { () throws -> Duration in
                let connection = try BlockingPostgres(db)
                _ = try connection.query(sql, ["1"])  // warm-up
                let start = ContinuousClock.now
                for i in 0..<n {
                    let rows = try connection.query(sql, [String(i % 100 + 1)])
                    precondition(rows.count == 1)
                }
                return ContinuousClock.now - start
            }
            report("libpq, sequential (blocking)", n, libpq)

            // 2. One PostgresNIO connection, awaited in turn.
            let nioSequential = try await ProductsDatabase.withConnection(db) { c in
                try await c.run("SELECT 1")
                let start = ContinuousClock.now
                for i in 0..<n {
                    let rows = try await c.run(query(i)).rows
                    precondition(rows.count == 1)
                }
                return ContinuousClock.now - start
            }
            report("PostgresNIO, one connection, sequential awaits", n, nioSequential)

            // 3. A pool, every query at once (PostgresClient queues leases beyond its size).
            let (pooled, peak) = try await withProductsPool(db, size: poolSize, applicationName: "bench-pool") { pool in
                // Warm up: open every connection.
                _ = try await gather((0..<poolSize).map { _ in { @Sendable in try await pool.withConnection { try await $0.run("SELECT 1") }.command } })
                pool.gauge.reset()
                let start = ContinuousClock.now
                try await withThrowingDiscardingTaskGroup { group in
                    for i in 0..<n {
                        group.addTask {
                            let rows = try await pool.withConnection {
                                try await $0.run(query(i)).rows
                            }
                            precondition(rows.count == 1)
                        }
                    }
                }
                return (ContinuousClock.now - start, pool.gauge.peak)
            }
            report("PostgresNIO pool of \(poolSize), concurrent (peak \(peak) in flight)", n, pooled)

            // 4. asyncpg, if python3 can import it (pip install asyncpg): the book's own driver.
            let asyncpg = await Self.runAsyncpg(url: db.url, n: n, size: poolSize, sql: sql)
            if let asyncpg {
                print(String(format: "asyncpg, one connection, sequential awaits: %.0f queries/s", asyncpg.sequential))
                print(String(format: "asyncpg pool of %d, gather: %.0f queries/s", poolSize, asyncpg.pooled))
            } else {
                print("asyncpg: not measured (python3 cannot import asyncpg: `pip install -r Scripts/requirements.txt`)")
            }

            let rate = { (d: Duration) in Double(n) / d.seconds }
            let speedup = rate(pooled) / rate(libpq)
            print(String(format: "pool vs sequential libpq: %.2fx (target >= 3x)", speedup))
            print(String(format: "RESULT queries=%d pool_size=%d server_delay_ms=%d libpq_sequential_qps=%.0f nio_sequential_qps=%.0f pool_concurrent_qps=%.0f speedup_vs_libpq=%.2f cores=%d",
                         n, poolSize, serverDelayMs, rate(libpq), rate(nioSequential), rate(pooled), speedup,
                         ProcessInfo.processInfo.activeProcessorCount)
                  + (asyncpg.map { String(format: " asyncpg_sequential_qps=%.0f asyncpg_pool_qps=%.0f", $0.sequential, $0.pooled) } ?? ""))
        }
    }

    /// The same two asyncpg runs as the book's listing 5.8 (a pool of `size`,
    /// `async with pool.acquire()` + `fetchrow`, gathered), in a python3 child.
    private static func runAsyncpg(url: String, n: Int, size: Int, sql: String) async -> (sequential: Double, pooled: Double)? {
        let script = """
            import asyncio, sys, time
            import asyncpg
            async def main(dsn, n, size, sql):
                pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
                async with pool.acquire() as c:
                    await c.fetchrow(sql, 1)
                    t = time.perf_counter()
                    for i in range(n):
                        await c.fetchrow(sql, i % 100 + 1)
                    seq = time.perf_counter() - t
                async def one(i):
                    async with pool.acquire() as c:
                        return await c.fetchrow(sql, i % 100 + 1)
                t = time.perf_counter()
                await asyncio.gather(*[one(i) for i in range(n)])
                pooled = time.perf_counter() - t
                await pool.close()
                print(f"{n / seq} {n / pooled}")
            asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
            """
        guard let output = try? await PythonChild.run(["-c", script, url, String(n), String(size), sql]) else { return nil }
        let numbers = output.split(whereSeparator: \.isWhitespace).compactMap { Double($0) }
        guard numbers.count == 2 else { return nil }
        return (numbers[0], numbers[1])
    }

    private func report(_ label: String, _ n: Int, _ d: Duration) {
        print(String(format: "%@: %d queries in %.3f s = %.0f queries/s", label, n, d.seconds, Double(n) / d.seconds))
    }
}
