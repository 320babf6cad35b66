import Logging
import CurriculumCore

/// What ``timed(_:sink:isolation:_:)`` reports.
public enum TimingEvent: Sendable, Equatable {
    /// The call is starting (the decorator's "starting … with args …").
    case calling(String)
    /// The call finished (normally or by throwing) after this long.
    case completed(String, Duration)
}

/// Where ``timed(_:sink:isolation:_:)`` sends its reports.
public struct TimingSink: Sendable {
    /// Receives each report.
    public var report: @Sendable (TimingEvent) -> Void

    public init(report: @escaping @Sendable (TimingEvent) -> Void) { self.report = report }

    /// Logs through swift-log (label `asyncio.timed`), as the book prints.
    public static let log: TimingSink = {
        let logger = Logger(label: "asyncio.timed")
        return TimingSink { event in
            switch event {
            case .calling(let label): logger.info("calling \(label)")
            case .completed(let label, let d): logger.info("\(label) completed in \(d)")
            }
        }
    }()

    /// Records into `recorder`, for tests to read.
    public static func recorder(_ recorder: TimingRecorder) -> TimingSink {
        TimingSink { recorder.append($0) }
    }
}

/// A thread-safe list of ``TimingEvent``s.
public final class TimingRecorder: Sendable {
    private let storage = Locked<[TimingEvent]>([])

    public init() {}

    /// Appends an event.
    public func append(_ event: TimingEvent) { storage.withLock { $0.append(event) } }

    /// Every event so far, in order.
    public var events: [TimingEvent] { storage.withLock { $0 } }

    /// The duration reported for `label` (its first completion).
    public func duration(of label: String) -> Duration? {
        for case .completed(let l, let d) in events where l == label { return d }
        return nil
    }
}

/// Times an async call and reports it: the book's `async_timed` decorator
/// (util/async_timer.py).
///
/// Reports `.calling(label)`, runs `body`, and reports `.completed(label, d)`
/// with the wall time `d` — in a `defer`, so also when `body` throws. The value
/// or error of `body` passes through untouched.
///
/// Runs `body` on the caller's isolation (no hop), so it can touch the
/// caller's state; cancellation is `body`'s own.
@discardableResult
public func timed<T>(
    _ label: String = #function,
    sink: TimingSink = .log,
    isolation: isolated (any Actor)? = #isolation,
    _ body: () async throws -> sending T
) async rethrows -> sending T {
    sink.report(.calling(label))
    let start = ContinuousClock.now
    defer { sink.report(.completed(label, .now - start)) }
    return try await body()
}

/// Like ``timed(_:sink:isolation:_:)``, and also returns the elapsed time.
@discardableResult
public func timedResult<T>(
    _ label: String = #function,
    sink: TimingSink = .log,
    isolation: isolated (any Actor)? = #isolation,
    _ body: () async throws -> sending T
) async rethrows -> (value: T, duration: Duration) {
    let start = ContinuousClock.now
    let value = try await timed(label, sink: sink, isolation: isolation, body)
    return (value, .now - start)
}
