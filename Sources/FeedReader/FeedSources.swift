import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Where the feed URLs come from: command-line arguments, a URL list file
/// (one per line, `#` comments) or an OPML subscription list. The seed's
/// sketch hard-codes its 58 URLs in the source instead.
///
/// All functions are pure (apart from reading the named files) and safe to
/// call from any task.
public enum FeedSources {
    /// A line or entry that was skipped, with where it came from.
    public struct Problem: Sendable, Equatable, Codable, CustomStringConvertible {
        /// The file name (or `arguments`).
        public var source: String
        /// The 1-based line number, when known.
        public var line: Int?
        /// The offending text.
        public var text: String
        /// Why it was skipped.
        public var reason: String

        public var description: String {
            "\(source)\(line.map { ":\($0)" } ?? ""): skipped \"\(text)\": \(reason)"
        }
    }

    /// A de-duplicated, ordered list of feed URLs plus what was skipped.
    public struct List: Sendable, Equatable {
        /// Feed URLs in first-seen order, each once.
        public var urls: [String] = []
        /// Invalid entries, reported and skipped.
        public var problems: [Problem] = []

        /// Creates an empty list.
        public init() {}

        /// Appends `url` unless already present.
        mutating func add(_ url: String) {
            if !urls.contains(url) { urls.append(url) }
        }

        /// Appends another list's URLs (de-duplicated) and problems.
        public mutating func append(_ other: List) {
            for url in other.urls { add(url) }
            problems += other.problems
        }
    }

    /// Errors reading a source file as a whole.
    public enum LoadError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The file could not be read.
        case unreadable(String, reason: String)
        /// The OPML file is not well-formed XML or has no `<opml>` root.
        case invalidOPML(String, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let file, let reason): "cannot read \(file): \(reason)"
            case .invalidOPML(let file, let reason): "\(file) is not a valid OPML file: \(reason)"
            }
        }
    }

    /// Why `text` cannot be fetched as a feed URL, or `nil` if it can:
    /// it must parse, use `http` or `https`, and name a host.
    public static func problem(with text: String) -> String? {
        guard let url = URL(string: text) else { return "not a URL" }
        guard let scheme = url.scheme?.lowercased() else { return "not an absolute URL" }
        guard scheme == "http" || scheme == "https" else { return "unsupported scheme \(scheme)" }
        guard let host = url.host, !host.isEmpty else { return "no host" }
        return nil
    }

    /// URLs given directly (command-line arguments), validated and de-duplicated.
    public static func fromArguments(_ arguments: [String]) -> List {
        var list = List()
        for (i, raw) in arguments.enumerated() {
            let text = raw.trimmingCharacters(in: .whitespaces)
            if let why = problem(with: text) {
                list.problems.append(Problem(source: "arguments", line: i + 1, text: text, reason: why))
            } else {
                list.add(text)
            }
        }
        return list
    }

    /// Parses a URL list: one URL per line; blank lines, lines starting
    /// with `#`, and anything after ` #` are ignored. Invalid URLs are
    /// reported with their line number and skipped.
    public static func parseURLList(_ text: String, source: String = "urls") -> List {
        var list = List()
        for (i, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            if let hash = line.range(of: " #") { line = line[..<hash.lowerBound] }
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if let why = problem(with: trimmed) {
                list.problems.append(Problem(source: source, line: i + 1, text: trimmed, reason: why))
            } else {
                list.add(trimmed)
            }
        }
        return list
    }

    /// Parses an OPML document: every `<outline xmlUrl="…">` at any depth,
    /// in document order, de-duplicated. Invalid URLs are reported (with the
    /// line of their outline) and skipped.
    ///
    /// - Throws: ``LoadError/invalidOPML(_:reason:)`` when the XML is broken
    ///   or the root element is not `<opml>`.
    public static func parseOPML(_ data: Data, source: String = "opml") throws(LoadError) -> List {
        let handler = OPMLHandler(source: source)
        let parser = XMLParser(data: data)
        parser.delegate = handler
        _ = parser.parse()
        if handler.root != "opml" {
            throw .invalidOPML(source, reason: handler.root.map { "root element <\($0)>" } ?? "no XML element")
        }
        if let error = parser.parserError {
            throw .invalidOPML(source, reason: "line \(parser.lineNumber): \((error as NSError).localizedDescription)")
        }
        return handler.list
    }

    /// Loads every source in order — arguments, then URL files, then OPML
    /// files — into one de-duplicated list.
    ///
    /// - Parameter substitutions: text replacements applied to file contents
    ///   before parsing (the demo replaces `{{base}}` with the stub's URL).
    public static func load(
        arguments: [String] = [],
        urlFiles: [String] = [],
        opmlFiles: [String] = [],
        substitutions: [String: String] = [:]
    ) throws(LoadError) -> List {
        var list = fromArguments(arguments)
        for file in urlFiles {
            let data = try read(file, substitutions)
            list.append(parseURLList(String(decoding: data, as: UTF8.self), source: file))
        }
        for file in opmlFiles {
            list.append(try parseOPML(try read(file, substitutions), source: file))
        }
        return list
    }

    private static func read(_ file: String, _ substitutions: [String: String]) throws(LoadError) -> Data {
        do {
            var data = try Data(contentsOf: URL(fileURLWithPath: file))
            for (key, value) in substitutions { data = data.replacingOccurrences(of: key, with: value) }
            return data
        } catch {
            throw .unreadable(file, reason: (error as NSError).localizedDescription)
        }
    }
}

/// Collects `xmlUrl`s of `<outline>` elements.
private final class OPMLHandler: NSObject, XMLParserDelegate {
    let source: String
    var list = FeedSources.List()
    var root: String?

    init(source: String) { self.source = source }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName qName: String?, attributes: [String: String] = [:]
    ) {
        if root == nil {
            root = elementName
            if elementName != "opml" { parser.abortParsing() }
        }
        guard elementName == "outline", let raw = attributes["xmlUrl"] ?? attributes["xmlurl"] else { return }
        let url = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if let why = FeedSources.problem(with: url) {
            list.problems.append(.init(source: source, line: parser.lineNumber, text: url, reason: why))
        } else {
            list.add(url)
        }
    }
}

extension Data {
    /// Byte-level replacement (works whatever the document's encoding, as
    /// long as `target` is ASCII — `{{base}}` is).
    func replacingOccurrences(of target: String, with replacement: String) -> Data {
        let t = Array(target.utf8), r = Array(replacement.utf8)
        guard !t.isEmpty, count >= t.count else { return self }
        let bytes = [UInt8](self)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == t[0], i + t.count <= bytes.count, bytes[i..<i + t.count].elementsEqual(t) {
                out += r
                i += t.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return Data(out)
    }
}
