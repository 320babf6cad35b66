import CurriculumTesting
import Foundation
import LocalServices
import PostgresServer
import PostgresNIO
import ProductsDatabase
import Synchronization
import Testing
import AsyncPrimitives
import CurriculumCore

/// Chapter 5 · Non-blocking database drivers: asyncpg becomes PostgresNIO
/// (`PostgresClient` is the pool), psycopg2 becomes libpq.
///
/// Every Postgres test runs against a real server: the embedded throwaway
/// cluster (or `DATABASE_URL`), each in its own database cloned from a
/// template (`withScratchProductsDatabase(.schema | .seeded | .empty)`).
/// `u` is one book second (`Book.second`).
@Suite("Chapter 5 · Non-blocking database drivers", .curriculum, .timeLimit(.minutes(3)))
struct Chapter5 {
    var u: Duration { Book.second }

    // MARK: - Connecting and the schema

    @Test("Listing 5.1 — Connecting to a Postgres database as the default user", .tags(.postgres), .needsPostgres)
    func listing5_1() async throws {
        // Book: asyncpg.connect succeeds and reports a structured server version (15.x → major 15).
        // Swift: PostgresConnection.connect (no pool); PostgresNIO has no version accessor, SQL provides it.
        let server = try await ProductsScratchDatabases.shared.prepared()  // the `postgres` database
        let connection = try await ProductsDatabase.connect(server)
        let version = try await ProductsDatabase.serverVersion(on: connection)
        try await connection.close()

        if server.isEmbedded {
            #expect(version.major == EmbeddedPostgres.binaryMajorVersion())
        } else {
            #expect(version.major >= 12)
        }
        #expect(version.text.hasPrefix("\(version.major)."))
        // After close(), the connection refuses work with a typed error.
        await #expect(throws: DatabaseError.connectionClosed) { try await connection.run("SELECT 1") }
        // Nothing listening: a typed error naming host and port.
        let refusing = try RefusingPort()
        defer { refusing.close() }
        var nowhere = server
        nowhere.host = "127.0.0.1"
        nowhere.port = refusing.port
        await #expect(throws: DatabaseError.connectionRefused(host: "127.0.0.1", port: refusing.port)) {
            _ = try await ProductsDatabase.connect(nowhere)
        }
    }

    @Test("Listing 5.2 — Table-creation commands for the products schema", .tags(.postgres), .needsPostgres)
    func listing5_2() async throws {
        // Book: a module of SQL constants defines five tables (and reference rows); it executes nothing.
        // Swift: one statement per string — PostgresNIO's extended protocol rejects multi-command strings (42601).
        try await withScratchProductsDatabase(.empty) { db in
            try await withConnection(db) { c in
                for sql in ProductsSchema.createTables { try await c.run(PostgresQuery(unsafeSQL: sql)) }

                let tables = try await c.strings("""
                    SELECT table_name::text FROM information_schema.tables
                    WHERE table_schema = 'public' ORDER BY table_name
                    """)
                #expect(tables == ["brand", "product", "product_color", "product_size", "sku"])

                let columns = try await c.run("""
                    SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
                    FROM information_schema.columns WHERE table_schema = 'public'
                    ORDER BY table_name, ordinal_position
                    """).rows.map { try $0.decode((String, String, String, String).self) }
                let expected: [(String, String, String)] = [
                    ("brand", "brand_id", "integer"), ("brand", "brand_name", "text"),
                    ("product", "product_id", "integer"), ("product", "product_name", "text"),
                    ("product", "brand_id", "integer"),
                    ("product_color", "product_color_id", "integer"), ("product_color", "product_color_name", "text"),
                    ("product_size", "product_size_id", "integer"), ("product_size", "product_size_name", "text"),
                    ("sku", "sku_id", "integer"), ("sku", "product_id", "integer"),
                    ("sku", "product_size_id", "integer"), ("sku", "product_color_id", "integer"),
                ]
                #expect(columns.map { "\($0.0).\($0.1):\($0.2)" } == expected.map { "\($0.0).\($0.1):\($0.2)" })
                #expect(columns.allSatisfy { $0.3 == "NO" })  // every column NOT NULL

                let foreignKeys = try await c.run("""
                    SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
                    WHERE contype = 'f' ORDER BY 1, 2
                    """).rows.map { try $0.decode((String, String).self) }
                #expect(foreignKeys.map { "\($0.0)→\($0.1)" }
                        == ["product→brand", "sku→product", "sku→product_color", "sku→product_size"])

                // Why the statements are split: two commands in one string fail on the extended protocol.
                let twoCommands = ProductsSchema.referenceRows[0] + "; " + ProductsSchema.referenceRows[1]
                let error = await #expect(throws: DatabaseError.self) {
                    try await c.run(PostgresQuery(unsafeSQL: twoCommands))
                }
                #expect(error?.sqlState == "42601")
                #expect(try await c.count("SELECT count(*) FROM product_color") == 0)
            }
        }
        // The psql/compose copy of the schema holds the same five tables.
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fixtures/products/schema.sql").standardized
        let text = try String(contentsOf: fixture, encoding: .utf8)
        for table in ["brand", "product", "product_color", "product_size", "sku"] {
            #expect(text.contains("CREATE TABLE IF NOT EXISTS \(table)("))
        }
    }

    @Test("Listing 5.3 — Using execute to run the create commands", .tags(.postgres), .needsPostgres)
    func listing5_3() async throws {
        // Book: execute returns a status per statement: CREATE TABLE ×5, then INSERT 0 1 per reference block.
        // Swift: the EventLoopFuture flavour of query() exposes the tag (PostgresQueryResult.metadata).
        try await withScratchProductsDatabase(.empty) { db in
            try await withConnection(db) { c in
                var tags: [String] = []
                var rowCounts: [Int?] = []
                for sql in ProductsSchema.createTables + ProductsSchema.referenceRows {
                    let result = try await c.run(PostgresQuery(unsafeSQL: sql))
                    tags.append(result.command)
                    rowCounts.append(result.rowCount)
                }
                #expect(tags == Array(repeating: "CREATE TABLE", count: 5) + Array(repeating: "INSERT", count: 5))
                #expect(rowCounts.suffix(5).allSatisfy { $0 == 1 })
                #expect(try await c.count("SELECT count(*) FROM product_color") == 2)
                #expect(try await c.count("SELECT count(*) FROM product_size") == 3)

                // Running the listing again: the CREATEs pass (IF NOT EXISTS), the first insert fails.
                for sql in ProductsSchema.createTables { try await c.run(PostgresQuery(unsafeSQL: sql)) }
                await #expect(throws: DatabaseError.uniqueViolation(constraint: "product_color_pkey")) {
                    try await c.run(PostgresQuery(unsafeSQL: ProductsSchema.referenceRows[0]))
                }
                // The library's apply is re-runnable (ON CONFLICT DO NOTHING).
                try await ProductsSchema.apply(on: c)
                try await ProductsSchema.apply(on: c)
                #expect(try await c.count("SELECT count(*) FROM product_color") == 2)
                #expect(try await c.count("SELECT count(*) FROM product_size") == 3)
            }
        }
    }

    @Test("Listing 5.4 — Inserting and selecting brands", .tags(.postgres), .needsPostgres)
    func listing5_4() async throws {
        // Book: fetch returns records; on a fresh table (1, Levis) and (2, Seven).
        // Swift: string interpolation binds values as parameters; rows decode into typed tuples.
        try await withScratchProductsDatabase(.schema) { db in
            try await withConnection(db) { c in
                try await ProductsDatabase.insertBrand("Levis", on: c)
                try await ProductsDatabase.insertBrand("Seven", on: c)
                let brands = try await ProductsDatabase.allBrands(on: c)
                #expect(brands == [Brand(id: 1, name: "Levis"), Brand(id: 2, name: "Seven")])

                // A quote is bound, not spliced: it round-trips unchanged.
                try await ProductsDatabase.insertBrand("Levi's", on: c)
                #expect(try await ProductsDatabase.allBrands(on: c).last == Brand(id: 3, name: "Levi's"))
            }
        }
    }

    @Test("Listing 5.5 — Inserting random brands", .tags(.postgres), .needsPostgres)
    func listing5_5() async throws {
        // Book: executemany inserts 100 brands (the first 100 words, shuffled) in one call.
        // Swift: no executemany in PostgresNIO: one INSERT … SELECT * FROM UNNEST($1::text[]).
        // The book keeps each line's trailing newline in the name ("One\n"); the port trims.
        let words = try ProductsSeeder.words()
        #expect(words.count == 1_000 && Set(words).count == 1_000)
        func insertRandomBrands(into db: PostgresEndpoint) async throws -> (statements: Int, brands: [Brand]) {
            try await withConnection(db) { c in
                var rng = SplitMix64(seed: 42)
                let names = ProductsSeeder.brandNames(from: words, using: &rng)
                let trace = QueryTrace()
                let inserted = try await QueryTrace.$current.withValue(trace) {
                    try await ProductsSeeder.insertBrands(names, on: c)
                }
                #expect(inserted == 100)
                return (trace.statements.count, try await ProductsDatabase.allBrands(on: c))
            }
        }
        let first = try await withScratchProductsDatabase(.schema) { try await insertRandomBrands(into: $0) }
        let second = try await withScratchProductsDatabase(.schema) { try await insertRandomBrands(into: $0) }

        #expect(first.statements == 1)
        #expect(first.brands.count == 100)
        let expected = Set(words.prefix(100).map { $0.prefix(1).uppercased() + $0.dropFirst() })
        #expect(Set(first.brands.map(\.name)) == expected)
        #expect(first.brands.map(\.name) != words.prefix(100).map { $0.prefix(1).uppercased() + $0.dropFirst() })
        #expect(first.brands.allSatisfy { !$0.name.contains(where: \.isWhitespace) })
        #expect(first.brands == second.brands)  // same seed, same id → name mapping
    }

    @Test("Listing 5.6 — Inserting random products and SKUs", .tags(.postgres), .needsPostgres)
    func listing5_6() async throws {
        // Book: executemany inserts 1,000 products (10-word names, brand 1–100) and 100,000 SKUs.
        // Swift: the same data from a seeded SplitMix64, each table in one UNNEST statement.
        let words = try ProductsSeeder.words()
        let vocabulary = Set(words)
        try await withScratchProductsDatabase(.schema) { db in
            try await withConnection(db) { c in
                var rng = SplitMix64(seed: ProductsSeeder.defaultSeed)
                try await ProductsSeeder.insertBrands(ProductsSeeder.brandNames(from: words, using: &rng), on: c)
                // (How fast this is belongs to `benchmarks postgres`, not to a stopwatch here.)
                let products = ProductsSeeder.products(words: words, using: &rng)
                let skus = ProductsSeeder.skus(using: &rng)
                #expect(try await ProductsSeeder.insertProducts(products, on: c) == 1_000)
                #expect(try await ProductsSeeder.insertSKUs(skus, on: c) == 100_000)

                #expect(try await c.count("SELECT count(*) FROM product") == 1_000)
                #expect(try await c.count("SELECT count(*) FROM sku") == 100_000)
                let names = try await c.strings("SELECT product_name FROM product ORDER BY product_id")
                #expect(names.allSatisfy { name in
                    let parts = name.lowercased().split(separator: " ").map(String.init)
                    return parts.count == 10 && Set(parts).count == 10 && parts.allSatisfy(vocabulary.contains)
                })
                #expect(names.first == "Tinkered reposes apostasy crazy dune factotum decrepit dozens trickled deprives")
                let (minBrand, maxBrand) = try await c.run("SELECT min(brand_id), max(brand_id) FROM product")
                    .rows[0].decode((Int, Int).self)
                #expect(minBrand >= 1 && maxBrand <= 100)
                #expect(Set(try await c.run("SELECT DISTINCT product_size_id FROM sku").rows.map { try $0.decode(Int.self) })
                        .isSubset(of: [1, 2, 3]))
                #expect(Set(try await c.run("SELECT DISTINCT product_color_id FROM sku").rows.map { try $0.decode(Int.self) })
                        .isSubset(of: [1, 2]))
                #expect(try await c.count("""
                    SELECT count(*) FROM sku s JOIN product p USING (product_id)
                    JOIN product_size USING (product_size_id) JOIN product_color USING (product_color_id)
                    """) == 100_000)
                #expect(try await c.count("""
                    SELECT count(*) FROM product p
                    WHERE NOT EXISTS (SELECT 1 FROM sku s WHERE s.product_id = p.product_id)
                    """) == 0)
            }
        }
    }

    // MARK: - Pools

    @Test("Listing 5.7 — Creating a connection pool and running queries concurrently", .tags(.postgres), .needsPostgres)
    func listing5_7() async throws {
        // Book: two queries gathered on a pool of 6 each borrow their own connection and run at once.
        // Swift: PostgresClient is the pool and must be run; simultaneity is proven by a server-side rendezvous.
        try await withScratchProductsDatabase(.seeded) { db in
            try await withProductsPool(db, size: 6, applicationName: "ch5-pool") { pool in
                let tag = uniqueTag("l57")
                async let a = pool.withConnection {
                    try await ProductsDatabase.probeProduct(id: 100, rendezvous: tag, timeout: .seconds(20), on: $0)
                }
                async let b = pool.withConnection {
                    try await ProductsDatabase.probeProduct(id: 100, rendezvous: tag, timeout: .seconds(20), on: $0)
                }
                let (first, second) = try await (a, b)

                let row = try #require(first.row)
                #expect(first.row == second.row)
                #expect(row.productID == 100)
                #expect(["Blue", "Black"].contains(row.colorName))
                #expect(["Small", "Medium", "Large"].contains(row.sizeName))
                #expect(first.backendPID != second.backendPID)  // one connection is never leased twice at once
                #expect(first.met == true && second.met == true)  // both were active at the same moment

                let backends = try await pool.withConnection {
                    try await $0.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ch5-pool'")
                }
                #expect(backends >= 1 && backends <= 6)
                #expect(pool.gauge.peak <= 6)
            }
            // The contrast: one connection, one query after the other — the rendezvous never happens.
            try await withConnection(db) { c in
                let tag = uniqueTag("l57seq")
                let one = try await ProductsDatabase.probeProduct(id: 100, rendezvous: tag, timeout: .milliseconds(150), on: c)
                let two = try await ProductsDatabase.probeProduct(id: 100, rendezvous: tag, timeout: .milliseconds(150), on: c)
                #expect(one.met == false && two.met == false)  // the same session arriving twice is one party
                #expect(one.backendPID == two.backendPID)
            }
        }
    }

    @Test("Listing 5.8 — Synchronous and concurrent queries", .tags(.postgres, .timing), .needsPostgres)
    func listing5_8() async throws {
        // Book: 10,000 queries awaited one by one vs gathered on a pool of 6: the concurrent run is several times faster.
        // Swift: both are async; "synchronous" means sequential awaits. Evidence: the pool's in-flight gauge,
        // distinct backends, and (latency-bound with pg_sleep, so it holds on 2 cores) elapsed time.
        let n = 120
        try await withScratchProductsDatabase(.seeded) { db in
            let reference = try await withProductsPool(db, size: 6) { pool in
                pool.gauge.reset()
                var sequential: [ProductRow?] = []
                for _ in 0..<n { sequential.append(try await pool.queryProduct(id: 100)) }
                #expect(pool.gauge.peak == 1)
                #expect(sequential.count == n && Set(sequential).count == 1)

                pool.gauge.reset()
                let concurrent = try await gather((0..<n).map { _ in
                    { @Sendable in try await pool.withConnection { try await ProductsDatabase.probeProduct(id: 100, on: $0) } }
                })
                #expect(concurrent.count == n)
                #expect(concurrent.allSatisfy { $0.row == sequential[0] })
                let pids = Set(concurrent.map(\.backendPID))
                #expect(pids.count > 1 && pids.count <= 6)
                #expect(pool.gauge.peak > 1 && pool.gauge.peak <= 6)

                // Latency-bound variant: each query waits 0.5 u on the server.
                let m = 24
                let half = u / 2
                let seqStart = ContinuousClock.now
                for _ in 0..<m {
                    _ = try await pool.withConnection { try await ProductsDatabase.probeProduct(id: 100, sleep: half, on: $0) }
                }
                let seqElapsed = ContinuousClock.now - seqStart
                pool.gauge.reset()
                let conStart = ContinuousClock.now
                _ = try await gather((0..<m).map { _ in
                    { @Sendable in try await pool.withConnection { try await ProductsDatabase.probeProduct(id: 100, sleep: half, on: $0) } }
                })
                let conElapsed = ContinuousClock.now - conStart
                #expect(pool.gauge.peak == 6)
                #expect(seqElapsed >= half * m)
                #expect(conElapsed < seqElapsed / 2, "concurrent \(conElapsed) vs sequential \(seqElapsed)")
                return sequential[0]
            }
            // The blocking contrast (psycopg2's role): libpq on a thread returns the same row.
            let sql = ProductsDatabase.productQuery(id: 100).sql
            let blockingRows = try await toThread {
                let connection = try BlockingPostgres(db)
                return try (0..<10).map { _ in try connection.query(sql, ["100"]) }
            }
            let expected = try #require(reference)
            #expect(blockingRows.allSatisfy {
                $0.count == 1 && $0[0][0] == "100" && $0[0][3] == String(expected.skuID) && $0[0][4] == expected.colorName
            })
        }
    }

    // MARK: - Transactions

    @Test("Listing 5.9 — Creating a transaction", .tags(.postgres), .needsPostgres)
    func listing5_9() async throws {
        // Book: leaving `async with connection.transaction()` normally commits both inserts together.
        // Swift: withTransaction(on:) keeps one connection for the whole closure (BEGIN … COMMIT).
        try await withScratchProductsDatabase(.schema) { db in
            try await withConnection(db) { observer in
                try await withConnection(db) { c in
                    let before = try await observer.count("SELECT count(*) FROM brand")
                    var seenMidway = -1
                    try await withTransaction(on: c) { tx in
                        try await tx.query("INSERT INTO brand VALUES(DEFAULT, 'brand_1')")
                        try await tx.query("INSERT INTO brand VALUES(DEFAULT, 'brand_2')")
                        seenMidway = try await observer.count("SELECT count(*) FROM brand WHERE brand_name LIKE 'brand%'")
                    }
                    #expect(seenMidway == 0)  // uncommitted rows are invisible to another connection
                    let names = try await observer.strings(
                        "SELECT brand_name FROM brand WHERE brand_name LIKE 'brand%' ORDER BY brand_id")
                    #expect(names == ["brand_1", "brand_2"])
                    #expect(try await observer.count("SELECT count(*) FROM brand") - before == 2)
                }
            }
        }
    }

    @Test("Listing 5.10 — Handling an error in a transaction", .tags(.postgres), .needsPostgres)
    func listing5_10() async throws {
        // Book: the second insert of id 9999 fails and the whole transaction rolls back, the first insert included.
        // Swift: the same; the error is typed (.uniqueViolation, SQLSTATE 23505) instead of an exception class.
        try await withScratchProductsDatabase(.schema) { db in
            try await withConnection(db) { c in
                let error = await #expect(throws: DatabaseError.self) {
                    try await withTransaction(on: c) { tx in
                        try await tx.query("INSERT INTO brand VALUES(9999, 'big_brand')")
                        try await tx.query("INSERT INTO brand VALUES(9999, 'big_brand')")
                    }
                }
                #expect(error == .uniqueViolation(constraint: "brand_pkey"))
                #expect(error?.sqlState == "23505")
                // The same connection works again (the rollback happened) and nothing was kept.
                let kept = try await c.count("SELECT count(*) FROM brand WHERE brand_id = 9999 OR brand_name = 'big_brand'")
                #expect(kept == 0)
                let bigBrands = try await c.strings("SELECT brand_name FROM brand WHERE brand_name LIKE 'big_%'")
                #expect(bigBrands == [])
            }
        }
    }

    @Test("Listing 5.11 — A nested transaction", .tags(.postgres), .needsPostgres)
    func listing5_11() async throws {
        // Book: the inner transaction is a SAVEPOINT: its failure rolls back only itself; my_new_brand commits.
        // Swift: the library nests with savepoints; PostgresNIO's own withTransaction does not, and loses the outer row.
        try await withScratchProductsDatabase(.schema) { db in
            try await withConnection(db) { c in
                func listing(brand: String, nesting: Transaction.Nesting) async throws -> DatabaseError? {
                    var innerError: DatabaseError?
                    try await withTransaction(on: c, nesting: nesting) { tx in
                        try await tx.query("INSERT INTO brand VALUES(DEFAULT, \(brand))")
                        do {
                            try await tx.nested { inner in
                                try await inner.query("INSERT INTO product_color VALUES(1, 'black')")
                            }
                        } catch let error as DatabaseError {
                            innerError = error  // "ignoring error inserting product color"
                        }
                    }
                    return innerError
                }

                let innerError = try await listing(brand: "my_new_brand", nesting: .savepoint)
                #expect(try await c.count("SELECT count(*) FROM brand WHERE brand_name = 'my_new_brand'") == 1)
                #expect(try await c.strings("SELECT product_color_name FROM product_color ORDER BY 1") == ["Black", "Blue"])
                #expect(innerError == .uniqueViolation(constraint: "product_color_pkey"))
                #expect(innerError?.sqlState == "23505")

                // Documentation: PostgresNIO's withTransaction nested the same way sends a second BEGIN;
                // the inner ROLLBACK ends the whole transaction and the outer COMMIT only warns.
                try await c.withTransaction(logger: ProductsDatabase.logger) { conn in
                    try await conn.run("INSERT INTO brand VALUES(DEFAULT, 'nio_nested_brand')")
                    do {
                        _ = try await conn.withTransaction(logger: ProductsDatabase.logger) { inner in
                            try await inner.run("INSERT INTO product_color VALUES(1, 'black')")
                        }
                    } catch {}
                }
                #expect(try await c.count("SELECT count(*) FROM brand WHERE brand_name = 'nio_nested_brand'") == 0)

                // Mutation check: the library with BEGIN instead of SAVEPOINT fails the first assertion.
                _ = try await listing(brand: "naive_brand", nesting: .naiveBegin)
                #expect(try await c.count("SELECT count(*) FROM brand WHERE brand_name = 'naive_brand'") == 0)
            }
        }
    }

    @Test("Listing 5.12 — Manually managing a transaction", .tags(.postgres), .needsPostgres)
    func listing5_12() async throws {
        // Book: start/commit/rollback by hand give the same atomicity; the listing commits brand_1 and brand_2.
        // Swift: Transaction is ~Copyable with consuming commit()/rollback(): finishing twice does not compile.
        func manually(
            _ statements: [PostgresQuery], on c: PostgresConnection
        ) async throws -> (branch: String, error: DatabaseError?, whileFailed: DatabaseError?) {
            let tx = try await Transaction.begin(on: c)
            var failure: DatabaseError?
            var whileFailed: DatabaseError?
            do {
                for statement in statements { try await tx.query(statement) }
            } catch let error as DatabaseError {
                failure = error
                do { try await tx.query("SELECT 1") } catch let e as DatabaseError { whileFailed = e }
            }
            if failure != nil {
                try await tx.rollback()
                return ("rollback", failure, whileFailed)
            } else {
                try await tx.commit()
                return ("commit", nil, nil)
            }
        }

        try await withScratchProductsDatabase(.schema) { db in
            try await withConnection(db) { observer in
                try await withConnection(db) { c in
                    let happy = try await manually([
                        "INSERT INTO brand VALUES(DEFAULT, 'brand_1')",
                        "INSERT INTO brand VALUES(DEFAULT, 'brand_2')",
                    ], on: c)
                    #expect(happy.branch == "commit")
                    #expect(try await observer.strings("SELECT brand_name FROM brand ORDER BY brand_id") == ["brand_1", "brand_2"])

                    let failing = try await manually([
                        "INSERT INTO brand VALUES(DEFAULT, 'brand_3')",
                        "INSERT INTO brand VALUES(DEFAULT, NULL)",
                    ], on: c)
                    #expect(failing.branch == "rollback")
                    #expect(failing.error == .notNullViolation(column: "brand_name"))
                    #expect(failing.error?.sqlState == "23502")
                    #expect(failing.whileFailed == .inFailedTransaction)
                    #expect(try await observer.strings("SELECT brand_name FROM brand ORDER BY brand_id") == ["brand_1", "brand_2"])
                }
            }
        }
    }

    // MARK: - Async generators and cursors

    @Test("Listing 5.14 — A simple asynchronous generator", .tags(.timing))
    func listing5_14() async throws {
        // Book: an async generator yields 1 then 2, each produced only when asked for; ~1 + 2 = 3 s in all.
        // Swift: no `yield` in async functions; PositiveIntegers is a pull-based AsyncSequence, just as lazy.
        let log = EventLog()
        let started = ContinuousClock.now
        try await EventLog.$current.withValue(log) {
            let generator = positiveIntegers(until: 2)
            #expect(log.names.isEmpty)  // creating it runs nothing
            var iterator = generator.makeAsyncIterator()
            let first = try await iterator.next()
            #expect(first == 1)
            #expect(log.names == ["start(1)", "end(1)"])  // the second step has not begun
            let second = try await iterator.next()
            #expect(second == 2)
            #expect(log.names == ["start(1)", "end(1)", "start(2)", "end(2)"])
            let end = try await iterator.next()
            #expect(end == nil)
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= u * 3 && elapsed < u * 5, "took \(elapsed)")

        var collected: [Int] = []
        for try await value in PositiveIntegers(until: 2) { collected.append(value) }
        #expect(collected == [1, 2])

        // Cancelling the consumer during the second element ends the iteration with CancellationError.
        let cancelLog = EventLog()
        let consumer = Task {
            try await EventLog.$current.withValue(cancelLog) {
                var values: [Int] = []
                for try await value in PositiveIntegers(until: 2) { values.append(value) }
                return values
            }
        }
        try await cancelLog.waitFor("start(2)")
        consumer.cancel()
        await #expect(throws: CancellationError.self) { try await consumer.value }
        #expect(!cancelLog.names.contains("end(2)"))
    }

    @Test("Listing 5.15 — Streaming results", .tags(.postgres), .needsPostgres)
    func listing5_15() async throws {
        // Book: async for over connection.cursor(query) streams rows from a server-side cursor in batches of 50.
        // Swift: the library's Cursor (DECLARE / FETCH 50 on demand) as an AsyncSequence; PostgresNIO's
        // PostgresRowSequence is the idiomatic backpressured stream without a named cursor.
        try await withScratchProductsDatabase(.seeded) { db in
            try await withConnection(db) { c in
                let log = EventLog()
                var ids: [Int] = []
                var cursorName = ""
                var openCursors: [String] = []
                var stats = CursorStats()
                try await withTransaction(on: c) { tx in
                    try await withCursor("SELECT product_id, product_name FROM product ORDER BY product_id", in: tx) { cursor in
                        cursorName = cursor.name
                        try await EventLog.$current.withValue(log) {
                            for try await row in cursor {
                                let (id, _) = try row.decode((Int, String).self)
                                ids.append(id)
                                log.record("row(\(ids.count))")
                                if ids.count == 10 { openCursors = try await c.strings("SELECT name FROM pg_cursors") }
                            }
                        }
                        stats = cursor.stats
                    }
                }
                #expect(ids == Array(1...1_000))
                #expect(stats.nonEmptyFetches == 20 && stats.fetches == 21)
                #expect(openCursors.contains(cursorName))
                // Lazy: batch 2 is fetched only once row 50 was consumed, and before row 51.
                let fetch2 = try #require(log.index(of: "fetch(2)"))
                #expect(try #require(log.index(of: "row(50)")) < fetch2)
                #expect(fetch2 < (log.index(of: "row(51)") ?? -1))

                // Cursors only live in transactions (25P01), as asyncpg also insists.
                await #expect(throws: DatabaseError.noActiveTransaction) {
                    try await c.run("DECLARE outside NO SCROLL CURSOR FOR SELECT 1")
                }

                // The idiomatic PostgresNIO stream: rows decode as they arrive.
                var streamed = 0
                let rows = try await c.query("SELECT product_id, product_name FROM product", logger: ProductsDatabase.logger)
                for try await (_, _) in rows.decode((Int, String).self) { streamed += 1 }
                #expect(streamed == 1_000)
            }
        }
    }

    @Test("Listing 5.16 — Moving through a cursor and fetching records", .tags(.postgres), .needsPostgres)
    func listing5_16() async throws {
        // Book: cursor.forward(500) skips rows on the server, fetch(100) returns rows 501–600.
        // Swift: MOVE FORWARD 500 / FETCH 100; the port adds ORDER BY (the listing's order is unspecified).
        try await withScratchProductsDatabase(.seeded) { db in
            try await withConnection(db) { c in
                try await withTransaction(on: c) { tx in
                    try await withCursor("SELECT product_id, product_name FROM product ORDER BY product_id", in: tx) { cursor in
                        let moved = try await cursor.forward(500)
                        let rows = try await cursor.fetch(100)
                        let ids = try rows.map { try $0.decode((Int, String).self).0 }
                        #expect(moved == 500)
                        #expect(ids == Array(501...600))
                        #expect(cursor.stats.rowsReceived == 100)  // only 100 rows crossed the wire
                    }
                }
            }
        }
    }

    @Test("Listing 5.17 — Getting a specific number of elements with an asynchronous generator", .tags(.postgres), .needsPostgres)
    func listing5_17() async throws {
        // Book: take(generator, 5) yields the first five products and stops early (Python's take pulls a sixth
        // item before it notices the limit). Swift: AsyncSequence.prefix(5) is `take`, and pulls exactly five.
        try await withScratchProductsDatabase(.seeded) { db in
            try await withConnection(db) { c in
                try await withTransaction(on: c) { tx in
                    let counter = PullCounter()
                    var ids: [Int] = []
                    var cursorName = ""
                    try await withCursor("SELECT product_id, product_name FROM product ORDER BY product_id", in: tx) { cursor in
                        cursorName = cursor.name
                        let counted = cursor.map { row -> PostgresRow in
                            counter.pulled()
                            return row
                        }
                        for try await row in counted.prefix(5) { ids.append(try row.decode((Int, String).self).0) }
                        #expect(cursor.stats.fetches == 1)  // one batch only
                    }
                    #expect(ids == [1, 2, 3, 4, 5])
                    #expect(counter.count == 5)
                    // The scope closed the cursor (asyncpg leaves its portal open until the transaction ends).
                    #expect(try await c.strings("SELECT name FROM pg_cursors").contains(cursorName) == false)
                }
            }
        }
    }

    // MARK: - Bad input: typed errors, nothing half-applied

    @Test("A wrong password is a typed authentication error", .tags(.postgres), .needsPostgres)
    func wrongPassword() async throws {
        let server = try await ProductsScratchDatabases.shared.prepared()
        var wrong = server
        wrong.password = "not-the-password"
        if server.isEmbedded {
            await #expect(throws: DatabaseError.authenticationFailed(username: server.username)) {
                _ = try await ProductsDatabase.connect(wrong)
            }
            #expect(throws: DatabaseError.authenticationFailed(username: server.username)) {
                _ = try BlockingPostgres(wrong)
            }
        }
        // (A DATABASE_URL server may trust every login, as the book's compose file does.)
    }

    @Test("Connection refused is typed, from both drivers", .tags(.postgres), .needsPostgres)
    func connectionRefused() async throws {
        let refusing = try RefusingPort()
        defer { refusing.close() }
        let nowhere = PostgresEndpoint(host: "127.0.0.1", port: refusing.port, username: "postgres",
                                       password: "postgres", database: "postgres", isEmbedded: false)
        let error = await #expect(throws: DatabaseError.self) { _ = try await ProductsDatabase.connect(nowhere) }
        #expect(error == .connectionRefused(host: "127.0.0.1", port: refusing.port))
        #expect(error?.description.contains("127.0.0.1:\(refusing.port)") == true)
        #expect(throws: DatabaseError.connectionRefused(host: "127.0.0.1", port: refusing.port)) {
            _ = try BlockingPostgres(nowhere)
        }
    }

    @Test("A syntax error, a constraint violation and a timeout each roll back the whole transaction",
          .tags(.postgres), .needsPostgres)
    func failuresRollBack() async throws {
        try await withScratchProductsDatabase(.seeded) { db in
            try await withConnection(db) { c in
                let brands = try await c.count("SELECT count(*) FROM brand")
                let products = try await c.count("SELECT count(*) FROM product")

                let syntaxInTransaction = await #expect(throws: DatabaseError.self) {
                    try await withTransaction(on: c) { tx in
                        try await tx.query("INSERT INTO brand VALUES(DEFAULT, 'half_applied')")
                        try await tx.query("SELEC brand_id FROM brand")
                    }
                }
                if case .syntaxError(let message)? = syntaxInTransaction { #expect(message.contains("SELEC")) }
                else { Issue.record("expected .syntaxError, got \(String(describing: syntaxInTransaction))") }
                await #expect(throws: DatabaseError.foreignKeyViolation(constraint: "product_brand_id_fkey")) {
                    try await withTransaction(on: c) { tx in
                        try await tx.query("INSERT INTO brand VALUES(DEFAULT, 'half_applied')")
                        try await tx.query("INSERT INTO product VALUES(DEFAULT, 'orphan', 123456)")
                    }
                }
                let cancelled = await #expect(throws: DatabaseError.self) {
                    try await withTransaction(on: c) { tx in
                        try await tx.query("SET LOCAL statement_timeout = '100ms'")
                        try await tx.query("INSERT INTO brand VALUES(DEFAULT, 'half_applied')")
                        try await tx.query("SELECT pg_sleep(30)")
                    }
                }
                #expect(cancelled?.sqlState == "57014")
                if case .queryCancelled(let message)? = cancelled { #expect(message.contains("statement timeout")) }
                else { Issue.record("expected .queryCancelled, got \(String(describing: cancelled))") }

                // Syntax errors outside a transaction are typed too.
                let syntax = await #expect(throws: DatabaseError.self) { try await c.run("SELEC 1") }
                #expect(syntax?.sqlState == "42601")

                #expect(try await c.count("SELECT count(*) FROM brand") == brands)
                #expect(try await c.count("SELECT count(*) FROM product") == products)
                #expect(try await c.count("SELECT count(*) FROM brand WHERE brand_name = 'half_applied'") == 0)
            }
        }
    }

    @Test("A Transaction dropped without commit() or rollback() is rolled back", .tags(.postgres), .needsPostgres)
    func droppedTransaction() async throws {
        try await withScratchProductsDatabase(.schema) { db in
            try await withConnection(db) { c in
                do {
                    let tx = try await Transaction.begin(on: c)
                    try await tx.query("INSERT INTO brand VALUES(DEFAULT, 'dropped')")
                    _ = consume tx  // deinit: logs a warning and sends ROLLBACK
                }
                // The connection runs requests in order, so the ROLLBACK has run before this:
                // no transaction is open any more (SAVEPOINT needs one: 25P01) and the row is gone.
                await #expect(throws: DatabaseError.noActiveTransaction) { try await c.run("SAVEPOINT probe") }
                #expect(try await c.count("SELECT count(*) FROM brand WHERE brand_name = 'dropped'") == 0)
            }
        }
    }

    @Test("An embedded cluster serves until stopped; then its port refuses and its directory is gone",
          .tags(.postgres), .enabled(if: EmbeddedPostgres.binDirectory() != nil))
    func embeddedClusterStops() async throws {
        // Book: the database runs in a Docker container the reader starts and stops.
        // Swift: EmbeddedPostgres supervises a throwaway cluster; stopping it (or the test process ending) shuts it down.
        let server = try await EmbeddedPostgres.start()
        let answer = try await ProductsDatabase.withConnection(server.endpoint) { try await $0.count("SELECT 42") }
        #expect(answer == 42)
        #expect(FileManager.default.fileExists(atPath: server.directory))
        await server.stop()
        #expect(!FileManager.default.fileExists(atPath: server.directory))
        await #expect(throws: DatabaseError.connectionRefused(host: "127.0.0.1", port: server.endpoint.port)) {
            _ = try await ProductsDatabase.connect(server.endpoint)
        }
    }

    @Test("Test databases are isolated clones of the seeded template", .tags(.postgres), .needsPostgres)
    func isolatedClones() async throws {
        try await withScratchProductsDatabase(.seeded) { a in
            try await withScratchProductsDatabase(.seeded) { b in
                #expect(a.database != b.database)
                try await withConnection(a) { try await ProductsDatabase.insertBrand("only_in_a", on: $0) }
                let inB = try await withConnection(b) {
                    try await $0.count("SELECT count(*) FROM brand WHERE brand_name = 'only_in_a'")
                }
                #expect(inB == 0)
                let counts = try await withConnection(b) { c in
                    (try await c.count("SELECT count(*) FROM brand"), try await c.count("SELECT count(*) FROM product"),
                     try await c.count("SELECT count(*) FROM sku"))
                }
                #expect(counts == (100, 1_000, 100_000))
            }
        }
    }
}
