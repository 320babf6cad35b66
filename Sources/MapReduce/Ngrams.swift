#if canImport(Glibc)
import Glibc
#endif

/// A Google Books Ngram (version 2) 1-gram file loaded into memory once:
/// `ngram TAB year TAB match_count TAB volume_count`, one row per line.
/// Chunks are byte ranges of this one buffer: nothing is copied per line.
public struct NgramFile: Sendable {
    /// Where it was read from (workers of a process pool map it themselves).
    public var path: String
    /// The whole file.
    public var bytes: [UInt8]

    /// Reads `path` whole.
    public init(path: String) throws(NgramError) {
        guard let file = fopen(path, "rb") else { throw .unreadable(path: path, errno: errno) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        if ferror(file) != 0 { throw .unreadable(path: path, errno: errno) }
        self.path = path
        self.bytes = bytes
    }
}

/// A chunk of rows: a byte range that starts at a line start and ends just
/// after a newline (or at the end of the file), and the 1-based number of its
/// first line (for error messages).
public struct NgramChunk: Sendable, Hashable, Codable {
    public var byteRange: Range<Int>
    public var firstLine: Int
    public init(byteRange: Range<Int>, firstLine: Int) {
        self.byteRange = byteRange
        self.firstLine = firstLine
    }
}

/// Splits a file's bytes into chunks of `rowsPerChunk` lines, by byte ranges
/// aligned to line starts (the book cuts a list of line strings instead).
public enum ChunkPlanner {
    public static func chunks(of bytes: [UInt8], rowsPerChunk: Int) throws(NgramError) -> [NgramChunk] {
        guard rowsPerChunk >= 1 else { throw .invalidChunkSize(rowsPerChunk) }
        var chunks: [NgramChunk] = []
        bytes.withUnsafeBufferPointer { b in
            var start = 0, line = 1, rows = 0, i = 0
            while i < b.count {
                if b[i] == 0x0A {
                    rows += 1
                    if rows == rowsPerChunk {
                        chunks.append(NgramChunk(byteRange: start..<(i + 1), firstLine: line))
                        line += rows
                        rows = 0
                        start = i + 1
                    }
                }
                i += 1
            }
            if start < b.count { chunks.append(NgramChunk(byteRange: start..<b.count, firstLine: line)) }
        }
        return chunks
    }
}

/// Counts of one chunk (or a whole file): total `match_count` per ngram.
public struct NgramCounts: Sendable, Hashable, Codable {
    public var totals: [String: Int]
    /// Rows read.
    public var rows: Int
    public init(totals: [String: Int] = [:], rows: Int = 0) {
        self.totals = totals
        self.rows = rows
    }

    /// Adds two partial counts (associative and commutative).
    public static func merge(_ a: NgramCounts, _ b: NgramCounts) -> NgramCounts {
        var sum = a
        sum.add(b)
        return sum
    }

    /// Adds `other` into these counts in place (no copy of the larger side).
    public mutating func add(_ other: NgramCounts) {
        totals.merge(other.totals, uniquingKeysWith: +)
        rows += other.rows
    }

    /// The sum of many partial counts, folded in place.
    public static func sum(_ parts: [NgramCounts]) -> NgramCounts {
        guard let largest = parts.indices.max(by: { parts[$0].totals.count < parts[$1].totals.count }) else { return NgramCounts() }
        var total = parts[largest]
        total.totals.reserveCapacity(parts.reduce(0) { $0 + $1.totals.count })
        for (i, part) in parts.enumerated() where i != largest { total.add(part) }
        return total
    }
}

/// The map step of listings 6.7–6.8: parse bytes (tab and newline found in
/// place), decode only the key to `String`, add the third column.
public enum NgramCounter {
    /// Counts the rows of `range` in `bytes`; `firstLine` numbers them for errors.
    public static func count(_ bytes: [UInt8], range: Range<Int>? = nil, firstLine: Int = 1) throws(NgramError) -> NgramCounts {
        let range = range ?? 0..<bytes.count
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { throw .invalidRange(range) }
        var result = NgramCounts()
        var failure: NgramError?
        bytes.withUnsafeBufferPointer { b in
            var runStart = 0, runLength = -1, runSum = 0
            func flush() {
                guard runLength >= 0 else { return }
                let key = String(decoding: UnsafeBufferPointer(rebasing: b[runStart..<(runStart + runLength)]), as: UTF8.self)
                result.totals[key, default: 0] += runSum
                runSum = 0
            }
            defer { flush() }
            var line = firstLine
            var i = range.lowerBound
            let end = range.upperBound
            while i < end {
                // memchr (vectorised in glibc) finds the newline and the tabs.
                let base = b.baseAddress!
                let lineEnd = memchr(base + i, 0x0A, end - i).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) - base } ?? end
                func tab(after from: Int) -> Int? {
                    guard from < lineEnd, let p = memchr(base + from, 0x09, lineEnd - from) else { return nil }
                    return UnsafePointer(p.assumingMemoryBound(to: UInt8.self)) - base
                }
                guard let t0 = tab(after: i), let t1 = tab(after: t0 + 1), let t2 = tab(after: t1 + 1),
                      tab(after: t2 + 1) == nil, t0 > i,
                      let count = parseInt(b, t1 + 1, t2), parseInt(b, t0 + 1, t1) != nil, parseInt(b, t2 + 1, lineEnd) != nil
                else {
                    failure = .malformedRow(line: line)
                    return
                }
                // Rows come sorted by key, so a run of rows shares one key: the
                // key is decoded and hashed once per run, not once per row
                // (any order still counts right, it just saves less).
                let keyLength = t0 - i
                if runLength != keyLength || memcmp(base + runStart, base + i, keyLength) != 0 {
                    flush()
                    runStart = i
                    runLength = keyLength
                }
                runSum += count
                result.rows += 1
                line += 1
                i = lineEnd + 1
            }
        }
        if let failure { throw failure }
        return result
    }

    /// Listing 6.7: one loop over the whole file.
    public static func countSerial(_ file: NgramFile) throws(NgramError) -> NgramCounts {
        try count(file.bytes)
    }

    private static func parseInt(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int? {
        guard from < to, to - from <= 18 else { return nil }
        var v = 0
        for k in from..<to {
            let d = Int(b[k]) - 48
            guard d >= 0 && d <= 9 else { return nil }
            v = v * 10 + d
        }
        return v
    }
}

/// Listing 6.9's reduce in rounds: groups of `fanIn` partials are folded
/// (concurrently, by `fold`), then the results again, until one remains.
///
/// - Returns: the result and the number of rounds (0 for one part).
/// - Throws: ``NgramError/invalidFanIn(_:)`` for a fan-in below 2 (the
///   listing's loop never runs then and silently returns the first part).
public func parallelReduce(
    _ parts: [NgramCounts],
    fanIn: Int,
    fold: @escaping @Sendable ([NgramCounts]) async throws -> NgramCounts
) async throws -> (result: NgramCounts, rounds: Int) {
    guard fanIn >= 2 else { throw NgramError.invalidFanIn(fanIn) }
    var level = parts
    var rounds = 0
    guard !level.isEmpty else { return (NgramCounts(), 0) }
    while level.count > 1 {
        let groups = stride(from: 0, to: level.count, by: fanIn).map { Array(level[$0..<min($0 + fanIn, level.count)]) }
        level = try await withThrowingTaskGroup(of: (Int, NgramCounts).self) { group in
            for (i, g) in groups.enumerated() { group.addTask { (i, try await fold(g)) } }
            var out = [NgramCounts?](repeating: nil, count: groups.count)
            for try await (i, c) in group { out[i] = c }
            return out.map { $0! }
        }
        rounds += 1
    }
    return (level[0], rounds)
}

/// Errors of the Ngram MapReduce.
public enum NgramError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A row without four tab-separated fields, or a non-numeric year or count.
    case malformedRow(line: Int)
    case unreadable(path: String, errno: Int32)
    case invalidChunkSize(Int)
    case invalidFanIn(Int)
    case invalidRange(Range<Int>)

    public var description: String {
        switch self {
        case .malformedRow(let line): "line \(line) is not `ngram TAB year TAB match_count TAB volume_count`"
        case .unreadable(let path, let code): "cannot read \(path): \(String(cString: strerror(code)))"
        case .invalidChunkSize(let n): "a chunk needs at least 1 row, not \(n)"
        case .invalidFanIn(let n): "a reduce fan-in must be at least 2, not \(n)"
        case .invalidRange(let r): "byte range \(r) is outside the file"
        }
    }
}
