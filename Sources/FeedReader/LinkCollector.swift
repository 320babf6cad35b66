/// The set of pages to check: every entry link across all feeds, in
/// first-seen order, each once, remembering which feeds contain it.
public struct LinkSet: Sendable, Equatable {
    /// One distinct link.
    public struct Link: Sendable, Equatable {
        /// The absolute URL (or the raw text when it could not be resolved).
        public var url: String
        /// The URLs of the feeds whose entries point at it, in first-seen order.
        public var feeds: [String]
    }

    /// Distinct links in first-seen order.
    public var links: [Link] = []
    /// Entries (over all feeds) that have no link.
    public var entriesWithoutLinks = 0
    /// Entries that have a link (duplicates included).
    public var entriesWithLinks = 0

    /// The distinct URLs in order.
    public var urls: [String] { links.map(\.url) }
}

/// Collects entry links: the seed's `[entry.link for feed in feeds for
/// entry in feed.entries]`, minus its two faults — duplicates are checked
/// once (and reported for every feed that has them) and relative links were
/// already resolved by ``FeedParser``. Pure; call it from anywhere.
public enum LinkCollector {
    /// Collects the links of `feeds` (each with its own URL) in order.
    public static func collect(_ feeds: [(url: String, feed: Feed)]) -> LinkSet {
        var set = LinkSet()
        var position: [String: Int] = [:]
        for (feedURL, feed) in feeds {
            for entry in feed.entries {
                guard let link = entry.link else {
                    set.entriesWithoutLinks += 1
                    continue
                }
                set.entriesWithLinks += 1
                if let i = position[link] {
                    if !set.links[i].feeds.contains(feedURL) { set.links[i].feeds.append(feedURL) }
                } else {
                    position[link] = set.links.count
                    set.links.append(.init(url: link, feeds: [feedURL]))
                }
            }
        }
        return set
    }
}
