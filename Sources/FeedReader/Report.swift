import Foundation

/// What a run found: per feed ok/failed with the reason and entry counts,
/// every distinct link's outcome, and totals. The seed prints as it goes and
/// summarises nothing; this is the summary, `Codable` for `--json`.
public struct Report: Sendable, Equatable, Codable {
    /// One feed's result.
    public struct FeedResult: Sendable, Equatable, Codable {
        /// The feed URL as given.
        public var url: String
        /// Whether the feed was fetched and parsed completely.
        public var ok: Bool
        /// The feed's title, when parsed.
        public var title: String?
        /// `RSS 2.0`, `RSS 1.0` or `Atom`, when parsed.
        public var format: String?
        /// Entries read (for a malformed feed: those before the error).
        public var entries: Int
        /// Of those, entries without a link.
        public var entriesWithoutLinks: Int
        /// ``FeedError/kind`` when it failed.
        public var error: String?
        /// A human-readable reason when it failed.
        public var reason: String?
        /// Every entry read, in document order (for a malformed feed: those
        /// before the error).
        public var items: [EntryResult]

        /// Creates a result.
        public init(url: String, ok: Bool, title: String? = nil, format: String? = nil, entries: Int = 0,
                    entriesWithoutLinks: Int = 0, error: String? = nil, reason: String? = nil, items: [EntryResult] = []) {
            self.url = url
            self.ok = ok
            self.title = title
            self.format = format
            self.entries = entries
            self.entriesWithoutLinks = entriesWithoutLinks
            self.error = error
            self.reason = reason
            self.items = items
        }

        /// The entries newest first (undated ones after the dated, in
        /// document order), at most `limit`.
        public func newest(_ limit: Int) -> [EntryResult] {
            let dated = items.enumerated().sorted { a, b in
                switch (a.element.published, b.element.published) {
                case let (x?, y?): x != y ? x > y : a.offset < b.offset
                case (.some, nil): true
                case (nil, .some): false
                case (nil, nil): a.offset < b.offset
                }
            }
            return dated.prefix(max(0, limit)).map(\.element)
        }

        /// The result for one fetch outcome.
        public init(url: String, result: Result<Feed, FeedError>) {
            switch result {
            case .success(let feed):
                self.init(url: url, ok: true, title: feed.title, format: feed.format.rawValue,
                          entries: feed.entries.count, entriesWithoutLinks: feed.entriesWithoutLinks,
                          items: feed.entries.map(EntryResult.init))
            case .failure(let error):
                var partial: Feed?
                if case .malformed(_, _, _, let p) = error { partial = p }
                self.init(url: url, ok: false, title: partial?.title, format: partial?.format.rawValue,
                          entries: partial?.entries.count ?? 0, entriesWithoutLinks: partial?.entriesWithoutLinks ?? 0,
                          error: error.kind, reason: error.description,
                          items: partial?.entries.map(EntryResult.init) ?? [])
            }
        }
    }

    /// One entry as the report shows it. In JSON the date is ISO 8601 with
    /// milliseconds (`2025-06-03T09:39:21.000Z`), readable by people and by
    /// any JSON decoder.
    public struct EntryResult: Sendable, Equatable, Codable {
        /// The title, entities and CDATA decoded.
        public var title: String?
        /// The absolute link (relative ones resolved), if the entry has one.
        public var link: String?
        /// When it was published (or updated), if the feed says.
        public var published: Date?
        /// The description or summary text.
        public var summary: String?

        /// Creates an entry result.
        public init(title: String? = nil, link: String? = nil, published: Date? = nil, summary: String? = nil) {
            self.title = title
            self.link = link
            self.published = published
            self.summary = summary
        }

        /// The report's view of a parsed entry.
        public init(_ entry: Entry) {
            self.init(title: entry.title, link: entry.link, published: entry.published, summary: entry.summary)
        }

        private enum CodingKeys: String, CodingKey { case title, link, published, summary }
        private static let dateStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            title = try c.decodeIfPresent(String.self, forKey: .title)
            link = try c.decodeIfPresent(String.self, forKey: .link)
            summary = try c.decodeIfPresent(String.self, forKey: .summary)
            if let text = try c.decodeIfPresent(String.self, forKey: .published) {
                do {
                    published = try Self.dateStyle.parse(text)
                } catch {
                    throw DecodingError.dataCorruptedError(
                        forKey: .published, in: c, debugDescription: "not an ISO 8601 date: \(text)")
                }
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(title, forKey: .title)
            try c.encodeIfPresent(link, forKey: .link)
            try c.encodeIfPresent(published.map { Self.dateStyle.format($0) }, forKey: .published)
            try c.encodeIfPresent(summary, forKey: .summary)
        }
    }

    /// One distinct link's result.
    public struct LinkResult: Sendable, Equatable, Codable {
        /// The link.
        public var url: String
        /// ``LinkStatus/name``: `ok`, `redirected`, `clientError`, …
        public var outcome: String
        /// The final HTTP status, when an answer came.
        public var status: Int?
        /// Where redirects led, for `redirected`.
        public var redirectedTo: String?
        /// Whether it counts as broken.
        public var broken: Bool
        /// A human-readable description of the outcome.
        public var detail: String
        /// The feeds whose entries link here.
        public var feeds: [String]

        /// Creates a result from a check's status.
        public init(url: String, status: LinkStatus, feeds: [String]) {
            self.url = url
            self.outcome = status.name
            self.status = status.statusCode
            if case .redirected(let to, _) = status { redirectedTo = to }
            self.broken = status.isBroken
            self.detail = status.description
            self.feeds = feeds
        }
    }

    /// Totals.
    public struct Summary: Sendable, Equatable, Codable {
        /// Feeds requested.
        public var feeds = 0
        /// Feeds read completely.
        public var feedsOK = 0
        /// Feeds that failed.
        public var feedsFailed = 0
        /// Entries read over all feeds (partial ones included).
        public var entries = 0
        /// Entries without a link.
        public var entriesWithoutLinks = 0
        /// Distinct links checked.
        public var links = 0
        /// Links not broken (`ok` or `redirected`).
        public var linksOK = 0
        /// Broken links.
        public var linksBroken = 0
        /// Links per outcome name.
        public var linkOutcomes: [String: Int] = [:]
        /// Input lines or entries skipped as invalid.
        public var skippedInputs = 0

        /// Creates empty totals.
        public init() {}
    }

    /// Per feed, in input order.
    public var feeds: [FeedResult]
    /// Per distinct link, in first-seen order (feeds in input order).
    public var links: [LinkResult]
    /// Invalid inputs that were skipped before the run.
    public var skippedInputs: [FeedSources.Problem]
    /// Totals.
    public var summary: Summary
    /// Wall time of the run.
    public var elapsedSeconds: Double

    /// Builds a report and its totals.
    public init(feeds: [FeedResult], links: [LinkResult], skippedInputs: [FeedSources.Problem] = [], elapsedSeconds: Double = 0) {
        self.feeds = feeds
        self.links = links
        self.skippedInputs = skippedInputs
        self.elapsedSeconds = elapsedSeconds
        var s = Summary()
        s.feeds = feeds.count
        s.feedsOK = feeds.count { $0.ok }
        s.feedsFailed = feeds.count - s.feedsOK
        s.entries = feeds.reduce(0) { $0 + $1.entries }
        s.entriesWithoutLinks = feeds.reduce(0) { $0 + $1.entriesWithoutLinks }
        s.links = links.count
        s.linksBroken = links.count { $0.broken }
        s.linksOK = links.count - s.linksBroken
        for link in links { s.linkOutcomes[link.outcome, default: 0] += 1 }
        s.skippedInputs = skippedInputs.count
        self.summary = s
    }

    /// The broken links.
    public var brokenLinks: [LinkResult] { links.filter(\.broken) }

    /// The process exit status this report stands for: 0 when every feed
    /// was read and no link is broken; 1 when no feed could be read at all;
    /// 3 when the run completed with some failures (failed feeds, broken
    /// links or skipped inputs). (2 is left for usage errors.)
    public var exitStatus: Int32 {
        if summary.feeds > 0 && summary.feedsOK == 0 { return 1 }
        if summary.feedsFailed > 0 || summary.linksBroken > 0 || summary.skippedInputs > 0 { return 3 }
        return 0
    }

    /// The report as pretty-printed JSON (sorted keys, so diffs are stable).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// The human-readable summary printed at the end of a run: per feed its
    /// result and its `newestEntries` newest entries (date, title, link),
    /// then the links and the broken ones.
    public func rendered(newestEntries: Int = 3) -> String {
        var out: [String] = []
        let s = summary
        out.append("")
        out.append("Feeds: \(s.feedsOK) ok, \(s.feedsFailed) failed of \(s.feeds); \(s.entries) entries, \(s.entriesWithoutLinks) without a link")
        for f in feeds {
            if f.ok {
                let title = f.title.map { " \"\($0)\"" } ?? ""
                out.append("  ok      \(f.url)\(title) (\(f.format ?? "?")): \(entryCount(f.entries))"
                    + (f.entriesWithoutLinks > 0 ? ", \(f.entriesWithoutLinks) without a link" : ""))
            } else {
                out.append("  FAILED  \(f.url): \(f.reason ?? f.error ?? "failed")")
            }
            for e in f.newest(newestEntries) {
                let indent = String(repeating: " ", count: 10)
                let date = e.published.map(Self.shortDate) ?? String(repeating: " ", count: 17)
                out.append("\(indent)\(date)  \(e.title.map(Self.oneLine) ?? "(untitled)")")
                if let link = e.link { out.append(indent + String(repeating: " ", count: 19) + link) }
            }
        }
        for p in skippedInputs { out.append("  SKIPPED \(p)") }
        let classes = s.linkOutcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        out.append("Links: \(s.links) checked, \(s.linksOK) ok, \(s.linksBroken) broken\(classes.isEmpty ? "" : " (\(classes))")")
        let broken = brokenLinks
        if !broken.isEmpty {
            out.append("Broken links:")
            for l in broken {
                out.append("  \(l.detail): \(l.url)")
                out.append("      in \(l.feeds.joined(separator: ", "))")
            }
        }
        out.append(String(format: "Elapsed: %.2f s", elapsedSeconds))
        return out.joined(separator: "\n")
    }

    /// `2025-06-03 09:39Z`: seventeen characters, UTC.
    static func shortDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02dZ", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
    }

    /// A title on one line: runs of whitespace (newlines too) become one space.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}
