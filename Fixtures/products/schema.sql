-- The products schema of "Python Concurrency with asyncio", chapter 5 (listing 5.2),
-- for psql and Docker users: `psql postgresql://postgres:postgres@127.0.0.1:5432/products -f Fixtures/products/schema.sql`.
-- Multi-statement text is fine here (psql uses the simple query protocol); the Swift code
-- (ProductsSchema) sends one statement per string. Re-runnable: IF NOT EXISTS / ON CONFLICT.
-- Data: `swift run products-db seed` (100 brands, 1,000 products, 100,000 SKUs).

CREATE TABLE IF NOT EXISTS brand(
    brand_id SERIAL PRIMARY KEY,
    brand_name TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS product(
    product_id SERIAL PRIMARY KEY,
    product_name TEXT NOT NULL,
    brand_id INT NOT NULL,
    FOREIGN KEY (brand_id) REFERENCES brand(brand_id)
);

CREATE TABLE IF NOT EXISTS product_color(
    product_color_id SERIAL PRIMARY KEY,
    product_color_name TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS product_size(
    product_size_id SERIAL PRIMARY KEY,
    product_size_name TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sku(
    sku_id SERIAL PRIMARY KEY,
    product_id INT NOT NULL,
    product_size_id INT NOT NULL,
    product_color_id INT NOT NULL,
    FOREIGN KEY (product_id) REFERENCES product(product_id),
    FOREIGN KEY (product_size_id) REFERENCES product_size(product_size_id),
    FOREIGN KEY (product_color_id) REFERENCES product_color(product_color_id)
);

-- Explicit ids, as in the book: they do not advance the serial sequences.
INSERT INTO product_color VALUES(1, 'Blue'), (2, 'Black') ON CONFLICT DO NOTHING;
INSERT INTO product_size VALUES(1, 'Small'), (2, 'Medium'), (3, 'Large') ON CONFLICT DO NOTHING;
