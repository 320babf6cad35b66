import ArgumentParser
import FeedReader
import Foundation
import LocalServices

/// `rssreader`: fetches many RSS/Atom feeds concurrently, reports each as it
/// completes, then checks every entry link's HTTP status concurrently, each
/// with its own timeout — the seed's `rssreader.py`, built as a tool.
///
/// `rssreader --demo` (or no input at all) starts the local HTTP stub in this
/// process, serves the sample feeds of `Fixtures/feeds/` and reads them:
/// fully offline.
@main
struct RSSReaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rssreader",
        abstract: "Read many RSS/Atom feeds concurrently and check every entry link.",
        discussion: """
            Exit status: 0 every feed read and no broken link; 1 no feed could be read; \
            2 usage error; 3 completed with failures (failed feeds, broken links, skipped inputs). \
            The demo exits 0 once it completed with at least one feed read (its failures are on purpose).
            """)

    @Argument(help: "Feed URLs (http or https).")
    var urls: [String] = []

    @Option(name: .customLong("urls"), help: ArgumentHelp("A file of feed URLs, one per line ('#' starts a comment).", valueName: "file"))
    var urlFiles: [String] = []

    @Option(name: .customLong("opml"), help: ArgumentHelp("An OPML subscription list.", valueName: "file"))
    var opmlFiles: [String] = []

    @Flag(help: "Serve the sample feeds from a local stub server and read them (offline). The default with no input.")
    var demo = false

    @Option(help: ArgumentHelp("The sample feeds folder for --demo (default: the package's Fixtures/feeds).", valueName: "dir"))
    var fixtures: String?

    @Option(help: "Feeds fetched at once.")
    var concurrency: Int = 16

    @Option(help: "Links checked at once.")
    var linkConcurrency: Int = 32

    @Option(help: ArgumentHelp("Seconds one feed request may take, body included (default 10; demo 2).", valueName: "seconds"))
    var timeout: Double?

    @Option(help: ArgumentHelp("Seconds one link check may take (default 10; demo 2).", valueName: "seconds"))
    var linkTimeout: Double?

    @Option(help: ArgumentHelp("Largest feed body accepted, in bytes.", valueName: "bytes"))
    var maxBytes: Int = 10 << 20

    @Flag(help: "Fetch and parse feeds only; do not check links.")
    var noLinks = false

    @Option(help: ArgumentHelp("Newest entries shown per feed in the text report (0: none). The JSON report has them all.", valueName: "n"))
    var entries: Int = 3

    @Flag(help: "Print the report as JSON on standard output (progress goes to standard error).")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress lines.")
    var quiet = false

    func validate() throws {
        guard concurrency >= 1, linkConcurrency >= 1 else { throw ValidationError("concurrency must be at least 1") }
        for t in [timeout, linkTimeout].compactMap({ $0 }) where !(t > 0) {
            throw ValidationError("timeouts must be positive")
        }
        guard maxBytes > 0 else { throw ValidationError("--max-bytes must be positive") }
        guard entries >= 0 else { throw ValidationError("--entries must be 0 or more") }
    }

    /// Usage errors exit with status 2 (ArgumentParser's own default is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    func run() async throws {
        let isDemo = demo || (urls.isEmpty && urlFiles.isEmpty && opmlFiles.isEmpty)
        if isDemo {
            try await runDemo()
        } else {
            let list: FeedSources.List
            do {
                list = try FeedSources.load(arguments: urls, urlFiles: urlFiles, opmlFiles: opmlFiles)
            } catch {
                throw ValidationError(error.description)
            }
            guard !list.urls.isEmpty else {
                for p in list.problems { printError(p.description) }
                throw ValidationError("no valid feed URL given")
            }
            let report = try await read(list, defaultTimeout: 10)
            throw ExitCode(report.exitStatus)
        }
    }

    /// Starts the stub, serves the fixtures at `/feeds/<name>`, reads the
    /// demo list (`feeds.opml`) and runs against it.
    private func runDemo() async throws {
        let directory = fixtures.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FeedFixtures.defaultDirectory()
        guard let directory, FileManager.default.fileExists(atPath: directory.appendingPathComponent("feeds.opml").path) else {
            throw ValidationError("cannot find the sample feeds (Fixtures/feeds/feeds.opml); pass --fixtures DIR")
        }
        let report = try await withStubServer(fixturesDirectory: directory.deletingLastPathComponent()) { stub in
            for file in try FeedFixtures.served(from: directory, base: stub.baseURL) {
                stub.register(file.path, contentType: file.contentType, body: file.body)
            }
            let list = try FeedSources.parseOPML(
                FeedFixtures.contents(of: "feeds.opml", in: directory, base: stub.baseURL), source: "feeds.opml")
            if !quiet { printError("demo: serving \(directory.path) at \(stub.baseURL)") }
            return try await read(list, defaultTimeout: 2)
        }
        throw ExitCode(report.summary.feedsOK > 0 ? 0 : report.exitStatus)
    }

    /// Runs the reader over `list` and prints progress and the report.
    private func read(_ list: FeedSources.List, defaultTimeout: Double) async throws -> Report {
        for p in list.problems { printError(p.description) }
        let configuration = FeedReaderConfiguration(
            urls: list.urls,
            skippedInputs: list.problems,
            maxConcurrentFeeds: concurrency,
            maxConcurrentLinks: linkConcurrency,
            feedTimeout: .milliseconds(Int((timeout ?? defaultTimeout) * 1000)),
            linkTimeout: .milliseconds(Int((linkTimeout ?? defaultTimeout) * 1000)),
            maxBytes: maxBytes,
            checkLinks: !noLinks)
        let progress = quiet ? nil : ProgressPrinter.standard(toStandardError: json)
        let report = try await FeedRunner.run(configuration, progress: progress)
        if json {
            FileHandle.standardOutput.write(try report.jsonData() + Data("\n".utf8))
        } else {
            print(report.rendered(newestEntries: entries))
        }
        return report
    }

    private func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
