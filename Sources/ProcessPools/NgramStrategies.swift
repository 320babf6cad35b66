import CurriculumCore
import MapReduce

#if canImport(Glibc)
import Glibc
#endif

/// Where the map step of the Ngram MapReduce runs.
public enum NgramStrategy: Sendable {
    /// One loop on the calling thread (listing 6.7's shape, chunked).
    case serial
    /// Task-group children, each counting its byte range of the one shared
    /// buffer: no copy, no serialisation — what a Swift programmer picks.
    case threads
    /// Jobs of a process pool: each worker reads the file itself and sends
    /// back only its counts (the book's ProcessPoolExecutor, 6.8).
    case processes(ProcessPool)
}

/// One map job's evidence.
public struct NgramMapJob: Sendable {
    public var chunk: NgramChunk
    public var rows: Int
    /// The process that ran it (ours for serial and threads).
    public var pid: pid_t
    public var interval: Interval<MonotonicInstant>
}

/// The MapReduce of listings 6.8 (map in chunks, fold serially) with three
/// strategies that give identical results.
public enum NgramMapReduce {
    /// Maps every chunk of `rowsPerChunk` rows with `strategy`, then folds
    /// the partial counts; returns the total and each map job's evidence.
    public static func run(
        _ file: NgramFile, rowsPerChunk: Int, strategy: NgramStrategy
    ) async throws -> (counts: NgramCounts, jobs: [NgramMapJob]) {
        let chunks = try ChunkPlanner.chunks(of: file.bytes, rowsPerChunk: rowsPerChunk)
        var parts: [(NgramCounts, NgramMapJob)] = []
        switch strategy {
        case .serial:
            for chunk in chunks { parts.append(try mapHere(file, chunk)) }
        case .threads:
            parts = try await inChunkOrder(chunks) { chunk in try mapHere(file, chunk) }
        case .processes(let pool):
            let outcomes = try await inChunkOrder(chunks) { chunk in
                try await pool.run(.mapNgrams(path: file.path, chunk: chunk))
            }
            for (chunk, outcome) in zip(chunks, outcomes) {
                guard case .counts(let c) = outcome.value else { throw ProcessPoolError.workerFailed("mapNgrams returned \(outcome.value)") }
                parts.append((c, NgramMapJob(chunk: chunk, rows: c.rows, pid: outcome.workerPID, interval: outcome.interval)))
            }
        }
        let total = NgramCounts.sum(parts.map(\.0))
        return (total, parts.map(\.1))
    }

    /// Runs `map` for every chunk concurrently and returns the results in
    /// chunk order; when some fail, throws the error of the first failing
    /// chunk (so a malformed file always names its first bad line).
    private static func inChunkOrder<T: Sendable>(
        _ chunks: [NgramChunk], _ map: @escaping @Sendable (NgramChunk) async throws -> T
    ) async throws -> [T] {
        let results = await withTaskGroup(of: (Int, Result<T, any Error>).self) { group in
            for (i, chunk) in chunks.enumerated() {
                group.addTask {
                    do { return (i, .success(try await map(chunk))) } catch { return (i, .failure(error)) }
                }
            }
            var out = [Result<T, any Error>?](repeating: nil, count: chunks.count)
            for await (i, r) in group { out[i] = r }
            return out.map { $0! }
        }
        return try results.map { try $0.get() }
    }

    private static func mapHere(_ file: NgramFile, _ chunk: NgramChunk) throws(NgramError) -> (NgramCounts, NgramMapJob) {
        let start = MonotonicInstant.now()
        let c = try NgramCounter.count(file.bytes, range: chunk.byteRange, firstLine: chunk.firstLine)
        return (c, NgramMapJob(chunk: chunk, rows: c.rows, pid: getpid(), interval: Interval(start: start, end: .now())))
    }

    /// A reduce fold for ``MapReduce/parallelReduce(_:fanIn:fold:)`` that
    /// merges each group in `pool` (6.9's reduce in processes).
    public static func poolFold(_ pool: ProcessPool) -> @Sendable ([NgramCounts]) async throws -> NgramCounts {
        { parts in
            let outcome = try await pool.run(.mergeCounts(parts))
            guard case .counts(let c) = outcome.value else { throw ProcessPoolError.workerFailed("mergeCounts returned \(outcome.value)") }
            return c
        }
    }
}
