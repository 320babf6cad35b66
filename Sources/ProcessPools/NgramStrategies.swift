import CurriculumCore
import Foundation
import MapReduce

#if canImport(Glibc)
import Glibc
#endif

/// Where the map step of the Ngram MapReduce runs.
public enum NgramStrategy: Sendable {
    /// One loop on the calling thread (listing 6.7's shape, chunked).
    case serial
    /// Task-group children, each counting its byte range of the one shared
    /// buffer (no copy, no serialisation), then the total's shards reduced
    /// in parallel too — what a Swift programmer picks.
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

/// The MapReduce of listing 6.8 (map in chunks, then reduce the partial
/// counts) with three strategies that give identical results. The book
/// folds one dictionary serially; here the total is partitioned by key
/// (``MapReduce/NgramTotals``), which lets the threads strategy reduce on
/// both cores as well.
public enum NgramMapReduce {
    /// Maps every chunk of `rowsPerChunk` rows with `strategy`, then folds
    /// the partial counts; returns the total and each map job's evidence.
    public static func run(
        _ file: NgramFile, rowsPerChunk: Int, strategy: NgramStrategy
    ) async throws -> (counts: NgramCounts, jobs: [NgramMapJob]) {
        switch strategy {
        case .threads:
            return try await mapAndReduceOnThreads(file, rowsPerChunk: rowsPerChunk)
        case .serial:
            // In this process the partial counts stay runs until the reduce, which hashes each key once.
            let parts = try ChunkPlanner.chunks(of: file.bytes, rowsPerChunk: rowsPerChunk).map { chunk throws(NgramError) in try mapHere(file, chunk) }
            return (NgramCounts.sum(parts.map(\.0)), parts.map(\.1))
        case .processes(let pool):
            let chunks = try ChunkPlanner.chunks(of: file.bytes, rowsPerChunk: rowsPerChunk)
            var parts: [(NgramCounts, NgramMapJob)] = []
            let outcomes = try await inChunkOrder(chunks) { chunk in
                try await pool.run(.mapNgrams(path: file.path, chunk: chunk))
            }
            for (chunk, outcome) in zip(chunks, outcomes) {
                guard case .counts(let c) = outcome.value else { throw ProcessPoolError.workerFailed("mapNgrams returned \(outcome.value)") }
                parts.append((c, NgramMapJob(chunk: chunk, rows: c.rows, pid: outcome.workerPID, interval: outcome.interval)))
            }
            return (NgramCounts.sum(parts.map(\.0)), parts.map(\.1))
        }
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

    /// The threads strategy, three steps that keep both cores busy:
    /// chunks are found one at a time by the parent while the ones already
    /// found are mapped (no serial planning pass first); the map runs a
    /// window of as many chunks as cores (the parent is queued behind every
    /// task already added, so adding them all at once would starve it);
    /// then the shards of the total are reduced in parallel, each from every
    /// chunk's group for it. When chunks fail, throws the first failing
    /// chunk's error, as ``inChunkOrder(_:_:)``.
    private static func mapAndReduceOnThreads(_ file: NgramFile, rowsPerChunk: Int) async throws -> (counts: NgramCounts, jobs: [NgramMapJob]) {
        var planner = try ChunkPlanner.Iterator(file.bytes, rowsPerChunk: rowsPerChunk)
        let window = ProcessInfo.processInfo.activeProcessorCount
        let mapped = await withTaskGroup(of: (Int, Result<(NgramRuns, NgramMapJob), NgramError>).self) { group -> Result<[(NgramRuns, NgramMapJob)], NgramError> in
            var parts: [(NgramRuns, NgramMapJob)?] = []
            var firstFailure: (index: Int, error: NgramError)?
            func take(_ done: (Int, Result<(NgramRuns, NgramMapJob), NgramError>)) {
                switch done.1 {
                case .success(let part): parts[done.0] = part
                case .failure(let error): if firstFailure == nil || done.0 < firstFailure!.index { firstFailure = (done.0, error) }
                }
            }
            var running = 0
            // After a failure only chunks already started can fail first: none are added.
            while firstFailure == nil, let chunk = planner.next() {
                let i = parts.count
                parts.append(nil)
                group.addTask {
                    do throws(NgramError) { return (i, .success(try mapHere(file, chunk))) } catch { return (i, .failure(error)) }
                }
                running += 1
                if running >= window, let done = await group.next() {
                    take(done)
                    running -= 1
                }
            }
            while let done = await group.next() { take(done) }
            if let firstFailure { return .failure(firstFailure.error) }
            return .success(parts.map { $0! })
        }
        let parts = try mapped.get()
        let runs = parts.map(\.0)
        let shards = await withTaskGroup(of: (Int, [String: Int]).self) { group in
            for s in 0..<NgramTotals.shardCount { group.addTask { (s, NgramTotals.reduce(shard: s, of: runs)) } }
            var shards = [[String: Int]](repeating: [:], count: NgramTotals.shardCount)
            for await (s, shard) in group { shards[s] = shard }
            return shards
        }
        return (NgramCounts(totals: NgramTotals(shards: shards), rows: runs.reduce(0) { $0 + $1.rows }), parts.map(\.1))
    }

    private static func mapHere(_ file: NgramFile, _ chunk: NgramChunk) throws(NgramError) -> (NgramRuns, NgramMapJob) {
        let start = MonotonicInstant.now()
        let c = try NgramCounter.runs(file.bytes, range: chunk.byteRange, firstLine: chunk.firstLine)
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
