import AsyncPrimitives
import CurriculumCore

// Bounded waits: a test waits on the event it means, never on a sleep, and
// never without a bound (a broken piece fails in seconds, not at the suite's
// time limit).

extension EventLog {
    /// Waits until `count` entries whose names start with `prefix` were recorded.
    public func waitFor(prefix: String, count: Int = 1) async throws {
        try await waitUntil { $0.count { $0.name.hasPrefix(prefix) } >= count }
    }

    /// The index of the first entry called `name` (or Int.max: absent sorts last).
    public func position(_ name: String) -> Int { index(of: name) ?? .max }
}

/// Awaits an event the test expects (a log entry, a stub counter), failing
/// with `TimeoutError` after `limit` instead of hanging when broken library
/// code never produces it. A guard, not a synchronisation: the event decides.
@discardableResult
public func eventually<T: Sendable>(
    within limit: Duration = .seconds(10),
    _ event: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withTimeout(limit, operation: event)
}

/// `k` book seconds in whole milliseconds, for the stub's `/delay/{ms}`.
public func ms(_ k: Double) -> Int { (Book.second * k).milliseconds }
