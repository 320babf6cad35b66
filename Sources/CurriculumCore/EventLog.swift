/// An ordered, timestamped log of named events: the evidence of ordering.
///
/// Concurrency tests record "start(3)", "end(3)", "tick" … and then assert on
/// the order, never on sleeps. `delay(_:)` and friends record into
/// `EventLog.current` when one is bound, so a test binds a log around the
/// code it watches:
///
/// ```swift
/// let log = EventLog()
/// try await EventLog.$current.withValue(log) { _ = try await delay(1) }
/// #expect(log.names == ["start(1)", "end(1)"])
/// ```
///
/// Thread-safe (a ``Watched`` list); usable from tasks, threads and event loops alike.
/// `waitUntil(_:)` suspends until the log satisfies a condition, so tests can
/// wait for an event instead of sleeping.
public final class EventLog: Sendable {
    /// One recorded event.
    public struct Entry: Sendable, Equatable {
        /// The event's name, e.g. `"start(3)"`.
        public var name: String
        /// When it was recorded.
        public var at: ContinuousClock.Instant
    }

    /// The log that library code (`delay`, …) records into, if any.
    @TaskLocal public static var current: EventLog?

    private let log = Watched<[Entry]>([])

    /// The instant the log was created: a reference point for offsets.
    public let origin: ContinuousClock.Instant

    public init() {
        origin = .now
    }

    /// Records `name` now and wakes any waiter whose condition now holds.
    public func record(_ name: String) {
        log.update { $0.append(Entry(name: name, at: .now)) }
    }

    /// Every entry so far, in recording order.
    public var entries: [Entry] { log.value }

    /// The names of every entry so far, in recording order.
    public var names: [String] { entries.map(\.name) }

    /// The index of the first entry called `name`.
    public func index(of name: String) -> Int? {
        entries.firstIndex { $0.name == name }
    }

    /// The instant of the first entry called `name`.
    public func instant(of name: String) -> ContinuousClock.Instant? {
        entries.first { $0.name == name }?.at
    }

    /// The time from the log's creation to the first entry called `name`.
    public func offset(of name: String) -> Duration? {
        instant(of: name).map { $0 - origin }
    }

    /// Suspends until `condition` holds for the log's entries.
    ///
    /// Returns at once if it already holds. Cancelling the waiting task
    /// throws `CancellationError` (the log is unaffected).
    public func waitUntil(_ condition: @escaping @Sendable ([Entry]) -> Bool) async throws {
        try await log.waitUntil(condition)
    }

    /// Suspends until an entry called `name` has been recorded `count` times.
    public func waitFor(_ name: String, count: Int = 1) async throws {
        try await waitUntil { entries in entries.lazy.filter { $0.name == name }.count >= count }
    }

    /// Blocks the calling thread until an entry called `name` has been
    /// recorded `count` times. For plain threads only (it would stall a
    /// cooperative-pool thread): the way a thread waits for tasks.
    public func waitBlocking(for name: String, count: Int = 1) {
        log.waitBlocking { entries in entries.lazy.filter { $0.name == name }.count >= count }
    }
}
