import CurriculumCore
import Foundation
import PostgresNIO

/// Generates and inserts the chapter's random data (listings 5.5 and 5.6).
///
/// Generation is pure (a seeded RNG in, values out); insertion is one
/// statement per table with array parameters
/// (`INSERT … SELECT * FROM UNNEST($1::int4[], …)`): PostgresNIO has no
/// `executemany`, and 100,000 single-row round trips would take tens of
/// seconds.
public enum ProductsSeeder {
    /// The seed the test templates and `products-db seed` use by default.
    public static let defaultSeed: UInt64 = 5

    /// The vocabulary: 1,000 distinct lowercase words, one per line
    /// (`Resources/common_words.txt`, drawn with a fixed seed from Debian's
    /// `wamerican`; the book's own list has no licence). Lines are trimmed:
    /// the book keeps the trailing newline in every name, the port does not.
    public static func words() throws -> [String] {
        guard let url = Bundle.module.url(forResource: "common_words", withExtension: "txt", subdirectory: "Resources")
            ?? Bundle.module.url(forResource: "common_words", withExtension: "txt")
        else { throw DatabaseError.other("common_words.txt is missing from the ProductsDatabase resources") }
        return try String(contentsOf: url, encoding: .utf8)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
    }

    /// Listing 5.5: the first 100 words in a random order, first letter capitalised.
    public static func brandNames<G: RandomNumberGenerator>(from words: [String], count: Int = 100, using rng: inout G) -> [String] {
        words.prefix(count).shuffled(using: &rng).map(capitalised)
    }

    /// A product to insert.
    public struct NewProduct: Sendable, Hashable {
        /// Ten distinct vocabulary words, first letter upper-cased.
        public var name: String
        /// 1…brandCount.
        public var brandID: Int
    }

    /// Listing 5.6: `count` products, each named by 10 distinct random words
    /// (first letter upper-cased, the rest lower-cased), brand uniform in
    /// `1...brandCount`.
    public static func products<G: RandomNumberGenerator>(
        count: Int = 1_000, words: [String], brandCount: Int = 100, using rng: inout G
    ) -> [NewProduct] {
        (0..<count).map { _ in
            var picked: [String] = []
            var seen = Set<Int>()
            while picked.count < 10 {
                let i = Int.random(in: 0..<words.count, using: &rng)
                if seen.insert(i).inserted { picked.append(words[i]) }
            }
            let name = capitalised(picked.joined(separator: " ").lowercased())
            return NewProduct(name: name, brandID: Int.random(in: 1...brandCount, using: &rng))
        }
    }

    /// A SKU to insert.
    public struct NewSKU: Sendable, Hashable {
        /// 1…productCount.
        public var productID: Int
        /// 1…3 (Small, Medium, Large).
        public var sizeID: Int
        /// 1…2 (Blue, Black).
        public var colorID: Int
    }

    /// Listing 5.6: `count` SKUs: product uniform in `1...productCount`, size in
    /// 1...3, colour in 1...2.
    public static func skus<G: RandomNumberGenerator>(
        count: Int = 100_000, productCount: Int = 1_000, using rng: inout G
    ) -> [NewSKU] {
        (0..<count).map { _ in
            NewSKU(productID: Int.random(in: 1...productCount, using: &rng),
                   sizeID: Int.random(in: 1...3, using: &rng),
                   colorID: Int.random(in: 1...2, using: &rng))
        }
    }

    /// Inserts brands in one statement; returns the number inserted.
    @discardableResult
    public static func insertBrands(_ names: [String], on connection: PostgresConnection) async throws -> Int {
        let r = try await connection.run("INSERT INTO brand (brand_name) SELECT * FROM UNNEST(\(names)::text[])")
        return r.rowCount ?? 0
    }

    /// Inserts products in one statement; returns the number inserted.
    @discardableResult
    public static func insertProducts(_ products: [NewProduct], on connection: PostgresConnection) async throws -> Int {
        let names = products.map(\.name)
        let brands = products.map { Int32($0.brandID) }
        let r = try await connection.run(
            "INSERT INTO product (product_name, brand_id) SELECT * FROM UNNEST(\(names)::text[], \(brands)::int4[])")
        return r.rowCount ?? 0
    }

    /// Inserts SKUs in one statement; returns the number inserted.
    @discardableResult
    public static func insertSKUs(_ skus: [NewSKU], on connection: PostgresConnection) async throws -> Int {
        let p = skus.map { Int32($0.productID) }
        let s = skus.map { Int32($0.sizeID) }
        let c = skus.map { Int32($0.colorID) }
        let r = try await connection.run("""
            INSERT INTO sku (product_id, product_size_id, product_color_id)
            SELECT * FROM UNNEST(\(p)::int4[], \(s)::int4[], \(c)::int4[])
            """)
        return r.rowCount ?? 0
    }

    /// What ``seed(on:seed:)`` inserted.
    public struct Summary: Sendable, Hashable {
        /// Brands inserted.
        public var brands: Int
        /// Products inserted.
        public var products: Int
        /// SKUs inserted.
        public var skus: Int
    }

    /// Seeds a database that has the schema and no brands yet: 100 brands
    /// (ids 1…100), 1,000 products, 100,000 SKUs, from `seed`. Three
    /// statements; not wrapped in a transaction (call it inside one if needed).
    public static func seed(on connection: PostgresConnection, seed: UInt64 = defaultSeed) async throws -> Summary {
        var rng = SplitMix64(seed: seed)
        let vocabulary = try words()
        let brands = brandNames(from: vocabulary, using: &rng)
        let products = products(words: vocabulary, brandCount: brands.count, using: &rng)
        let skus = skus(productCount: products.count, using: &rng)
        return Summary(
            brands: try await insertBrands(brands, on: connection),
            products: try await insertProducts(products, on: connection),
            skus: try await insertSKUs(skus, on: connection))
    }

    private static func capitalised(_ s: String) -> String {
        s.prefix(1).uppercased() + s.dropFirst()
    }
}
