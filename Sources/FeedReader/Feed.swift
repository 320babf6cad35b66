import Foundation

/// The syndication formats ``FeedParser`` reads.
public enum FeedFormat: String, Sendable, Codable, Equatable, CaseIterable {
    /// RSS 2.0 (and the 0.9x family): `<rss><channel><item>`.
    case rss2 = "RSS 2.0"
    /// RSS 1.0, an RDF document: `<rdf:RDF><channel/><item/>…`.
    case rss1 = "RSS 1.0"
    /// Atom 1.0: `<feed xmlns="http://www.w3.org/2005/Atom"><entry>`.
    case atom = "Atom"
}

/// One parsed feed: what feedparser's `parse(text)` gives the seed's sketch
/// (`d.feed.title`, `d.entries`), reduced to the fields the reader uses.
///
/// A plain value (`Sendable`, `Codable`): parsed in one child task, handed to
/// the consumer of ``FeedRunner/fetchFeeds(_:client:maxConcurrent:timeout:maxBytes:)``.
public struct Feed: Sendable, Equatable, Codable {
    /// The channel's (RSS) or feed's (Atom) title, whitespace-trimmed.
    public var title: String?
    /// The format the document declared by its root element.
    public var format: FeedFormat
    /// The entries in document order.
    public var entries: [Entry]

    /// Creates a feed value.
    public init(title: String? = nil, format: FeedFormat, entries: [Entry] = []) {
        self.title = title
        self.format = format
        self.entries = entries
    }

    /// How many entries have no link (nothing to check).
    public var entriesWithoutLinks: Int { entries.count { $0.link == nil } }
}

/// One item (RSS) or entry (Atom).
public struct Entry: Sendable, Equatable, Codable {
    /// The title, entities and CDATA decoded, whitespace-trimmed.
    public var title: String?
    /// The entry's link, resolved to an absolute URL string against
    /// `xml:base` or the feed's own URL. RSS: `<link>`, else a permalink
    /// `<guid>`; Atom: the `rel="alternate"` (or rel-less) `<link href>`.
    /// `nil` when the entry has none.
    public var link: String?
    /// `pubDate` (RFC 822), `dc:date`, Atom `published` or else `updated`
    /// (ISO 8601); `nil` when absent or unparseable.
    public var published: Date?
    /// `description`, `content:encoded`, Atom `summary` or `content` text.
    public var summary: String?

    /// Creates an entry value.
    public init(title: String? = nil, link: String? = nil, published: Date? = nil, summary: String? = nil) {
        self.title = title
        self.link = link
        self.published = published
        self.summary = summary
    }
}
