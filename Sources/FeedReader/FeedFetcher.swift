import Foundation
import NIOCore
import WebClients

/// The outcome of fetching and parsing one feed, delivered as soon as that
/// feed is done (completion order), with the run's progress at that moment.
public struct FeedFetchOutcome: Sendable, PhaseProgress {
    /// The position of this feed in the input list.
    public var index: Int
    /// The feed URL as given.
    public var url: String
    /// The parsed feed, or why it could not be read.
    public var result: Result<Feed, FeedError>
    /// Bytes received (0 on failure before the body).
    public var bytes: Int
    /// Time from the start of this feed's request to its parse result.
    public var elapsed: Duration
    /// Feeds finished so far, this one included (the seed's `len(done)`).
    public var done: Int
    /// Feeds not finished yet, queued or in flight (the seed's `len(pending)`).
    public var pending: Int

    /// Creates an outcome (``FeedRunner/fetchFeeds(_:client:maxConcurrent:timeout:maxBytes:)``
    /// makes them; tests and custom front ends may too).
    public init(index: Int, url: String, result: Result<Feed, FeedError>, bytes: Int, elapsed: Duration, done: Int, pending: Int) {
        self.index = index
        self.url = url
        self.result = result
        self.bytes = bytes
        self.elapsed = elapsed
        self.done = done
        self.pending = pending
    }
}

/// The reader's phases: fetch feeds, collect links, check links, and
/// ``run(_:client:progress:)`` for the whole thing.
///
/// Concurrency guarantees shared by every function: work is structured (a
/// windowed task group); results arrive in completion order; one failure
/// never stops the others; cancelling the caller cancels every request in
/// flight (the server sees the connections close) and nothing outlives the
/// call.
public enum FeedRunner {
    /// Fetches and parses one feed: GET with a total timeout covering the
    /// body, redirects followed by the client, non-2xx statuses and non-feeds
    /// turned into ``FeedError``s. Never throws: failures are values.
    ///
    /// Cancellation: the request is cancelled and the result is a
    /// `.connectionFailed("cancelled")` failure.
    public static func fetchFeed(
        _ url: String,
        client: WebClient,
        timeout: Duration,
        maxBytes: Int = 10 << 20
    ) async -> (result: Result<Feed, FeedError>, bytes: Int) {
        if let why = FeedSources.problem(with: url) { return (.failure(.invalidURL(why)), 0) }
        let response: WebResponse
        do {
            response = try await fetch(client: client, url: url, timeout: timeout, maxBytes: maxBytes)
        } catch let error as WebClientError {
            return (.failure(.from(error, timeout: timeout)), 0)
        } catch {
            return (.failure(.connectionFailed(error is CancellationError ? "cancelled" : "\(error)")), 0)
        }
        let bytes = response.body.readableBytes
        guard (200..<300).contains(response.status) else { return (.failure(.httpStatus(response.status)), bytes) }
        let data = Data(response.body.readableBytesView)
        do throws(FeedError) {
            return (.success(try FeedParser.parse(data: data, baseURL: URL(string: response.url) ?? URL(string: url))), bytes)
        } catch {
            return (.failure(error), bytes)
        }
    }

    /// Fetches every feed concurrently, at most `maxConcurrent` at a time,
    /// parsing each in its own child task, and yields each outcome **as it
    /// completes** — the seed's fetch phase (`asyncio.wait(...,
    /// FIRST_COMPLETED)` in a loop).
    ///
    /// - Parameters:
    ///   - urls: feed URLs; invalid ones fail at once with ``FeedError/invalidURL(_:)``.
    ///   - client: the shared client; its per-host connection limit should be
    ///     at least `maxConcurrent` (``FeedReaderConfiguration`` sees to it).
    ///   - maxConcurrent: the window (requests in flight at once).
    ///   - timeout: per request, covering connect, head and body.
    ///   - maxBytes: the largest body accepted (``FeedError/tooLarge(limit:)``).
    /// - Returns: a stream of exactly `urls.count` outcomes in completion
    ///   order; it finishes when the last feed is done. Stopping the
    ///   iteration early cancels the remaining requests.
    public static func fetchFeeds(
        _ urls: [String],
        client: WebClient,
        maxConcurrent: Int,
        timeout: Duration,
        maxBytes: Int = 10 << 20
    ) -> AsyncStream<FeedFetchOutcome> {
        let total = urls.count
        return streamConcurrently(urls, maxConcurrent: maxConcurrent) { index, url in
            let start = ContinuousClock.now
            let (result, bytes) = await fetchFeed(url, client: client, timeout: timeout, maxBytes: maxBytes)
            return FeedFetchOutcome(
                index: index, url: url, result: result, bytes: bytes,
                elapsed: .now - start, done: 0, pending: total)
        }
    }
}
