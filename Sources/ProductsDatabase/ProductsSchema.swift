import PostgresNIO

/// The products schema of listing 5.2: five tables and the reference rows.
///
/// One SQL statement per string, because PostgresNIO always uses the extended
/// query protocol, which rejects a string holding several commands (42601):
/// the book's multi-statement blocks only work over asyncpg's simple-query
/// path. `Fixtures/products/schema.sql` holds the same text for psql users.
public enum ProductsSchema {
    /// The five `CREATE TABLE IF NOT EXISTS`, in foreign-key order: brand,
    /// product, product_color, product_size, sku. Only primary keys are indexed
    /// (there is no index on `sku.product_id`, as in the book).
    public static let createTables: [String] = [
        """
        CREATE TABLE IF NOT EXISTS brand(
            brand_id SERIAL PRIMARY KEY,
            brand_name TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS product(
            product_id SERIAL PRIMARY KEY,
            product_name TEXT NOT NULL,
            brand_id INT NOT NULL,
            FOREIGN KEY (brand_id) REFERENCES brand(brand_id)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS product_color(
            product_color_id SERIAL PRIMARY KEY,
            product_color_name TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS product_size(
            product_size_id SERIAL PRIMARY KEY,
            product_size_name TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS sku(
            sku_id SERIAL PRIMARY KEY,
            product_id INT NOT NULL,
            product_size_id INT NOT NULL,
            product_color_id INT NOT NULL,
            FOREIGN KEY (product_id) REFERENCES product(product_id),
            FOREIGN KEY (product_size_id) REFERENCES product_size(product_size_id),
            FOREIGN KEY (product_color_id) REFERENCES product_color(product_color_id)
        )
        """,
    ]

    /// The reference rows with explicit ids, as the listing has them: colours
    /// 1 = Blue, 2 = Black; sizes 1 = Small, 2 = Medium, 3 = Large.
    ///
    /// Two quirks kept from the book: these inserts are not idempotent
    /// (running them twice violates the primary key, 23505), and explicit ids
    /// do not advance the serial sequences (a later `DEFAULT` insert into these
    /// tables would collide with id 1).
    public static let referenceRows: [String] = [
        "INSERT INTO product_color VALUES(1, 'Blue')",
        "INSERT INTO product_color VALUES(2, 'Black')",
        "INSERT INTO product_size VALUES(1, 'Small')",
        "INSERT INTO product_size VALUES(2, 'Medium')",
        "INSERT INTO product_size VALUES(3, 'Large')",
    ]

    /// A test helper created in the templates: a barrier for `parties`
    /// sessions. Each caller *arrives* by taking a session-level shared
    /// advisory lock on the tag's key, then loops (5 ms) until `parties`
    /// distinct sessions hold it, returning true — or false after
    /// `timeout_ms`, which a sequential run hits.
    ///
    /// Arrivals must stay visible: counting *active* `pg_stat_activity` rows
    /// instead races (the last to arrive sees everyone at once and leaves
    /// before an earlier one polls again, which then times out — seen here on
    /// PostgreSQL 15). The lock is released when the session ends (pools
    /// close their connections at the end of their scope); keys are per tag.
    public static let rendezvousFunction = """
        CREATE OR REPLACE FUNCTION rendezvous(tag text, parties int, timeout_ms int)
        RETURNS boolean LANGUAGE plpgsql AS $$
        DECLARE
            deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_ms / 1000.0);
            key int := abs(hashtext(tag));
            n int;
        BEGIN
            PERFORM pg_advisory_lock_shared(7, key);
            LOOP
                SELECT count(DISTINCT pid) INTO n FROM pg_locks
                    WHERE locktype = 'advisory' AND classid = 7 AND objid = key::oid
                      AND objsubid = 2 AND granted;
                IF n >= parties THEN RETURN true; END IF;
                IF clock_timestamp() > deadline THEN RETURN false; END IF;
                PERFORM pg_sleep(0.005);
            END LOOP;
        END $$
        """

    /// Creates the tables and the reference rows: re-runnable (unlike the
    /// listing), because the reference inserts use `ON CONFLICT DO NOTHING`.
    /// Also creates the ``rendezvousFunction``.
    public static func apply(on connection: PostgresConnection) async throws {
        for sql in createTables { try await connection.run(PostgresQuery(unsafeSQL: sql)) }
        for sql in referenceRows { try await connection.run(PostgresQuery(unsafeSQL: sql + " ON CONFLICT DO NOTHING")) }
        try await connection.run(PostgresQuery(unsafeSQL: rendezvousFunction))
    }
}
