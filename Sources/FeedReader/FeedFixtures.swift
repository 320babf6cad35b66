import Foundation

/// The sample feeds in the package's `Fixtures/feeds/` folder, ready to be
/// served by a local HTTP stub: `rssreader --demo` and the tests use them.
///
/// Files contain `{{base}}` where an absolute URL on the serving host is
/// needed; ``served(from:base:)`` replaces it (byte-wise, so the ISO-8859-1
/// sample stays intact).
public enum FeedFixtures {
    /// One file to serve.
    public struct ServedFile: Sendable {
        /// The path to serve it at: `/feeds/<file name>`.
        public var path: String
        /// `application/rss+xml`, `application/atom+xml`, `text/html`, …
        public var contentType: String
        /// The body, `{{base}}` replaced.
        public var body: [UInt8]
    }

    /// The placeholder for the serving host's base URL.
    public static let basePlaceholder = "{{base}}"

    /// Finds `Fixtures/feeds`: `$RSSREADER_FIXTURES`, else
    /// `$CURRICULUM_FIXTURES/feeds`, else walking up from this source file
    /// (`#filePath`) to the package root, else `./Fixtures/feeds`.
    public static func defaultDirectory(filePath: String = #filePath) -> URL? {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["RSSREADER_FIXTURES"] { return URL(fileURLWithPath: dir, isDirectory: true) }
        if let dir = env["CURRICULUM_FIXTURES"] {
            return URL(fileURLWithPath: dir, isDirectory: true).appendingPathComponent("feeds", isDirectory: true)
        }
        var dir = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while dir.path != "/" && !dir.path.isEmpty {
            let candidate = dir.appendingPathComponent("Fixtures/feeds", isDirectory: true)
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("feeds.opml").path) {
                return candidate
            }
            dir = dir.deletingLastPathComponent()
        }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent("Fixtures/feeds", isDirectory: true)
        return FileManager.default.fileExists(atPath: cwd.path) ? cwd : nil
    }

    /// The content type a file is served with, by extension.
    public static func contentType(forFileName name: String) -> String {
        if name == "atom.xml" || name.hasSuffix(".atom") { return "application/atom+xml" }
        if name.hasSuffix(".html") { return "text/html; charset=utf-8" }
        if name.hasSuffix(".opml") { return "text/x-opml" }
        if name.hasSuffix(".txt") { return "text/plain; charset=utf-8" }
        if name == "rdf.xml" || name.hasSuffix(".rdf") { return "application/rdf+xml" }
        return "application/rss+xml"
    }

    /// Every `.xml`/`.html` file of `directory` as a file to serve at
    /// `/feeds/<name>`, with `{{base}}` replaced by `base`.
    public static func served(from directory: URL, base: String) throws -> [ServedFile] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".xml") || $0.hasSuffix(".html") }
            .sorted()
        return try names.map { name in
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            return ServedFile(
                path: "/feeds/\(name)", contentType: contentType(forFileName: name),
                body: [UInt8](data.replacingOccurrences(of: basePlaceholder, with: base)))
        }
    }

    /// Reads a fixture file with `{{base}}` replaced.
    public static func contents(of name: String, in directory: URL, base: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name)).replacingOccurrences(of: basePlaceholder, with: base)
    }

    /// A generated RSS 2.0 feed with `entries` items whose links are
    /// `link(i)`: for the benchmark and the large-feed tests (never committed).
    public static func generatedFeed(title: String, entries: Int, link: (Int) -> String) -> [UInt8] {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>\(title)</title>\n"
        s.reserveCapacity(entries * 160)
        for i in 0..<entries {
            s += "<item><title>Entry \(i) of \(title)</title><link>\(link(i))</link>"
            s += "<pubDate>Mon, 02 Jun 2025 08:00:00 GMT</pubDate></item>\n"
        }
        s += "</channel></rss>\n"
        return Array(s.utf8)
    }
}
