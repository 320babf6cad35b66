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
        var planner = try Iterator(bytes, rowsPerChunk: rowsPerChunk)
        var chunks: [NgramChunk] = []
        while let chunk = planner.next() { chunks.append(chunk) }
        return chunks
    }

    /// The chunks one at a time, each found when asked for (a MapReduce can
    /// start mapping the first while the rest are still being found).
    public struct Iterator: IteratorProtocol, Sendable {
        let bytes: [UInt8]
        let rowsPerChunk: Int
        var start = 0
        var line = 1

        public init(_ bytes: [UInt8], rowsPerChunk: Int) throws(NgramError) {
            guard rowsPerChunk >= 1 else { throw .invalidChunkSize(rowsPerChunk) }
            self.bytes = bytes
            self.rowsPerChunk = rowsPerChunk
        }

        public mutating func next() -> NgramChunk? {
            guard start < bytes.count else { return nil }
            let (start, rowsPerChunk) = (start, rowsPerChunk)
            // The end of the chunk: just after its last newline, or the end of the file.
            let (end, rows) = bytes.withUnsafeBufferPointer { b -> (Int, Int) in
                let base = b.baseAddress!
                var rows = 0, i = start
                while i < b.count {
                    // Whole blocks whose newlines do not complete the chunk are counted, eight bytes at a
                    // time; the block that does is walked newline by newline (memchr).
                    let blockEnd = min(i + 4096, b.count)
                    let inBlock = newlines(base + i, blockEnd - i)
                    if rows + inBlock < rowsPerChunk {
                        rows += inBlock
                        i = blockEnd
                        continue
                    }
                    while let p = memchr(base + i, 0x0A, blockEnd - i) {
                        i = UnsafePointer(p.assumingMemoryBound(to: UInt8.self)) - base + 1
                        rows += 1
                        if rows == rowsPerChunk { return (i, rows) }
                    }
                    i = blockEnd
                }
                return (b.count, rows + (b.last == 0x0A ? 0 : 1))
            }
            defer {
                self.start = end
                line += rows
            }
            return NgramChunk(byteRange: start..<end, firstLine: line)
        }
    }

    /// The newlines among `count` bytes at `p`, eight bytes at a time: a
    /// byte of `w ^ 0x0A…` is zero exactly where `w` has a newline, and the
    /// exact zero-byte test sets the top bit of those bytes only. (Swift's
    /// generic `SIMD32` compare was lowered lane by lane here, 5× slower; this
    /// runs at the memory's speed.)
    @inline(__always)
    static func newlines(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low7 = ones &* 0x7F, top = ones &* 0x80, newline = ones &* 0x0A
        var n = 0, m = 0, k = 0
        while k + 16 <= count {  // two words per step: independent work for the core to overlap
            let x = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self) ^ newline
            let y = UnsafeRawPointer(p + k + 8).loadUnaligned(as: UInt64.self) ^ newline
            n &+= (~(((x & low7) &+ low7) | x) & top).nonzeroBitCount
            m &+= (~(((y & low7) &+ low7) | y) & top).nonzeroBitCount
            k += 16
        }
        n &+= m
        while k + 8 <= count {
            let x = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self) ^ newline
            n &+= (~(((x & low7) &+ low7) | x) & top).nonzeroBitCount
            k += 8
        }
        while k < count {
            if p[k] == 0x0A { n += 1 }
            k += 1
        }
        return n
    }
}

/// Total `match_count` per ngram, partitioned by a hash of the key into
/// ``shardCount`` dictionaries: MapReduce's shuffle. A reduce builds the
/// shards independently (in parallel on threads), and each shard is small
/// enough to stay in the cache while it is built, where one dictionary of
/// half a million keys costs a cache miss or two per insert. Reads like a
/// `[String: Int]` for lookups and counts; ``dictionary`` flattens it.
public struct NgramTotals: Sendable, Hashable, Codable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// The number of shards (a power of two).
    public static let shardCount = 64
    /// Shard `s` holds the keys whose ``shard(of:)`` is `s`.
    public private(set) var shards: [[String: Int]]

    public init() { shards = Array(repeating: [:], count: Self.shardCount) }

    public init(_ dictionary: [String: Int]) {
        self.init()
        for (key, value) in dictionary { shards[Self.shard(of: key)][key] = value }
    }

    public init(dictionaryLiteral elements: (String, Int)...) {
        self.init()
        for (key, value) in elements { shards[Self.shard(of: key)][key, default: 0] += value }
    }

    /// Totals from shards already partitioned by ``shard(of:)``.
    public init(shards: [[String: Int]]) {
        precondition(shards.count == Self.shardCount, "one dictionary per shard")
        self.shards = shards
    }

    /// The shard of a key: FNV-1a over its UTF-8 bytes (the same in every
    /// process, so partial counts from workers merge shard by shard).
    public static func shard(of key: String) -> Int {
        var key = key
        return key.withUTF8 { shard(ofBytes: $0) }
    }

    @inline(__always)
    static func shard(ofBytes bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return Int(truncatingIfNeeded: (h ^ (h >> 29)) & UInt64(shardCount - 1))
    }

    public subscript(key: String) -> Int? { shards[Self.shard(of: key)][key] }

    /// The number of distinct keys.
    public var count: Int { shards.reduce(0) { $0 + $1.count } }

    /// All keys in one dictionary.
    public var dictionary: [String: Int] {
        var all = [String: Int](minimumCapacity: count)
        for shard in shards { all.merge(shard, uniquingKeysWith: +) }
        return all
    }

    /// Adds `other`'s totals into these, shard by shard.
    public mutating func add(_ other: NgramTotals) {
        for s in shards.indices where !other.shards[s].isEmpty { shards[s].merge(other.shards[s], uniquingKeysWith: +) }
    }

    public var description: String { "\(count) keys in \(Self.shardCount) shards" }

    /// Decodes shards and checks that every key is in its own shard (a
    /// misplaced key would be invisible to lookups).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let shards = try container.decode([[String: Int]].self)
        guard shards.count == Self.shardCount else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(shards.count) shards, not \(Self.shardCount)")
        }
        for (s, shard) in shards.enumerated() {
            if let key = shard.keys.first(where: { Self.shard(of: $0) != s }) {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "key \(key) is not in its shard")
            }
        }
        self.shards = shards
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(shards)
    }
}

/// Counts of one chunk (or a whole file): total `match_count` per ngram.
public struct NgramCounts: Sendable, Hashable, Codable {
    public var totals: NgramTotals
    /// Rows read.
    public var rows: Int
    public init(totals: NgramTotals = NgramTotals(), rows: Int = 0) {
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
        totals.add(other.totals)
        rows += other.rows
    }

    /// The sum of many partial counts, folded in place.
    public static func sum(_ parts: [NgramCounts]) -> NgramCounts {
        guard let largest = parts.indices.max(by: { parts[$0].totals.count < parts[$1].totals.count }) else { return NgramCounts() }
        var total = parts[largest]
        for (i, part) in parts.enumerated() where i != largest { total.add(part) }
        return total
    }
}

/// Partial counts as the map step produces them, before any hashing: a key
/// and the sum of its `match_count`s for each run of rows sharing that key
/// (once per key for a sorted file), grouped by ``NgramTotals`` shard. The
/// reduce then builds each shard from every part's group for it
/// (``NgramTotals/reduce(shard:of:)``), so a MapReduce hashes each key
/// into a dictionary once, in the reduce, and shards can be built in parallel.
public struct NgramRuns: Sendable, Hashable {
    /// The keys, shard by shard: shard `s`'s are `shardStarts[s]..<shardStarts[s + 1]`.
    public private(set) var keys: [String]
    /// Each key's sum.
    public private(set) var sums: [Int]
    /// Where each shard's group starts (``NgramTotals/shardCount`` + 1 offsets).
    public private(set) var shardStarts: [Int]
    /// Rows read.
    public var rows: Int

    /// Groups runs given in file order by their shards (a counting sort).
    public init(keys: [String], sums: [Int], shards: [UInt8], rows: Int) {
        precondition(keys.count == sums.count && keys.count == shards.count, "one sum and one shard per key")
        var starts = [Int](repeating: 0, count: NgramTotals.shardCount + 1)
        for s in shards { starts[Int(s) + 1] += 1 }
        for s in 0..<NgramTotals.shardCount { starts[s + 1] += starts[s] }
        var next = starts
        var groupedKeys = [String](repeating: "", count: keys.count)
        var groupedSums = [Int](repeating: 0, count: keys.count)
        for i in keys.indices {
            let s = Int(shards[i])
            groupedKeys[next[s]] = keys[i]
            groupedSums[next[s]] = sums[i]
            next[s] += 1
        }
        self.keys = groupedKeys
        self.sums = groupedSums
        self.shardStarts = starts
        self.rows = rows
    }

    /// These runs as counts (equal keys summed).
    public var counts: NgramCounts { NgramCounts.sum([self]) }
}

extension NgramTotals {
    /// Shard `s` of the sum of `parts`: one dictionary, sized once, from
    /// each part's group for `s`.
    public static func reduce(shard s: Int, of parts: [NgramRuns]) -> [String: Int] {
        var shard = [String: Int](minimumCapacity: parts.reduce(0) { $0 + $1.shardStarts[s + 1] - $1.shardStarts[s] })
        for part in parts {
            for i in part.shardStarts[s]..<part.shardStarts[s + 1] { shard[part.keys[i], default: 0] += part.sums[i] }
        }
        return shard
    }
}

extension NgramCounts {
    /// The reduce of many runs, shard after shard on this thread.
    public static func sum(_ parts: [NgramRuns]) -> NgramCounts {
        NgramCounts(totals: NgramTotals(shards: (0..<NgramTotals.shardCount).map { NgramTotals.reduce(shard: $0, of: parts) }),
                    rows: parts.reduce(0) { $0 + $1.rows })
    }
}

/// The map step of listings 6.7–6.8: parse bytes in place, in one forward
/// pass per row, decode only the key to `String`, add the third column.
public enum NgramCounter {
    /// Counts the rows of `range` in `bytes`; `firstLine` numbers them for errors.
    public static func count(_ bytes: [UInt8], range: Range<Int>? = nil, firstLine: Int = 1) throws(NgramError) -> NgramCounts {
        try runs(bytes, range: range, firstLine: firstLine).counts
    }

    /// The map step's partial counts before any hashing: one key and sum per
    /// run of rows sharing a key (see ``NgramRuns``).
    public static func runs(_ bytes: [UInt8], range: Range<Int>? = nil, firstLine: Int = 1) throws(NgramError) -> NgramRuns {
        let range = range ?? 0..<bytes.count
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { throw .invalidRange(range) }
        // Rows come sorted by key, so a run of rows shares one key: the key is
        // decoded once per run, and the runs become a dictionary only when
        // counted or reduced (sized once, one hash per run). Any order still
        // counts right (equal keys of different runs are summed); it just saves less.
        var keys: [String] = []
        var sums: [Int] = []
        var shards: [UInt8] = []
        var rows = 0
        var failure: NgramError?
        bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return }
            let end = range.upperBound
            var runStart = 0, runLength = -1, runSum = 0
            func flush() {
                guard runLength >= 0 else { return }
                // The shard of the decoded key (invalid UTF-8 is repaired, so its bytes can differ from the file's).
                let key = String(decoding: UnsafeBufferPointer(start: base + runStart, count: runLength), as: UTF8.self)
                keys.append(key)
                sums.append(runSum)
                shards.append(UInt8(truncatingIfNeeded: NgramTotals.shard(of: key)))
                runSum = 0
            }
            defer { flush() }
            /// The digits from `i` up to the first non-digit, as a number: nil
            /// for no digits, more than 18, or a stop byte other than `stop`
            /// (`i` is left on the stop byte).
            func number(_ i: inout Int, stop: UInt8) -> Int? {
                // Eight bytes at a time when they are all in the range: the digits before the first
                // non-digit, and their value from three multiplications (fields here have 1–7 digits).
                if i + 8 <= end {
                    let d = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) &- 0x3030_3030_3030_3030
                    // A byte's top bit is set where it is not a digit: below "0" it wrapped, above "9" it
                    // carries past 0x7F. Only bytes after the first non-digit can be disturbed by a borrow.
                    let nonDigits = (d | (d &+ 0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080
                    if nonDigits != 0 {
                        let n = nonDigits.trailingZeroBitCount >> 3
                        guard n > 0, base[i + n] == stop else { return nil }
                        i += n
                        return eightDigits(d << (8 * UInt64(8 - n)))
                    }
                }
                let from = i
                var v = 0
                while i < end {
                    let d = Int(base[i]) &- 48
                    guard d >= 0 && d <= 9 else { break }
                    v = v &* 10 &+ d
                    i += 1
                }
                guard i > from, i - from <= 18 else { return nil }
                if i == end { return stop == 0x0A ? v : nil }  // the last row may lack its newline
                return base[i] == stop ? v : nil
            }
            var line = firstLine
            var i = range.lowerBound
            while i < end {
                let rowStart = i
                // The key: the previous run's, when the row starts with it and a tab (no scan), else up to the first tab.
                let keyEnd: Int
                if runLength >= 0, rowStart + runLength < end, base[rowStart + runLength] == 0x09,
                   sameBytes(base + runStart, base + rowStart, runLength) {
                    keyEnd = rowStart + runLength
                } else {
                    var k = rowStart
                    while k < end && base[k] != 0x09 && base[k] != 0x0A { k += 1 }
                    guard k < end, base[k] == 0x09, k > rowStart else {
                        failure = .malformedRow(line: line)
                        return
                    }
                    keyEnd = k
                    flush()
                    runStart = rowStart
                    runLength = k - rowStart
                }
                i = keyEnd + 1
                guard number(&i, stop: 0x09) != nil else { failure = .malformedRow(line: line); return }  // year
                i += 1
                guard let count = number(&i, stop: 0x09) else { failure = .malformedRow(line: line); return }
                i += 1
                guard number(&i, stop: 0x0A) != nil else { failure = .malformedRow(line: line); return }  // volume_count
                i += 1
                runSum += count
                rows += 1
                line += 1
            }
        }
        if let failure { throw failure }
        return NgramRuns(keys: keys, sums: sums, shards: shards, rows: rows)
    }

    /// The number written by eight decimal digits, each byte already minus
    /// "0", the first digit in the lowest byte (leading zeros pad a shorter
    /// number): pairs, then quads, then all eight combined by multiplications.
    @inline(__always)
    private static func eightDigits(_ digits: UInt64) -> Int {
        var v = (digits &* 10) &+ (digits >> 8)
        v = ((v & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
        return Int(truncatingIfNeeded: ((v & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32)
    }

    /// Whether `count` bytes at `a` and `b` are equal: eight at a time, no
    /// call (keys are short; `memcmp`'s call was 4 % of a MapReduce's CPU).
    @inline(__always)
    private static func sameBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var k = 0
        while k + 8 <= count {
            if UnsafeRawPointer(a + k).loadUnaligned(as: UInt64.self) != UnsafeRawPointer(b + k).loadUnaligned(as: UInt64.self) { return false }
            k += 8
        }
        while k < count {
            if a[k] != b[k] { return false }
            k += 1
        }
        return true
    }

    /// Listing 6.7: one loop over the whole file.
    public static func countSerial(_ file: NgramFile) throws(NgramError) -> NgramCounts {
        try count(file.bytes)
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
