import CurriculumTesting
import FeedReader
import Foundation
import LocalServices
import Parallelism
import Testing
import WebClients
import AsyncPrimitives
import CurriculumCore
import Processes

/// The seed's own sketch, `rssreader.py`: fetch many feeds concurrently and
/// handle each as it completes, parse the entries, then check every entry
/// link's status concurrently with a timeout, logging failures without
/// stopping. Run with `swift test --filter RSSReader`.
@Suite("RSS reader", .curriculum, .tags(.http), .timeLimit(.minutes(3)))
struct RSSReader {

    // MARK: - R1 fetching

    @Test("RSS R1 — feeds are handled as they complete, not in input order",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func r1_completionOrder() async throws {
        // Seed: asyncio.wait(FIRST_COMPLETED) in a loop; each feed is processed when it arrives, and the phase lasts as long as the slowest.
        // Swift: a windowed task group yields in completion order by itself; done/pending become two counters.
        try await withFeedStub { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 8)) { client in
                let ms1 = ms(1)  // one book second in the stub's milliseconds
                let urls = [
                    stub.url("/feeds/rss2.xml?delay_ms=\(3 * ms1)"),
                    stub.url("/feeds/atom.xml?delay_ms=\(1 * ms1)"),
                    stub.url("/feeds/rdf.xml?delay_ms=\(2 * ms1)"),
                ]
                let start = ContinuousClock.now
                var order: [Int] = []
                var progress: [[Int]] = []
                for await outcome in FeedRunner.fetchFeeds(urls, client: client, maxConcurrent: 8, timeout: Book.seconds(20)) {
                    order.append(outcome.index)
                    progress.append([outcome.done, outcome.pending])
                    #expect((try? outcome.result.get()) != nil, "\(outcome.url)")
                }
                let elapsed = ContinuousClock.now - start
                #expect(order == [1, 2, 0])
                #expect(progress == [[1, 2], [2, 1], [3, 0]])
                #expect(elapsed >= Book.seconds(3))
                #expect(elapsed < Book.seconds(4.5))
            }
        }
    }

    @Test("RSS R1 — the feed window bounds the requests in flight")
    func r1_feedWindow() async throws {
        // Seed: unbounded tasks, bounded only by aiohttp's 100-connection pool.
        // Swift: a window of 2 children. Each feed is held 2 book seconds, then answers only once 2 requests wait at the
        // stub together (its barrier): the run completes only if the window really holds 2 at once, and a wider window
        // would have had more requests arrive during the hold, which the stub's peak in-flight count would show.
        try await withFeedStub { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 16)) { client in
                let urls = (0..<6).map {
                    stub.url("/feeds/rss2.xml?delay_ms=\(ms(2))&barrier=2&key=r1window&timeout_ms=\(ms(20))&id=\($0)")
                }
                var ok = 0
                for await outcome in FeedRunner.fetchFeeds(urls, client: client, maxConcurrent: 2, timeout: Book.seconds(40)) {
                    if case .success(let feed) = outcome.result, feed.entries.count == 3 { ok += 1 }
                }
                #expect(ok == 6)
                #expect(stub.counters.peakInFlight == 2)
                #expect(stub.counters.perPath["/feeds/rss2.xml"] == 6)
            }
        }
    }

    @Test("RSS R1 — a hanging feed is abandoned at its timeout and holds nothing up",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func r1_hangingFeedTimesOut() async throws {
        // Seed: the fetch phase has no timeout at all: one hanging feed keeps the program waiting (aiohttp's 5-minute default).
        // Swift: every request has its own deadline covering the body; the stub sees the abandoned request aborted.
        try await withFeedStub { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 8)) { client in
                let urls = [stub.url("/hang"), stub.url("/feeds/rss2.xml"), stub.url("/feeds/atom.xml")]
                let start = ContinuousClock.now
                var order: [Int] = []
                var hang: Result<Feed, FeedError>?
                for await outcome in FeedRunner.fetchFeeds(urls, client: client, maxConcurrent: 3, timeout: Book.seconds(2)) {
                    order.append(outcome.index)
                    if outcome.index == 0 { hang = outcome.result }
                }
                let elapsed = ContinuousClock.now - start
                #expect(order.last == 0, "the good feeds are reported first")
                #expect(hang.map { if case .failure(.timedOut) = $0 { true } else { false } } == true)
                #expect(elapsed >= Book.seconds(2))
                #expect(elapsed < Book.seconds(3.5))
                try await stub.waitUntil(aborted: 1)
            }
        }
    }

    // MARK: - R2 failures

    @Test("RSS R2 — each failing feed carries its own reason and the rest are read")
    func r2_failuresReported() async throws {
        // Seed: logging.error(exception) and go on; HTTP error pages and HTML silently count as empty feeds.
        // Swift: every failure is a typed FeedError value in the stream; the good feeds are unaffected.
        let refusing = try RefusingPort()
        defer { refusing.close() }
        try await withFeedStub { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 16)) { client in
                let urls = [
                    stub.url("/feeds/rss2.xml"), stub.url("/feeds/atom.xml"), stub.url("/feeds/rdf.xml"),
                    refusing.baseURL + "/feed.xml", stub.url("/hang"), stub.url("/status/404"), stub.url("/status/500"),
                    stub.url("/feeds/notafeed.html"), stub.url("/feeds/truncated.xml"), stub.url("/feeds/malformed.xml"),
                    stub.url("/feeds/empty.xml"), "ftp://files.example.org/feed.xml", "http://",
                    stub.url("/redirect?to=/feeds/relative.xml"), stub.url("/stall-body"),
                    stub.url("/redirect/301?to=/feeds/rss2.xml"),
                ]
                var results = [Int: Result<Feed, FeedError>]()
                // 60 u (3 s): the /hang request must reach the stub before its deadline even on a
                // loaded machine, or the stub could never count it aborted below; and the good
                // feeds must finish within it under --sanitize=thread (1 s once did not).
                for await outcome in FeedRunner.fetchFeeds(urls, client: client, maxConcurrent: 16, timeout: Book.seconds(60)) {
                    results[outcome.index] = outcome.result
                }
                #expect(results.count == urls.count)
                #expect(try results[0]?.get().entries.count == 3)
                #expect(try results[1]?.get().entries.count == 3)
                #expect(try results[2]?.get().entries.count == 2)
                #expect(failure(results[3]).map { if case .connectionFailed = $0 { true } else { false } } == true)
                #expect(failure(results[4]) == .timedOut(after: Book.seconds(60)))
                #expect(failure(results[5]) == .httpStatus(404))
                #expect(failure(results[6]) == .httpStatus(500))
                #expect(failure(results[7]) == .notAFeed(rootElement: "html"))
                guard case .malformed(let line, _, _, let partial)? = failure(results[8]) else {
                    Issue.record("truncated.xml: \(String(describing: results[8]))")
                    return
                }
                #expect(line > 1)
                #expect(partial?.entries.map(\.title) == ["Complete one", "Complete two"])
                #expect(failure(results[9]).map { if case .malformed = $0 { true } else { false } } == true)
                #expect(failure(results[10]) == .notAFeed(rootElement: nil))
                #expect(failure(results[11]) == .invalidURL("unsupported scheme ftp"))
                #expect(failure(results[12]).map { if case .invalidURL = $0 { true } else { false } } == true)
                // Redirect followed; relative links resolve against the final URL.
                let redirected = try #require(try? results[13]?.get())
                #expect(redirected.entries.first?.link == stub.url("/posts/1"))
                // The deadline covers the body: a head and half a body then silence is a timeout.
                #expect(failure(results[14]) == .timedOut(after: Book.seconds(60)))
                #expect(try results[15]?.get().entries.count == 3, "a 301 is followed")
                // Both stalled requests were abandoned; only /stall-body had sent a head.
                try await withTimeout(.seconds(10)) {
                    try await stub.waitUntil { $0.aborted >= 2 && $0.bodiesCutOff >= 1 && $0.inFlight == 0 }
                }
                #expect(stub.counters.aborted == 2)
                #expect(stub.counters.bodiesCutOff == 1)
            }
        }
    }

    @Test("RSS R2 — a feed that stalls mid-body times out at its deadline and holds nothing up",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func r2_stallMidBody() async throws {
        // Seed: no timeout in the fetch phase; a server that stops mid-body keeps the program waiting for minutes.
        // Swift: the per-request deadline covers the body as well as the head; the run ends at the deadline, not later.
        try await withFeedStub { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 8)) { client in
                let urls = [stub.url("/stall-body"), stub.url("/feeds/rss2.xml"), stub.url("/hang")]
                let start = ContinuousClock.now
                var stalledAt: Duration?
                var results = [Int: Result<Feed, FeedError>]()
                for await outcome in FeedRunner.fetchFeeds(urls, client: client, maxConcurrent: 3, timeout: Book.seconds(2)) {
                    results[outcome.index] = outcome.result
                    if outcome.index == 0 { stalledAt = ContinuousClock.now - start }
                }
                let elapsed = ContinuousClock.now - start
                #expect(failure(results[0]) == .timedOut(after: Book.seconds(2)))
                #expect(try results[1]?.get().entries.count == 3)
                #expect(failure(results[2]) == .timedOut(after: Book.seconds(2)))
                let t = try #require(stalledAt)
                #expect(t >= Book.seconds(2))
                #expect(t < Book.seconds(3.5))
                #expect(elapsed < Book.seconds(4), "2 u + 2 u: neither stalled request holds the run")
                try await withTimeout(.seconds(10)) {
                    try await stub.waitUntil { $0.aborted >= 2 && $0.bodiesCutOff >= 1 && $0.inFlight == 0 }
                }
                #expect(stub.counters.bodiesCutOff == 1, "the stalled body was abandoned half-sent")
            }
        }
    }

    @Test("RSS R2 — bad input: a 10 MiB feed, a huge valid feed, feeds without links")
    func r2_badInput() async throws {
        // Seed: reads any body whole into memory and hands it to feedparser.
        // Swift: bodies are collected up to a limit (10 MiB by default) with a clear error; larger limits parse fine.
        try await withFeedStub { stub in
            // A valid feed of three items padded past 10 MiB with whitespace.
            let padded = Array(String(decoding: try fixture("rss2.xml", base: stub.baseURL), as: UTF8.self)
                .replacingOccurrences(of: "</channel>", with: String(repeating: " ", count: (10 << 20) + 1) + "</channel>").utf8)
            #expect(padded.count > 10 << 20)
            stub.register("/feeds/big.xml", contentType: "application/rss+xml", body: padded)
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 4)) { client in
                let tooBig = await FeedRunner.fetchFeed(stub.url("/feeds/big.xml"), client: client, timeout: .seconds(30))
                #expect(failure(tooBig.result) == .tooLarge(limit: 10 << 20))
                let allowed = await FeedRunner.fetchFeed(stub.url("/feeds/big.xml"), client: client, timeout: .seconds(30), maxBytes: 32 << 20)
                #expect((try? allowed.result.get())?.entries.count == 3, "\(allowed.result)")
                let noLinks = await FeedRunner.fetchFeed(stub.url("/feeds/nolinks.xml"), client: client, timeout: .seconds(30))
                #expect((try? noLinks.result.get())?.entriesWithoutLinks == 2)
                let emptyChannel = await FeedRunner.fetchFeed(stub.url("/feeds/empty-channel.xml"), client: client, timeout: .seconds(30))
                #expect((try? emptyChannel.result.get())?.entries.isEmpty == true)
            }
        }
    }

    // MARK: - R3 parsing

    @Test("RSS R3 — RSS 2.0: entities, CDATA, a guid-only item, RFC 822 dates")
    func r3_rss2() throws {
        // Seed: feedparser.parse(text) gives entries with title, link and dates.
        // Swift: a SAX parser on XMLParser fed raw bytes; the port implements the subset the sketch uses.
        let feed = try FeedParser.parse(data: fixture("rss2.xml"), baseURL: URL(string: "http://feeds.test/feeds/rss2.xml"))
        #expect(feed.format == .rss2)
        #expect(feed.title == "Stub Weekly & Friends")
        #expect(feed.entries.map(\.title) == ["Tom & Jerry\u{2019}s guide to <async>", "A page that went away", "Only a permalink guid"])
        #expect(feed.entries.map(\.link) == [
            "http://feeds.test/status/200?id=rss2-1", "http://feeds.test/status/404?id=rss2-2", "http://feeds.test/status/200?id=rss2-3",
        ])
        #expect(feed.entries[0].summary == "<p>Event loops <b>explained</b> & compared</p>")
        #expect(feed.entries.map { $0.published?.timeIntervalSince1970 } == [1748943561, 1749049200, 1749125100])
    }

    @Test("RSS R3 — Atom: xml:base, alternate links, self/edit ignored, ISO 8601 dates")
    func r3_atom() throws {
        // Seed: feedparser picks rel="alternate" and resolves relative hrefs against xml:base.
        // Swift: the same rules, with an xml:base stack (feed- and entry-level).
        let feed = try FeedParser.parse(data: fixture("atom.xml"), baseURL: URL(string: "http://feeds.test/feeds/atom.xml"))
        #expect(feed.format == .atom)
        #expect(feed.title == "Atom \u{2014} sample")
        #expect(feed.entries.map(\.link) == [
            "http://feeds.test/status/200?id=atom-1", "http://feeds.test/status/500?id=atom-2", "http://feeds.test/redirect/301?to=/status/200",
        ])
        #expect(feed.entries[1].title == "Server <em>error</em>")
        #expect(feed.entries.map { $0.published?.timeIntervalSince1970 } == [1748781000, 1748844930, 1748995199.25])
    }

    @Test("RSS R3 — RSS 1.0 (RDF) with dc:date, and an ISO-8859-1 feed")
    func r3_rdfAndLatin1() throws {
        // Seed: feedparser handles both; decoding text before parsing would garble Latin-1.
        // Swift: XMLParser gets the raw bytes and honours the declared encoding.
        let rdf = try FeedParser.parse(data: fixture("rdf.xml"), baseURL: nil)
        #expect(rdf.format == .rss1)
        #expect(rdf.title == "RDF sample")
        #expect(rdf.entries.map(\.link) == ["http://feeds.test/status/200?id=rdf-1", "http://feeds.test/delay/100?id=rdf-2"])
        #expect(rdf.entries.map { $0.published?.timeIntervalSince1970 } == [1748584800, 1748667600])
        let latin1 = try FeedParser.parse(data: fixture("latin1.xml"), baseURL: nil)
        #expect(latin1.title == "Le café des flux")
        #expect(latin1.entries.first?.title == "Café crème et éclairs")
        #expect(latin1.entries.first?.published?.timeIntervalSince1970 == 1748844000)
    }

    @Test("RSS R3 — broken documents: truncated, malformed, HTML, empty; a 5,000-item feed")
    func r3_brokenDocuments() throws {
        // Seed: feedparser sets bozo for a truncated document but returns what it parsed; HTML and "" give 0 entries silently.
        // Swift: on Linux XMLParser.parse() returns true for a truncated document, so parserError decides; non-feeds are .notAFeed.
        let html = try fixture("notafeed.html"), opml = try fixture("feeds.opml")
        let truncated = try fixture("truncated.xml"), malformed = try fixture("malformed.xml")
        #expect(throws: FeedError.notAFeed(rootElement: "html")) { try FeedParser.parse(data: html) }
        #expect(throws: FeedError.notAFeed(rootElement: nil)) { try FeedParser.parse(data: Data()) }
        #expect(throws: FeedError.notAFeed(rootElement: nil)) { try FeedParser.parse(data: Data("just text".utf8)) }
        #expect(throws: FeedError.notAFeed(rootElement: "opml")) { try FeedParser.parse(data: opml) }
        do throws(FeedError) {
            _ = try FeedParser.parse(data: truncated)
            Issue.record("truncated.xml parsed without error")
        } catch {
            guard case .malformed(_, _, let message, let partial) = error else { throw error }
            #expect(partial?.entries.map(\.link) == ["http://feeds.test/status/200?id=truncated-1", "http://feeds.test/status/200?id=truncated-2"])
            #expect(message.contains("premature end"))
        }
        #expect {
            try FeedParser.parse(data: malformed)
        } throws: { error in
            if case FeedError.malformed(_, _, let message, _) = error { return message == "mismatched end tag" }
            return false
        }
        let generated = FeedFixtures.generatedFeed(title: "Generated", entries: 5_000) { "/item/\($0)" }
        let feed = try FeedParser.parse(data: Data(generated), baseURL: URL(string: "http://feeds.test/"))
        #expect(feed.entries.count == 5_000)
        #expect(feed.entries.last?.link == "http://feeds.test/item/4999")
    }

    // MARK: - R4 links

    @Test("RSS R4 — links are collected once each, relative ones resolved, link-less entries counted")
    func r4_collect() throws {
        // Seed: [entry.link for …] keeps duplicates and None, and relative links stay relative (their GET then fails).
        // Swift: LinkSet is ordered and de-duplicated, remembers which feeds share a link, counts entries without one.
        let base = "http://feeds.test"
        func parsed(_ name: String) throws -> (url: String, feed: Feed) {
            let url = "\(base)/feeds/\(name)"
            return (url, try FeedParser.parse(data: fixture(name), baseURL: URL(string: url)))
        }
        let nolinks = LinkCollector.collect([try parsed("nolinks.xml")])
        #expect(nolinks.urls == ["\(base)/status/200?id=nolinks-3"])
        #expect(nolinks.entriesWithoutLinks == 2)
        let relative = LinkCollector.collect([try parsed("relative.xml")])
        #expect(relative.urls.prefix(2) == ["\(base)/posts/1", "\(base)/status/200?id=relative-2"])
        let dups = LinkCollector.collect([try parsed("dup-a.xml"), try parsed("dup-b.xml")])
        #expect(dups.urls == ["\(base)/status/200?id=shared", "\(base)/status/200?id=dup-a", "\(base)/status/200?id=dup-b"])
        #expect(dups.links[0].feeds == ["\(base)/feeds/dup-a.xml", "\(base)/feeds/dup-b.xml"])
        #expect(dups.entriesWithLinks == 4)
    }

    // MARK: - R5 link checks

    @Test("RSS R5 — every link gets its status class; failures never stop the others")
    func r5_linkStatuses() async throws {
        // Seed: GET each link, print the status, log exceptions; the wait timeout abandons nothing.
        // Swift: HEAD (GET where HEAD is refused) with a per-request deadline; outcomes are typed classes.
        let refusing = try RefusingPort()
        defer { refusing.close() }
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 16)) { client in
                let urls = [
                    stub.url("/status/200"), stub.url("/status/404"), stub.url("/status/500"),
                    stub.url("/redirect?to=/status/200"), stub.url("/hang"), stub.url("/reset"),
                    refusing.baseURL + "/page", stub.url("/status/200?id=h&head_status=405"),
                    stub.url("/bytes/16000000?head_status=501"), "ftp://example.org/x", "/relative/path",
                    stub.url("/redirect?to=/status/404"), stub.url("/redirect/301?to=/status/200?id=r301"),
                    stub.url("/stall-body"), stub.url("/stall-body?head_status=405"),
                ]
                var outcomes = [Int: LinkOutcome]()
                // Generous (5 s): redirects and HEAD→GET fallbacks are two requests each, the
                // 1 MB GET shares the machine with the rest of the suite (2 s once ran out), and
                // slow builds (--sanitize=thread) must pass too; only /hang waits it out.
                for await outcome in LinkChecker.check(urls, client: client, maxConcurrent: 16, timeout: Book.seconds(100)) {
                    outcomes[outcome.index] = outcome
                }
                let statuses = (0..<urls.count).map { outcomes[$0]?.status }
                #expect(statuses[0] == .ok(200))
                #expect(statuses[1] == .clientError(404))
                #expect(statuses[2] == .serverError(500))
                #expect(statuses[3] == .redirected(to: stub.url("/status/200"), status: 200))
                #expect(statuses[4] == .timedOut)
                #expect(statuses[5].map { if case .connectionFailed = $0 { true } else { false } } == true)
                #expect(statuses[6].map { if case .connectionFailed = $0 { true } else { false } } == true)
                #expect(statuses[7] == .ok(200))
                #expect(outcomes[7]?.method == "GET")
                #expect(statuses[8] == .ok(200))
                #expect(outcomes[8]?.method == "GET")
                #expect(outcomes[0]?.method == "HEAD")
                #expect(statuses[9] == .invalidURL("unsupported scheme ftp"))
                #expect(statuses[10].map { if case .invalidURL = $0 { true } else { false } } == true)
                #expect(statuses[11] == .clientError(404))
                #expect(statuses[12] == .redirected(to: stub.url("/status/200?id=r301"), status: 200))
                #expect(statuses[13] == .ok(200))
                #expect(outcomes[13]?.method == "HEAD")
                #expect(statuses[14] == .ok(200), "only the head matters to a link check")
                #expect(outcomes[14]?.method == "GET")
                #expect(stub.counters.perPath["/hang"] == 1)
                // The two GET fallbacks never downloaded their bodies: 16 MB cannot sit in the
                // loopback buffers, and /stall-body never sends its second half. The stub saw both
                // cut off mid-body, and /hang abandoned before its head.
                try await withTimeout(.seconds(10)) {
                    try await stub.waitUntil { $0.aborted >= 2 && $0.bodiesCutOff >= 2 && $0.inFlight == 0 }
                }
                #expect(stub.counters.bodiesCutOff == 2)
                #expect(stub.counters.aborted == 2, "/hang and the /stall-body GET")
            }
        }
    }

    @Test("RSS R5 — a hanging link times out on its own deadline and the phase ends",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func r5_linkTimeout() async throws {
        // Seed: timeout=5 only bounds one wait() round; a hanging link keeps the program alive for minutes.
        // Swift: each request is cancelled at its deadline; nothing outlives the phase.
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 8)) { client in
                let urls = [stub.url("/hang"), stub.url("/status/200"), stub.url("/delay/\(Book.second.milliseconds)")]
                let start = ContinuousClock.now
                var hangAt: Duration?
                var statuses = [Int: LinkStatus]()
                for await outcome in LinkChecker.check(urls, client: client, maxConcurrent: 3, timeout: Book.seconds(2)) {
                    statuses[outcome.index] = outcome.status
                    if outcome.index == 0 { hangAt = ContinuousClock.now - start }
                }
                let elapsed = ContinuousClock.now - start
                #expect(statuses == [0: .timedOut, 1: .ok(200), 2: .ok(200)])
                let t = try #require(hangAt)
                #expect(t >= Book.seconds(2))
                #expect(t < Book.seconds(3.5))
                #expect(elapsed < Book.seconds(4))
                try await stub.waitUntil(aborted: 1)
                try await stub.waitUntil { $0.inFlight == 0 }
            }
        }
    }

    @Test("RSS R5 — the link window is respected, and filled: a /barrier proof")
    func r5_linkWindow() async throws {
        // Seed: concurrency bounded by accident (aiohttp's 100 connections).
        // Swift: with a window of 3, /barrier/3 opens (3 in flight at once) and the peak is exactly 3; a window of 2 cannot open it.
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 16)) { client in
                let urls = (0..<6).map { stub.url("/barrier/3?key=w3&timeout_ms=5000&id=\($0)") }
                var statuses: [LinkStatus] = []
                for await outcome in LinkChecker.check(urls, client: client, maxConcurrent: 3, timeout: .seconds(20)) {
                    statuses.append(outcome.status)
                }
                #expect(statuses == Array(repeating: .ok(200), count: 6))
                #expect(stub.counters.peakInFlight == 3)
                #expect(stub.counters.barrierTimeouts == 0)

                // Mutation check: a window of 2 never gets 3 requests to the barrier at once.
                stub.resetCounters()
                let narrow = (0..<3).map { stub.url("/barrier/3?key=w2&timeout_ms=\(Book.second.milliseconds * 2)&id=\($0)") }
                var narrowStatuses: [LinkStatus] = []
                for await outcome in LinkChecker.check(narrow, client: client, maxConcurrent: 2, timeout: .seconds(20)) {
                    narrowStatuses.append(outcome.status)
                }
                #expect(narrowStatuses.contains(.serverError(504)))
                #expect(stub.counters.peakInFlight <= 2)
            }
        }
    }

    // MARK: - R6 output and report

    @Test("RSS R6 — progress lines come in completion order and match the report",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func r6_progressAndReport() async throws {
        // Seed: prints done/pending counts per round and each status; no summary, exit status always 0.
        // Swift: one line per completion in both phases, then a Report whose counts match those lines.
        try await withFeedStub { stub in
            let ms1 = ms(1)  // one book second in the stub's milliseconds
            let lines = Locked<[String]>([])
            let printer = ProgressPrinter { text in lines.withLock { $0.append(contentsOf: text.split(separator: "\n").map(String.init)) } }
            let configuration = FeedReaderConfiguration(
                urls: [stub.url("/feeds/rss2.xml?delay_ms=\(2 * ms1)"), stub.url("/feeds/dup-a.xml"), stub.url("/status/500?delay_ms=\(ms1)")],
                maxConcurrentFeeds: 4, maxConcurrentLinks: 4, feedTimeout: Book.seconds(40), linkTimeout: Book.seconds(40))
            let report = try await FeedRunner.run(configuration, progress: printer)
            let printed = lines.withLock { $0 }
            let feedLines = printed.filter { $0.hasPrefix("[") }.prefix(3)
            #expect(feedLines.map { String($0.prefix(5)) } == ["[1/3]", "[2/3]", "[3/3]"])
            #expect(feedLines[feedLines.startIndex].contains("/feeds/dup-a.xml — 2 entries"))
            #expect(feedLines[feedLines.startIndex + 1].contains("/status/500?delay_ms=\(ms1) — failed: HTTP status 500"))
            #expect(feedLines[feedLines.startIndex + 2].contains("/feeds/rss2.xml"))
            let linkLines = printed.filter { $0.hasPrefix("[") }.dropFirst(3)
            #expect(linkLines.count == report.summary.links)
            #expect(linkLines.filter { $0.contains(" 404 ") }.count == report.summary.linkOutcomes["clientError"])
            #expect(report.summary.feedsOK == 2)
            #expect(report.summary.feedsFailed == 1)
            #expect(report.feeds.map(\.error) == [nil, nil, "httpStatus"])
            #expect(report.summary.links == 5)
            #expect(report.summary.linksBroken == 1)
            #expect(report.exitStatus == 3)
            #expect(report.rendered().contains("Broken links:"))
            // The JSON rendering decodes back into the same report.
            let decoded = try JSONDecoder().decode(Report.self, from: report.jsonData())
            #expect(decoded == report)
        }
    }

    @Test("RSS R6 — the report shows what arrived: every entry in JSON, the newest per feed in the text")
    func r6_entriesShown() async throws {
        // Seed: parses every entry and prints only a count of links.
        // Swift: the Report carries every entry (title, link, date, summary); the text report shows the newest per feed.
        // Expected values are read off the fixture files by hand, not from the parser's output.
        try await withFeedStub { stub in
            let configuration = FeedReaderConfiguration(
                urls: ["rss2.xml", "latin1.xml", "relative.xml", "truncated.xml"].map { stub.url("/feeds/\($0)") },
                feedTimeout: .seconds(20), checkLinks: false)
            let report = try await FeedRunner.run(configuration)
            func date(_ iso: String) throws -> Date { try Date(iso, strategy: .iso8601) }
            let rss2 = report.feeds[0].items
            #expect(rss2.map(\.title) == ["Tom & Jerry\u{2019}s guide to <async>", "A page that went away", "Only a permalink guid"])
            #expect(rss2.map(\.link) == ["/status/200?id=rss2-1", "/status/404?id=rss2-2", "/status/200?id=rss2-3"].map(stub.url))
            #expect(try rss2.map(\.published) == [
                date("2025-06-03T09:39:21Z"), date("2025-06-04T15:00:00Z"), date("2025-06-05T12:05:00Z"),  // GMT, +0300, EST
            ])
            #expect(rss2.map(\.summary) == ["<p>Event loops <b>explained</b> & compared</p>", "This entry's page answers 404.", nil])
            // ISO-8859-1 bytes on the wire, decoded as declared.
            #expect(report.feeds[1].items == [.init(title: "Caf\u{E9} cr\u{E8}me et \u{E9}clairs", link: stub.url("/status/200?id=latin1-1"),
                                                  published: try date("2025-06-02T06:00:00Z"))])
            // Relative links resolved against the feed's URL.
            #expect(report.feeds[2].items.prefix(2).map(\.link) == [stub.url("/posts/1"), stub.url("/status/200?id=relative-2")])
            // A truncated feed keeps the entries before the break, as feedparser does.
            #expect(report.feeds[3].ok == false)
            #expect(report.feeds[3].items.map(\.title) == ["Complete one", "Complete two"])

            // JSON: dates as ISO 8601 text, and a plain JSONDecoder reads it back whole.
            let json = try report.jsonData()
            let text = String(decoding: json, as: UTF8.self)
            #expect(text.contains("\"published\" : \"2025-06-05T12:05:00.000Z\""))
            #expect(text.contains("\"title\" : \"Caf\u{E9} cr\u{E8}me et \u{E9}clairs\""))
            #expect(try JSONDecoder().decode(Report.self, from: json) == report)
            let badDate = Data(#"{"title":"x","published":"yesterday"}"#.utf8)
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(Report.EntryResult.self, from: badDate) }

            // Text: the newest two of rss2.xml, newest first, with date and link; none with 0.
            let lines = report.rendered(newestEntries: 2).split(separator: "\n").map(String.init)
            let feedLine = try #require(lines.firstIndex { $0.contains("/feeds/rss2.xml") })
            #expect(Array(lines[(feedLine + 1)...(feedLine + 4)]).map { $0.trimmingCharacters(in: .whitespaces) } == [
                "2025-06-05 12:05Z  Only a permalink guid", stub.url("/status/200?id=rss2-3"),
                "2025-06-04 15:00Z  A page that went away", stub.url("/status/404?id=rss2-2"),
            ])
            #expect(lines[feedLine + 5].contains("/feeds/latin1.xml"))
            #expect(!report.rendered(newestEntries: 0).contains("Only a permalink guid"))
        }
    }

    @Test("RSS R6 — a live status line is redrawn on a terminal, plain lines otherwise", .tags(.terminal))
    func r6_liveStatusLine() {
        // Seed: print() per wait round, whatever the output is.
        // Swift: isatty decides; on a terminal the status line is erased (\r ESC[2K) and redrawn under each completion line.
        let outcome = FeedFetchOutcome(index: 0, url: "http://feeds.test/a.xml", result: .success(Feed(format: .atom, entries: [Entry()])),
                                       bytes: 10, elapsed: .zero, done: 1, pending: 2)
        let last = FeedFetchOutcome(index: 1, url: "http://feeds.test/b.xml", result: .failure(.httpStatus(404)),
                                    bytes: 0, elapsed: .zero, done: 3, pending: 0)
        for live in [true, false] {
            let text = Locked("")
            let printer = ProgressPrinter(live: live) { piece in text.withLock { $0 += piece } }
            printer.feedDone(outcome)
            printer.feedDone(last)
            printer.finish()
            let out = text.withLock { $0 }
            let plain = "[1/3] http://feeds.test/a.xml — 1 entry (Atom)\n[3/3] http://feeds.test/b.xml — failed: HTTP status 404\n"
            if live {
                #expect(out == "[1/3] http://feeds.test/a.xml — 1 entry (Atom)\nfeeds: 1/3 done, 2 pending"
                        + "\r\u{1B}[2K[3/3] http://feeds.test/b.xml — failed: HTTP status 404\n")
            } else {
                #expect(out == plain)
            }
        }
    }

    @Test("RSS R6 — rssreader --demo --json prints a Report; exit statuses 0, 1 and 2",
          .tags(.processes))
    func r6_executable() async throws {
        // Seed: always exits 0 and prints no summary.
        // Swift: the real executable (built next to this test binary) runs the offline demo and prints JSON that decodes into Report.
        let demo = try await runReader(["--demo", "--json", "--quiet", "--timeout", "1.5", "--link-timeout", "0.5"])
        #expect(demo.status == 0, "\(demo.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(demo.stdout.utf8))
        #expect(report.summary.feeds == 15)
        #expect(report.summary.feedsOK == 9)
        #expect(Dictionary(report.feeds.compactMap { f in f.error.map { ($0, 1) } }, uniquingKeysWith: +)
                == ["malformed": 2, "notAFeed": 2, "httpStatus": 1, "timedOut": 1])
        #expect(report.summary.linkOutcomes == ["ok": 14, "redirected": 1, "clientError": 2, "serverError": 1, "timedOut": 1, "connectionFailed": 1])

        #expect(report.feeds.first { $0.url.hasSuffix("/feeds/latin1.xml") }?.items.first?.title == "Caf\u{E9} cr\u{E8}me et \u{E9}clairs")
        // The text report shows the entries a person came for.
        let text = try await runReader(["--demo", "--quiet", "--no-links", "--entries", "1", "--timeout", "1.5"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("2025-06-05 12:05Z  Only a permalink guid"))
        #expect(text.stdout.contains("2025-06-02 06:00Z  Caf\u{E9} cr\u{E8}me et \u{E9}clairs"))
        #expect(!text.stdout.contains("A page that went away"), "--entries 1 shows only the newest")
        let badEntries = try await runReader(["--entries", "-1", "http://127.0.0.1:9/feed.xml"])
        #expect(badEntries.status == 2)

        let refusing = try RefusingPort()
        defer { refusing.close() }
        let allFailed = try await runReader([refusing.baseURL + "/feed.xml", "--quiet"])
        #expect(allFailed.status == 1)
        #expect(allFailed.stdout.contains("FAILED"))
        let usage = try await runReader(["--concurrency", "0", "http://127.0.0.1:9/feed.xml"])
        #expect(usage.status == 2)
        #expect(usage.stderr.contains("concurrency"))
        let noValid = try await runReader(["not a url"])
        #expect(noValid.status == 2)
        #expect(noValid.stderr.contains("no valid feed URL"))
    }

    // MARK: - R7 sources

    @Test("RSS R7 — URL files and OPML: comments, nesting, duplicates, invalid lines with line numbers")
    func r7_sources() throws {
        // Seed: 58 URLs hard-coded in the source.
        // Swift: arguments, --urls FILE and --opml FILE, merged into one ordered, de-duplicated list.
        let base = "http://feeds.test"
        let text = try String(decoding: fixture("feeds.txt", base: base), as: UTF8.self)
        let list = FeedSources.parseURLList(text, source: "feeds.txt")
        #expect(list.urls == ["rss2.xml", "atom.xml", "rdf.xml", "nolinks.xml"].map { "\(base)/feeds/\($0)" })
        #expect(list.problems.map(\.line) == [9, 11])
        #expect(list.problems.map(\.text) == ["not a url", "ftp://files.example.org/feed.xml"])
        #expect(list.problems[1].description == "feeds.txt:11: skipped \"ftp://files.example.org/feed.xml\": unsupported scheme ftp")

        let opml = try FeedSources.parseOPML(fixture("feeds.opml", base: base), source: "feeds.opml")
        #expect(opml.urls.count == 15)
        #expect(opml.urls.prefix(3) == ["\(base)/feeds/rss2.xml", "\(base)/feeds/atom.xml", "\(base)/feeds/rdf.xml?delay_ms=800"])
        #expect(opml.urls.filter { $0 == "\(base)/feeds/rss2.xml" }.count == 1)
        #expect(opml.urls.contains("\(base)/feeds/dup-b.xml"))
        #expect(opml.problems.isEmpty)
        let rss2 = try fixture("rss2.xml"), truncated = try fixture("truncated.xml")
        #expect(throws: FeedSources.LoadError.self) { try FeedSources.parseOPML(rss2, source: "rss2.xml") }
        #expect(throws: FeedSources.LoadError.self) { try FeedSources.parseOPML(truncated, source: "t") }

        // Arguments first, then files; duplicates across sources dropped.
        let directory = try #require(FeedFixtures.defaultDirectory())
        let merged = try FeedSources.load(
            arguments: ["\(base)/feeds/atom.xml", "http://other.test/feed"],
            urlFiles: [directory.appendingPathComponent("feeds.txt").path],
            opmlFiles: [directory.appendingPathComponent("feeds.opml").path],
            substitutions: ["{{base}}": base])
        #expect(merged.urls.prefix(4) == ["\(base)/feeds/atom.xml", "http://other.test/feed", "\(base)/feeds/rss2.xml", "\(base)/feeds/rdf.xml"])
        #expect(merged.urls.count == 2 + 3 + 12)
        #expect(merged.problems.count == 2)
        #expect(throws: FeedSources.LoadError.self) { try FeedSources.load(urlFiles: ["/nonexistent/feeds.txt"]) }
    }

    // MARK: - R8 the whole run

    @Test("RSS R8 — the whole run: the report is exact and takes about the slowest pieces",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func r8_wholeRun() async throws {
        // Seed: main() timed with async_timed: dozens of feeds and hundreds of links take about as long as the slowest pieces.
        // Swift: FeedRunner.run; parsing happens in the fetching child tasks, concurrently; nothing leaks past the run.
        try await withFeedStub { stub in
            let ms1 = ms(1)  // one book second in the stub's milliseconds
            let feeds = ["rss2.xml", "atom.xml", "rdf.xml?delay_ms=\(2 * ms1)", "relative.xml", "dup-a.xml", "dup-b.xml"]
                .map { stub.url("/feeds/\($0)") } + [stub.url("/status/503")]
            let configuration = FeedReaderConfiguration(
                urls: feeds, maxConcurrentFeeds: 8, maxConcurrentLinks: 16,
                feedTimeout: Book.seconds(10), linkTimeout: Book.seconds(3))
            let start = ContinuousClock.now
            let report = try await FeedRunner.run(configuration)
            let elapsed = ContinuousClock.now - start

            #expect(report.feeds.map(\.ok) == [true, true, true, true, true, true, false])
            #expect(report.feeds.map(\.entries) == [3, 3, 2, 5, 2, 2, 0])
            #expect(report.feeds.last?.reason == "HTTP status 503")
            let links = report.links.map { [String($0.url.dropFirst(stub.baseURL.count)), $0.outcome] }
            #expect(links == [
                ["/status/200?id=rss2-1", "ok"], ["/status/404?id=rss2-2", "clientError"], ["/status/200?id=rss2-3", "ok"],
                ["/status/200?id=atom-1", "ok"], ["/status/500?id=atom-2", "serverError"], ["/redirect/301?to=/status/200", "redirected"],
                ["/status/200?id=rdf-1", "ok"], ["/delay/100?id=rdf-2", "ok"],
                ["/posts/1", "clientError"], ["/status/200?id=relative-2", "ok"], ["/hang?id=relative-3", "timedOut"],
                ["/reset?id=relative-4", "connectionFailed"], ["/status/200?id=relative-5&head_status=405", "ok"],
                ["/status/200?id=shared", "ok"], ["/status/200?id=dup-a", "ok"], ["/status/200?id=dup-b", "ok"],
            ])
            #expect(report.links[13].feeds == [stub.url("/feeds/dup-a.xml"), stub.url("/feeds/dup-b.xml")])
            var expected = Report.Summary()
            (expected.feeds, expected.feedsOK, expected.feedsFailed) = (7, 6, 1)
            (expected.entries, expected.entriesWithoutLinks) = (17, 0)
            (expected.links, expected.linksOK, expected.linksBroken) = (16, 11, 5)
            expected.linkOutcomes = ["ok": 10, "redirected": 1, "clientError": 2, "serverError": 1, "timedOut": 1, "connectionFailed": 1]
            #expect(report.summary == expected)
            #expect(report.exitStatus == 3)
            // Slowest feed (2 u) + link timeout (3 u) + slack; the serial sum would be far above.
            #expect(elapsed >= Book.seconds(5))
            #expect(elapsed < Book.seconds(7.5))
            try await stub.waitUntil { $0.inFlight == 0 }
        }
    }
}

// MARK: - Support

/// The sample feeds folder (`Fixtures/feeds`).
private let fixturesDirectory = FeedFixtures.defaultDirectory()!

/// A fixture file's bytes with `{{base}}` replaced.
private func fixture(_ name: String, base: String = "http://feeds.test") throws -> Data {
    try FeedFixtures.contents(of: name, in: fixturesDirectory, base: base)
}

/// The error of a failed result, if it failed.
private func failure(_ result: Result<Feed, FeedError>?) -> FeedError? {
    if case .failure(let e)? = result { return e }
    return nil
}

/// A stub that also serves every fixture feed at `/feeds/<name>`.
private func withFeedStub<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (StubHTTPServer) async throws -> T
) async throws -> T {
    try await withStubServer { stub in
        for file in try FeedFixtures.served(from: fixturesDirectory, base: stub.baseURL) {
            stub.register(file.path, contentType: file.contentType, body: file.body)
        }
        return try await body(stub)
    }
}

/// What a child `rssreader` printed and how it ended.
private struct ChildRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the `rssreader` executable built next to this test binary, through
/// the package's child-process runner.
private func runReader(_ arguments: [String]) async throws -> ChildRun {
    let run = try await runProgram(try SiblingExecutable.locate("rssreader"), arguments: arguments).output
    return ChildRun(status: run.termination.shellStatus, stdout: run.standardOutputText, stderr: run.standardErrorText)
}

