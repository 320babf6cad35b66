import ArgumentParser
import FeedReader
import Foundation
import LocalServices
import WebClients
import Threads
import AsyncPrimitives
import CurriculumCore

/// `swift run -c release benchmarks rss`: the RSS reader against the local
/// stub at scale — 200 generated feeds × 20 entries, every feed and every
/// link answering after 50 ms, read with windows of 50.
///
/// The ideal wall time is the total latency divided by the window
/// (`(feeds + links) × latency / concurrency`): what a perfectly packed
/// window would take. The target is within 1.5× of it.
///
/// `--serve` only starts the stub with the same feeds, prints `BASE <url>`
/// and waits (until standard input closes), for `Scripts/rssreader_bench.py`.
struct RSSBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rss",
        abstract: "RSS reader: 200 feeds x 20 entries at 50 ms latency, window 50, vs the ideal.")

    @Option(help: "Generated feeds.")
    var feeds = 200

    @Option(help: "Entries per feed (each a distinct link).")
    var entries = 20

    @Option(help: "Latency of every feed and link, in milliseconds.")
    var latency = 50

    @Option(help: "Feeds fetched and links checked at once.")
    var concurrency = 50

    @Flag(help: "Only serve the generated feeds (prints BASE <url>) until standard input closes.")
    var serve = false

    func run() async throws {
        let stub = try await StubHTTPServer.start(threads: 2)
        do {
            for f in 0..<feeds {
                let body = FeedFixtures.generatedFeed(title: "Bench feed \(f)", entries: entries) { e in
                    stub.url("/delay/\(latency)?id=f\(f)-e\(e)")
                }
                stub.register("/bench/feed-\(f).xml", contentType: "application/rss+xml", body: body)
            }
            let urls = (0..<feeds).map { stub.url("/bench/feed-\($0).xml?delay_ms=\(latency)") }
            if serve {
                FileHandle.standardOutput.write(Data("BASE \(stub.baseURL) feeds=\(feeds) entries=\(entries) latency_ms=\(latency)\n".utf8))
                // Wait for standard input to close, off the cooperative pool.
                await spawnThread(name: "stdin-watch") { while readLine() != nil {} }.joined()
            } else {
                try await measure(stub, urls)
            }
        } catch {
            try? await stub.shutdown()
            throw error
        }
        try await stub.shutdown()
    }

    private func measure(_ stub: StubHTTPServer, _ urls: [String]) async throws {
        let configuration = FeedReaderConfiguration(
            urls: urls, maxConcurrentFeeds: concurrency, maxConcurrentLinks: concurrency,
            feedTimeout: .seconds(30), linkTimeout: .seconds(30))
        try await withHTTPClient(configuration: configuration.webClientConfiguration) { client in
            // Warm-up: open the pool's connections once.
            _ = await FeedRunner.run(
                FeedReaderConfiguration(urls: Array(urls.prefix(concurrency)), maxConcurrentFeeds: concurrency, checkLinks: false),
                client: client)
            stub.resetCounters()

            let start = ContinuousClock.now
            var feedsOK = 0
            var parsed: [(url: String, feed: Feed)] = []
            for await outcome in FeedRunner.fetchFeeds(urls, client: client, maxConcurrent: concurrency, timeout: .seconds(30)) {
                if case .success(let feed) = outcome.result {
                    feedsOK += 1
                    parsed.append((outcome.url, feed))
                }
            }
            let fetched = ContinuousClock.now
            let peakFeeds = stub.counters.peakInFlight
            stub.resetCounters()
            let links = LinkCollector.collect(parsed)
            var linksOK = 0
            for await outcome in LinkChecker.check(links.urls, client: client, maxConcurrent: concurrency, timeout: .seconds(30)) {
                if !outcome.status.isBroken { linksOK += 1 }
            }
            let end = ContinuousClock.now
            let peakLinks = stub.counters.peakInFlight

            let wall = (end - start).seconds
            let fetchWall = (fetched - start).seconds
            let checkWall = (end - fetched).seconds
            let latencyS = Double(latency) / 1000
            let idealFetch = Double(urls.count) * latencyS / Double(concurrency)
            let idealCheck = Double(links.links.count) * latencyS / Double(concurrency)
            let ideal = idealFetch + idealCheck
            print("RSS reader: \(urls.count) feeds x \(entries) entries, \(latency) ms latency each, window \(concurrency)")
            print(String(format: "  fetch+parse: %d/%d feeds ok in %.3f s (ideal %.3f s), peak in flight %d",
                         feedsOK, urls.count, fetchWall, idealFetch, peakFeeds))
            print(String(format: "  link checks: %d/%d links ok in %.3f s (ideal %.3f s), peak in flight %d",
                         linksOK, links.links.count, checkWall, idealCheck, peakLinks))
            print(String(format: "  total %.3f s, ideal %.3f s (total latency / concurrency): %.2fx the ideal (target < 1.5x)",
                         wall, ideal, wall / ideal))
            print(String(format: "RESULT feeds=%d links=%d concurrency=%d latency_ms=%d wall_s=%.3f ideal_s=%.3f ratio=%.3f fetch_s=%.3f check_s=%.3f feeds_ok=%d links_ok=%d peak_feeds=%d peak_links=%d",
                         urls.count, links.links.count, concurrency, latency, wall, ideal, wall / ideal, fetchWall, checkWall,
                         feedsOK, linksOK, peakFeeds, peakLinks))
        }
    }
}
