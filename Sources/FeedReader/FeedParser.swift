import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Parses RSS 2.0, RSS 1.0 (RDF) and Atom documents into a ``Feed``: the
/// part of the seed's `feedparser.parse(text)` that the reader uses.
///
/// A streaming (SAX) parser on Foundation's `XMLParser` (libxml2), fed the
/// raw bytes so that the XML declaration's encoding is honoured (an
/// ISO-8859-1 feed decoded to `String` first would be garbled). Namespace
/// aware; entities and CDATA decoded; `xml:base` honoured; relative links
/// resolved against `xml:base` or the feed's URL.
///
/// Two checked facts about `XMLParser` on Linux shape the error handling: for
/// a truncated document `parse()` returns `true` while `parserError` is set,
/// and for empty data it returns `true` with no error at all. So a document
/// is malformed when `parserError` is non-nil, and "not a feed" when no
/// `rss`, `rdf:RDF` or `feed` root element was seen.
///
/// Concurrency: a pure synchronous function of its inputs, safe to call from
/// any number of tasks at once (each call owns its own parser). It does not
/// check for cancellation; a 10 MiB document parses in well under a second.
public enum FeedParser {
    /// Parses one document.
    ///
    /// - Parameters:
    ///   - data: the body as received (any encoding the XML declares).
    ///   - baseURL: the feed's own URL, the base for relative links when no
    ///     `xml:base` applies (feedparser resolves only `xml:base`; resolving
    ///     RSS links too is a deliberate improvement).
    /// - Returns: the feed with its entries in document order.
    /// - Throws: ``FeedError/notAFeed(rootElement:)`` for an empty body, an
    ///   HTML page or any other root element; ``FeedError/malformed(line:column:message:partial:)``
    ///   when the XML breaks, with the entries complete before the break.
    public static func parse(data: Data, baseURL: URL? = nil) throws(FeedError) -> Feed {
        let handler = FeedSAXHandler(baseURL: baseURL)
        // A stream, not `XMLParser(data:)`: given the whole buffer at once,
        // libxml2 stops at 10,000,000 bytes ("huge input lookup", error 1);
        // fed in chunks from a stream it parses documents of any size.
        let parser = XMLParser(stream: InputStream(data: data))
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = handler
        _ = parser.parse()
        // The root decides first: an HTML page is "not a feed" even when it
        // is not well-formed XML (we abort parsing as soon as we know).
        guard let format = handler.format else {
            throw .notAFeed(rootElement: handler.rootElement)
        }
        let feed = Feed(title: handler.feedTitle, format: format, entries: handler.entries)
        if let error = parser.parserError {
            throw .malformed(
                line: parser.lineNumber, column: parser.columnNumber,
                message: xmlErrorMessage((error as NSError).code),
                partial: feed)
        }
        return feed
    }
}

/// A short explanation of a libxml2 error code (`NSXMLParserErrorDomain`),
/// whose `localizedDescription` on Linux is only "The operation could not be
/// completed".
func xmlErrorMessage(_ code: Int) -> String {
    let known: [Int: String] = [
        4: "document is empty", 5: "premature end of document (truncated?)",
        9: "invalid character", 26: "undeclared entity (an HTML entity such as &nbsp;?)",
        38: "attribute value not quoted", 39: "attribute without value", 41: "attribute redefined",
        64: "XML declaration not at the start", 68: "entity reference not terminated by ';'",
        73: "'>' expected", 76: "mismatched end tag", 77: "end tag expected",
        80: "'--' inside a comment", 85: "extra content at the end of the document",
        111: "too deeply nested", 201: "undeclared namespace prefix",
    ]
    return known[code] ?? "XML error \(code)"
}

/// Namespaces the parser recognises.
enum XMLNS {
    static let atom = "http://www.w3.org/2005/Atom"
    static let rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    static let rss1 = "http://purl.org/rss/1.0/"
    static let rss090 = "http://my.netscape.com/rdf/simple/0.9/"
    static let dc = "http://purl.org/dc/elements/1.1/"
    static let content = "http://purl.org/rss/1.0/modules/content/"
    static let xml = "http://www.w3.org/XML/1998/namespace"
}

/// The SAX delegate: a stack of open elements, the current entry, and the
/// text of the field being read. Used by one parse on one thread only.
final class FeedSAXHandler: NSObject, XMLParserDelegate {
    private struct Element {
        var namespace: String
        var name: String
        var base: URL?
    }

    private struct PendingEntry {
        var title: String?
        var link: String?
        var guid: String?
        var guidIsPermaLink = true
        var published: Date?
        var updated: Date?
        var summary: String?
        var content: String?
    }

    private(set) var format: FeedFormat?
    private(set) var rootElement: String?
    private(set) var feedTitle: String?
    private(set) var entries: [Entry] = []

    private let documentBase: URL?
    private var stack: [Element] = []
    /// Depth (stack count) of the item/entry element, when inside one.
    private var entryDepth: Int?
    private var entry = PendingEntry()
    /// Depth of the channel/feed element whose direct children we read.
    private var channelDepth: Int?
    /// The field whose text is being collected, and its depth.
    private var field: (name: String, depth: Int, attributes: [String: String])?
    private var text = ""

    init(baseURL: URL?) {
        self.documentBase = baseURL
    }

    private var currentBase: URL? { stack.last?.base ?? documentBase }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName qName: String?, attributes: [String: String] = [:]
    ) {
        let ns = namespaceURI ?? ""
        var base = currentBase
        if let xmlBase = attributes["xml:base"] ?? attributes["base"] {
            base = resolve(xmlBase, against: base).flatMap(URL.init(string:)) ?? base
        }
        stack.append(Element(namespace: ns, name: elementName, base: base))
        let depth = stack.count

        if depth == 1 {
            rootElement = qName ?? elementName
            switch (ns, elementName) {
            case ("", "rss"): format = .rss2
            case (XMLNS.rdf, "RDF"): format = .rss1
            case (XMLNS.atom, "feed"), ("", "feed"): format = .atom
            default:
                parser.abortParsing()  // not a feed: no need to read the rest
            }
            if format == .atom { channelDepth = 1 }
            return
        }
        guard let format else { return }
        if field != nil { return }  // nested markup inside a field: text only

        if let entryDepth, depth == entryDepth + 1 {
            startEntryField(format, ns, elementName, attributes, depth)
        } else if entryDepth == nil {
            switch format {
            case .rss2 where depth == 2 && elementName == "channel" && ns.isEmpty:
                channelDepth = depth
            case .rss1 where depth == 2 && elementName == "channel":
                channelDepth = depth
            default: break
            }
            let isEntry: Bool = switch format {
            case .rss2: elementName == "item" && ns.isEmpty && channelDepth != nil && depth == channelDepth! + 1
            case .rss1: elementName == "item" && depth == 2 && (ns == XMLNS.rss1 || ns == XMLNS.rss090 || ns.isEmpty)
            case .atom: elementName == "entry" && depth == 2 && (ns == XMLNS.atom || ns.isEmpty)
            }
            if isEntry {
                entryDepth = depth
                entry = PendingEntry()
            } else if let channelDepth, depth == channelDepth + 1, elementName == "title",
                      isFormatNamespace(ns, format) {
                beginField("feedTitle", depth, attributes)
            }
        }
    }

    /// Whether `ns` is the namespace of the format's own elements.
    private func isFormatNamespace(_ ns: String, _ format: FeedFormat) -> Bool {
        switch format {
        case .rss2: ns.isEmpty
        case .rss1: ns == XMLNS.rss1 || ns == XMLNS.rss090 || ns.isEmpty
        case .atom: ns == XMLNS.atom || ns.isEmpty
        }
    }

    private func startEntryField(_ format: FeedFormat, _ ns: String, _ name: String, _ attributes: [String: String], _ depth: Int) {
        switch format {
        case .rss2, .rss1:
            let plain = ns.isEmpty || ns == XMLNS.rss1 || ns == XMLNS.rss090
            switch (plain, ns, name) {
            case (true, _, "title"), (true, _, "link"), (true, _, "pubDate"), (true, _, "description"):
                beginField(name, depth, attributes)
            case (true, _, "guid"):
                beginField("guid", depth, attributes)
            case (_, XMLNS.dc, "date"):
                beginField("dc:date", depth, attributes)
            case (_, XMLNS.content, "encoded"):
                beginField("content", depth, attributes)
            default: break
            }
        case .atom:
            guard ns == XMLNS.atom || ns.isEmpty else { return }
            switch name {
            case "link":
                let rel = attributes["rel"]?.trimmingCharacters(in: .whitespaces) ?? "alternate"
                if rel == "alternate", entry.link == nil, let href = attributes["href"] {
                    entry.link = resolve(href, against: currentBase)
                }
            case "title", "published", "updated", "summary", "content":
                beginField(name, depth, attributes)
            default: break
            }
        }
    }

    private func beginField(_ name: String, _ depth: Int, _ attributes: [String: String]) {
        field = (name, depth, attributes)
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if field != nil { text += string }
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        if field != nil { text += String(decoding: CDATABlock, as: UTF8.self) }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        let depth = stack.count
        if let f = field, f.depth == depth {
            endField(f.name, f.attributes, text.trimmingCharacters(in: .whitespacesAndNewlines))
            field = nil
            text = ""
        }
        if let d = entryDepth, d == depth {
            finishEntry()
            entryDepth = nil
        }
        if let d = channelDepth, d == depth { channelDepth = nil }
        stack.removeLast()
    }

    private func endField(_ name: String, _ attributes: [String: String], _ value: String) {
        let nonEmpty = value.isEmpty ? nil : value
        switch name {
        case "feedTitle": feedTitle = nonEmpty
        case "title": entry.title = nonEmpty
        case "link": if let nonEmpty { entry.link = resolve(nonEmpty, against: currentBase) }
        case "guid":
            entry.guid = nonEmpty
            entry.guidIsPermaLink = attributes["isPermaLink"]?.lowercased() != "false"
        case "pubDate", "dc:date", "published": entry.published = entry.published ?? FeedDates.parse(value)
        case "updated": entry.updated = FeedDates.parse(value)
        case "description", "summary": entry.summary = nonEmpty
        case "content": entry.content = nonEmpty
        default: break
        }
    }

    private func finishEntry() {
        var link = entry.link
        if link == nil, entry.guidIsPermaLink, let guid = entry.guid {
            link = resolve(guid, against: currentBase)
        }
        entries.append(Entry(
            title: entry.title, link: link,
            published: entry.published ?? entry.updated,
            summary: entry.summary ?? entry.content))
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {}
}

/// Resolves `reference` against `base` to an absolute URL string; returns
/// the trimmed reference itself when it cannot be parsed (the link checker
/// then reports it as an invalid URL).
func resolve(_ reference: String, against base: URL?) -> String? {
    let trimmed = reference.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !trimmed.isEmpty else { return nil }
    if let url = URL(string: trimmed, relativeTo: base)?.absoluteURL, url.scheme != nil {
        return url.absoluteString
    }
    return trimmed
}
