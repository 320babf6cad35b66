import CurriculumCore
import Foundation

/// How far a load test has got: what listing 7.13's callback receives.
public struct LoadTestProgress: Sendable, Equatable {
    public var completed: Int
    public var total: Int

    public init(completed: Int, total: Int) {
        self.completed = completed
        self.total = total
    }

    /// Whole per cent done, 0…100.
    public var percent: Int { total > 0 ? completed * 100 / total : 100 }
}

/// What a load test did.
public struct LoadTestSummary: Sendable, Equatable {
    /// Requests asked for.
    public var total: Int
    /// Requests that ended, with a response or an error (the listing counts both).
    public var completed: Int
    /// Responses by status code (a 500 is a completed request, not a failure).
    public var byStatus: [Int: Int]
    /// Requests that got no response (refused, reset, timed out).
    public var failures: Int
    /// The first failure, said in words.
    public var firstFailure: String?
    /// Whether ``LoadTester/cancel()`` ended the run early.
    public var cancelled: Bool
    /// From the start to the last request's end.
    public var elapsed: Duration

    /// Completed requests per second.
    public var requestsPerSecond: Double {
        elapsed > .zero ? Double(completed) / elapsed.seconds : 0
    }

    /// One line for people: "200 requests in 0.41 s (488 req/s): 200 × 200".
    public var description: String {
        var parts = byStatus.keys.sorted().map { "\(byStatus[$0]!) × \($0)" }
        if failures > 0 { parts.append("\(failures) failed (\(firstFailure ?? "?"))") }
        let head = cancelled ? "cancelled after \(completed) of \(total) requests" : "\(completed) requests"
        return head + String(format: " in %.2f s (%.0f req/s)", elapsed.seconds, requestsPerSecond)
            + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
    }
}

/// Listing 7.13's `StressTest`: `totalRequests` GETs of one URL, at most
/// `maxConcurrent` in flight, with progress callbacks; startable and
/// cancellable from any thread (the book's GUI thread).
///
/// Inside, one `Task` runs a task group of AsyncHTTPClient requests and
/// counts completions in the one task that consumes the group — a single
/// owner, so the count needs no lock (Swift's version of "only the loop's
/// thread touches it"). The callback fires on that task every
/// `max(1, total / 100)` completions and at the end (the listing divides by
/// zero below 100 requests), never after the run's summary is returned. It
/// must be quick and must not draw: a UI posts it to a queue (7.14).
///
/// Where the book posts `cancel` onto the loop with `call_soon_threadsafe`,
/// `Task.cancel()` is thread-safe already: ``cancel()`` just calls it, and
/// AsyncHTTPClient closes the connections of the requests in flight.
public final class LoadTester: Sendable {
    public let url: String
    public let totalRequests: Int
    public let maxConcurrent: Int
    private let client: WebClient

    private struct State {
        var run: LoadTestRun?
    }
    private let state = Locked(State())

    /// - Parameters:
    ///   - url: what every request GETs.
    ///   - totalRequests: how many requests (at least 1).
    ///   - client: the client to use (its pool must allow `maxConcurrent`
    ///     connections per host for them to be in flight together).
    ///   - maxConcurrent: the most requests in flight at once (aiohttp's
    ///     default connector allows 100).
    /// - Throws: ``LoadTestError/invalid(_:)`` for a count or concurrency below 1.
    public init(url: String, totalRequests: Int, client: WebClient, maxConcurrent: Int = 100) throws(LoadTestError) {
        guard totalRequests >= 1 else { throw .invalid("the number of requests must be at least 1, not \(totalRequests)") }
        guard maxConcurrent >= 1 else { throw .invalid("the concurrency must be at least 1, not \(maxConcurrent)") }
        self.url = url
        self.totalRequests = totalRequests
        self.maxConcurrent = maxConcurrent
        self.client = client
    }

    /// Starts the run (once; later calls return the same run) and returns at once.
    @discardableResult
    public func start(progress: @escaping @Sendable (LoadTestProgress) -> Void = { _ in }) -> LoadTestRun {
        state.withLock { s in
            if let run = s.run { return run }
            let (url, total, limit, client) = (url, totalRequests, maxConcurrent, client)
            let run = LoadTestRun(Task { await Self.execute(url: url, total: total, limit: limit, client: client, progress: progress) })
            s.run = run
            return run
        }
    }

    /// Cancels the run, from any thread; a no-op before ``start(progress:)`` or when repeated.
    public func cancel() {
        state.withLock { $0.run }?.task.cancel()
    }

    private static func execute(
        url: String, total: Int, limit: Int, client: WebClient,
        progress: @Sendable (LoadTestProgress) -> Void
    ) async -> LoadTestSummary {
        let start = ContinuousClock.now
        let step = max(1, total / 100)
        var summary = LoadTestSummary(
            total: total, completed: 0, byStatus: [:], failures: 0, firstFailure: nil, cancelled: false, elapsed: .zero)
        await withTaskGroup(of: Result<Int, any Error>?.self) { group in
            var started = 0
            func addRequest() {
                started += 1
                group.addTask {
                    do {
                        return .success(try await fetchStatus(client: client, url: url))
                    } catch {
                        // A request ended by the cancellation is not a completed one.
                        return Task.isCancelled ? nil : .failure(error)
                    }
                }
            }
            while started < min(limit, total) { addRequest() }
            for await result in group {
                guard let result, !Task.isCancelled else { continue }
                switch result {
                case .success(let status): summary.byStatus[status, default: 0] += 1
                case .failure(let error):
                    summary.failures += 1
                    if summary.firstFailure == nil { summary.firstFailure = "\(error)" }
                }
                summary.completed += 1
                if summary.completed % step == 0 || summary.completed == total {
                    progress(LoadTestProgress(completed: summary.completed, total: total))
                }
                if started < total { addRequest() }
            }
        }
        summary.cancelled = summary.completed < total
        summary.elapsed = ContinuousClock.now - start
        return summary
    }
}

/// A started load test: await its ``summary``.
public struct LoadTestRun: Sendable {
    let task: Task<LoadTestSummary, Never>

    init(_ task: Task<LoadTestSummary, Never>) { self.task = task }

    /// Suspends until the run has ended (finished or cancelled) and every
    /// callback has been made.
    public var summary: LoadTestSummary { get async { await task.value } }
}

/// A load test that cannot be set up.
public enum LoadTestError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let why): why }
    }
}
