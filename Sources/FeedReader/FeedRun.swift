import Foundation
import WebClients
import CurriculumCore

/// Everything a run needs: the URLs, the two concurrency windows, the two
/// timeouts and the body limit.
public struct FeedReaderConfiguration: Sendable {
    /// Feed URLs, in input order (already de-duplicated by ``FeedSources``).
    public var urls: [String]
    /// Inputs that were skipped as invalid; carried into the report.
    public var skippedInputs: [FeedSources.Problem]
    /// Feeds fetched at once (default 16).
    public var maxConcurrentFeeds: Int
    /// Links checked at once (default 32).
    public var maxConcurrentLinks: Int
    /// Total time one feed request may take, body included (default 10 s).
    public var feedTimeout: Duration
    /// Time one link check may take (default 10 s).
    public var linkTimeout: Duration
    /// The largest feed body accepted (default 10 MiB).
    public var maxBytes: Int
    /// Whether to run the link-check phase at all.
    public var checkLinks: Bool

    /// Creates a configuration; see the properties for the defaults.
    public init(
        urls: [String],
        skippedInputs: [FeedSources.Problem] = [],
        maxConcurrentFeeds: Int = 16,
        maxConcurrentLinks: Int = 32,
        feedTimeout: Duration = .seconds(10),
        linkTimeout: Duration = .seconds(10),
        maxBytes: Int = 10 << 20,
        checkLinks: Bool = true
    ) {
        self.urls = urls
        self.skippedInputs = skippedInputs
        self.maxConcurrentFeeds = max(1, maxConcurrentFeeds)
        self.maxConcurrentLinks = max(1, maxConcurrentLinks)
        self.feedTimeout = feedTimeout
        self.linkTimeout = linkTimeout
        self.maxBytes = maxBytes
        self.checkLinks = checkLinks
    }

    /// The HTTP client settings that go with it: the per-host connection
    /// limit raised to the larger window (AsyncHTTPClient's default is 8, so
    /// a window of 50 would otherwise queue inside the client), connects
    /// bounded by the shorter timeout, redirects followed up to 5.
    public var webClientConfiguration: WebClientConfiguration {
        WebClientConfiguration(
            timeout: max(feedTimeout, linkTimeout),
            connectTimeout: min(feedTimeout, linkTimeout),
            maxConnectionsPerHost: max(maxConcurrentFeeds, maxConcurrentLinks),
            followRedirects: true,
            maxRedirects: 5)
    }
}

extension FeedRunner {
    /// The whole run — the seed's `main`: fetch every feed concurrently
    /// (parsing each as it arrives), collect the links, check them all
    /// concurrently, and summarise. Phases are sequential (links after all
    /// feeds, as in the seed); within a phase everything is concurrent and
    /// reported in completion order through `progress`.
    ///
    /// Never throws for a failed feed or link: those are in the report.
    /// Cancellation: cancelling the caller cancels every request in flight;
    /// the report then shows them as failed.
    ///
    /// - Parameters:
    ///   - configuration: URLs, windows, timeouts.
    ///   - client: a client whose pool fits the windows (see
    ///     ``FeedReaderConfiguration/webClientConfiguration``).
    ///   - progress: where completion lines go (`nil`: silent).
    public static func run(
        _ configuration: FeedReaderConfiguration,
        client: WebClient,
        progress: ProgressPrinter? = nil
    ) async -> Report {
        let start = ContinuousClock.now
        let c = configuration
        var results = [Report.FeedResult?](repeating: nil, count: c.urls.count)
        var feeds = [Feed?](repeating: nil, count: c.urls.count)

        progress?.phase("Fetching \(c.urls.count) feeds (at most \(c.maxConcurrentFeeds) at a time, timeout \(formatSeconds(c.feedTimeout)))")
        for await outcome in fetchFeeds(c.urls, client: client, maxConcurrent: c.maxConcurrentFeeds,
                                        timeout: c.feedTimeout, maxBytes: c.maxBytes) {
            progress?.feedDone(outcome)
            results[outcome.index] = Report.FeedResult(url: outcome.url, result: outcome.result)
            switch outcome.result {
            case .success(let feed): feeds[outcome.index] = feed
            case .failure(.malformed(_, _, _, let partial?)): feeds[outcome.index] = partial
            case .failure: break
            }
        }
        progress?.finish()

        // Input order, not completion order: the link list is deterministic.
        let parsed = zip(c.urls, feeds).compactMap { url, feed in feed.map { (url: url, feed: $0) } }
        let linkSet = LinkCollector.collect(parsed)
        var links = [Report.LinkResult?](repeating: nil, count: linkSet.links.count)
        if c.checkLinks && !linkSet.links.isEmpty {
            progress?.phase("Checking \(linkSet.links.count) links (at most \(c.maxConcurrentLinks) at a time, timeout \(formatSeconds(c.linkTimeout)))")
            for await outcome in LinkChecker.check(linkSet.urls, client: client, maxConcurrent: c.maxConcurrentLinks,
                                                   timeout: c.linkTimeout) {
                progress?.linkDone(outcome)
                links[outcome.index] = Report.LinkResult(
                    url: outcome.url, status: outcome.status, feeds: linkSet.links[outcome.index].feeds)
            }
            progress?.finish()
        }
        return Report(
            feeds: results.enumerated().map { i, r in r ?? .init(url: c.urls[i], ok: false, error: "cancelled", reason: "cancelled") },
            links: links.compactMap { $0 },
            skippedInputs: c.skippedInputs,
            elapsedSeconds: (ContinuousClock.now - start).seconds)
    }

    /// ``run(_:client:progress:)`` with its own client, configured by
    /// ``FeedReaderConfiguration/webClientConfiguration`` and shut down
    /// before returning.
    public static func run(_ configuration: FeedReaderConfiguration, progress: ProgressPrinter? = nil) async throws -> Report {
        try await withHTTPClient(configuration: configuration.webClientConfiguration) { client in
            await run(configuration, client: client, progress: progress)
        }
    }
}
