#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore

/// Writes large deterministic Ngram files for the benchmarks (never
/// committed): Zipf-like rows per key, rows sorted by key then year, counts
/// log-uniform, SplitMix64 from a seed. Returns what a check needs: the row
/// count, the distinct keys and a few keys' totals.
public enum NgramGenerator {
    public struct Summary: Sendable, Codable, Equatable {
        public var rows: Int
        public var distinctKeys: Int
        public var totals: [String: Int]
    }

    /// Generates about `rows` rows over `keys` keys into `path`.
    public static func write(rows: Int, keys: Int, seed: UInt64, to path: String) throws(NgramError) -> Summary {
        precondition(rows >= 1 && keys >= 1)
        var random = SplitMix64(seed: seed)
        // Key names: "a" + random letters, unique, sorted by bytes.
        var names = Set<String>()
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        while names.count < keys {
            var name = random.next() % 4 == 0 ? "A" : "a"
            for _ in 0..<(3 + Int(random.next() % 8)) { name.append(letters[Int(random.next() % 26)]) }
            if random.next() % 5 == 0 { name += "_NOUN" }
            names.insert(name)
        }
        let sorted = names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        // Zipf weights over a random permutation of ranks.
        let harmonic = (1...keys).reduce(0.0) { $0 + 1.0 / Double($1) }
        var ranks = Array(1...keys)
        for i in stride(from: keys - 1, to: 0, by: -1) { ranks.swapAt(i, Int(random.next() % UInt64(i + 1))) }
        guard let file = fopen(path, "w") else { throw .unreadable(path: path, errno: errno) }
        defer { fclose(file) }
        var summary = Summary(rows: 0, distinctKeys: keys, totals: [:])
        var line = [UInt8]()
        line.reserveCapacity(64)
        // Rows per key: Zipf, at most 400 years, at least 1; scaled once so the
        // total comes close to `rows` despite the cap.
        func perKey(_ scale: Double) -> [Int] {
            ranks.map { max(1, min(400, Int((scale * Double(rows) / harmonic / Double($0)).rounded()))) }
        }
        var scale = 1.0
        var counts = perKey(scale)
        for _ in 0..<20 {
            let total = counts.reduce(0, +)
            if abs(total - rows) <= rows / 100 { break }
            scale *= Double(rows) / Double(total)
            counts = perKey(scale)
        }
        for (k, name) in sorted.enumerated() {
            let n = counts[k]
            let firstYear = 1600 + Int(random.next() % UInt64(max(1, 410 - n)))
            var total = 0
            for y in 0..<n {
                let count = Int(pow(10.0, Double(random.next() % 1_000_000) / 1_000_000 * 6)) + 1
                let volumes = max(1, count / 3)
                total += count
                line.removeAll(keepingCapacity: true)
                line += name.utf8
                line += "\t\(firstYear + y)\t\(count)\t\(volumes)\n".utf8
                _ = line.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            }
            summary.rows += n
            if k % max(1, keys / 8) == 0 { summary.totals[name] = total }
        }
        guard ferror(file) == 0 else { throw .unreadable(path: path, errno: errno) }
        return summary
    }
}

