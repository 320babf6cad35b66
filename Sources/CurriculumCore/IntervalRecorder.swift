/// A closed time interval `[start, end]` of one worker's activity.
public struct Interval<Instant: Comparable & Sendable>: Sendable {
    /// When the work began.
    public var start: Instant
    /// When the work ended.
    public var end: Instant

    /// An interval from `start` to `end` (`start <= end` is not checked).
    public init(start: Instant, end: Instant) {
        self.start = start
        self.end = end
    }

    /// Whether the two intervals share a moment: `start(B) < end(A)` and
    /// `start(A) < end(B)`. Two workers whose intervals overlap were running
    /// at the same time (concurrently — on one core that is interleaving,
    /// on two it may be parallelism; CPU time tells which).
    public func overlaps(_ other: Interval) -> Bool {
        other.start < end && start < other.end
    }

    /// Whether every pair of `intervals` overlaps (false for fewer than two).
    public static func allOverlap(_ intervals: [Interval]) -> Bool {
        guard intervals.count >= 2 else { return false }
        for i in intervals.indices {
            for j in intervals.indices where j > i {
                if !intervals[i].overlaps(intervals[j]) { return false }
            }
        }
        return true
    }
}

extension Interval where Instant: InstantProtocol, Instant.Duration == Swift.Duration {
    /// `end - start`.
    public var duration: Duration { start.duration(to: end) }
}

/// Records when each named worker started and ended, on `ContinuousClock`,
/// so a test can show that workers ran at the same time (listing 1.6).
///
/// Thread-safe (`Locked`): workers on any thread or task record into one
/// recorder. Recording never suspends.
///
/// ```swift
/// let recorder = IntervalRecorder()
/// let a = spawnThread { recorder.measure("A") { fib(30) } }
/// let b = spawnThread { recorder.measure("B") { fib(30) } }
/// _ = try a.join(); _ = try b.join()
/// #expect(recorder.overlap("A", "B"))
/// ```
public final class IntervalRecorder: Sendable {
    private struct State {
        var starts: [String: ContinuousClock.Instant] = [:]
        var ends: [String: ContinuousClock.Instant] = [:]
    }
    private let state = Locked(State())

    /// An empty recorder.
    public init() {}

    /// Records that `worker` starts now.
    public func start(_ worker: String) {
        let now = ContinuousClock.now
        state.withLock { $0.starts[worker] = now }
    }

    /// Records that `worker` ends now.
    public func end(_ worker: String) {
        let now = ContinuousClock.now
        state.withLock { $0.ends[worker] = now }
    }

    /// Runs `body` between `start(worker)` and `end(worker)`.
    public func measure<T>(_ worker: String, _ body: () throws -> T) rethrows -> T {
        start(worker)
        defer { end(worker) }
        return try body()
    }

    /// The completed intervals by worker name (workers still running are left out).
    public var intervals: [String: Interval<ContinuousClock.Instant>] {
        state.withLock { s in
            var result: [String: Interval<ContinuousClock.Instant>] = [:]
            for (worker, start) in s.starts {
                if let end = s.ends[worker] { result[worker] = Interval(start: start, end: end) }
            }
            return result
        }
    }

    /// The interval of `worker`, if it has started and ended.
    public func interval(of worker: String) -> Interval<ContinuousClock.Instant>? {
        intervals[worker]
    }

    /// Whether the intervals of `a` and `b` overlap (false if either is incomplete).
    public func overlap(_ a: String, _ b: String) -> Bool {
        guard let ia = interval(of: a), let ib = interval(of: b) else { return false }
        return ia.overlaps(ib)
    }

    /// Whether every pair of recorded workers overlaps.
    public var allOverlap: Bool { Interval.allOverlap(Array(intervals.values)) }

    /// From the earliest start to the latest end of all completed intervals.
    public var span: Duration? {
        let all = intervals.values
        guard let first = all.map(\.start).min(), let last = all.map(\.end).max() else { return nil }
        return first.duration(to: last)
    }
}
