// load-tester: listings 7.13–7.15, the book's Tkinter load tester as a
// terminal app.
//
//   swift run load-tester [--url URL] [--requests N] [--concurrency C] [--dedicated-loop]
//
// In a terminal: a form (URL, request count, Submit/Cancel), a progress bar
// and a summary; the key loop runs on a thread of its own (Tk's main thread:
// here the main thread runs Swift's async main) and is the only code
// that draws; the load runs as Swift tasks (or, with --dedicated-loop, on an
// event-loop thread of its own, like the book's loop thread) and posts its
// progress to a queue the key loop drains every 25 ms. Given --url and
// --requests it starts at once. With stdout not a terminal it prints plain
// progress lines and a summary instead (--url and --requests required).
//
// Exit status: 0 done; 1 the run failed (requests got no response);
// 2 usage error (bad option, terminal too small).

import ArgumentParser
import AsyncPrimitives
import CurriculumCore
import Foundation
import TerminalUI
import Threads
import WebClients

@main
struct LoadTesterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load-tester",
        abstract: "Listing 7.13-7.15: an HTTP load tester with a terminal UI.",
        discussion: "Keys: Tab next field, Enter submit (or cancel while running), c cancel, Esc or q quit.")

    @Option(help: "The URL every request GETs.") var url: String?
    @Option(help: "How many requests (at least 1).") var requests: Int?
    @Option(help: "The most requests in flight at once (aiohttp's default connector: 100).") var concurrency: Int = 100
    @Flag(help: "Run the load on an event-loop thread of its own (the book's loop thread) instead of Swift's global executor.")
    var dedicatedLoop = false
    @Flag(help: "Plain progress lines even when stdout is a terminal.") var plain = false

    func validate() throws {
        if let requests, requests < 1 { throw ValidationError("--requests must be at least 1, not \(requests)") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1, not \(concurrency)") }
        if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("--url must start with http:// or https://, not \(url)")
        }
    }

    /// Usage errors exit with status 2 (ArgumentParser's own default is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    func run() async throws {
        let configuration = WebClientConfiguration(timeout: .seconds(60), connectTimeout: .seconds(5), maxConnectionsPerHost: concurrency)
        let interactive = !plain && Terminal.isTerminal(0) && Terminal.isTerminal(1)
        if !interactive {
            guard let url, let requests else {
                throw ValidationError("without a terminal, --url and --requests are required")
            }
            try await withHTTPClient(configuration: configuration) { client in
                try await runPlain(url: url, requests: requests, client: client)
            }
            return
        }
        let size = Terminal.size(of: 1)
        let needed = LoadTesterRenderer.minimumSize
        guard size.rows >= needed.rows && size.columns >= needed.columns else {
            throw ValidationError(TerminalError.tooSmall(needed: needed, actual: size).description)
        }
        try await withHTTPClient(configuration: configuration) { client in
            try await runInteractive(client: client, size: size)
        }
    }

    /// Without a terminal: "k of n completed" at every 10 %, then the summary.
    func runPlain(url: String, requests: Int, client: WebClient) async throws {
        let tester = try LoadTester(url: url, totalRequests: requests, client: client, maxConcurrent: concurrency)
        let step = max(1, requests / 10)
        let summary = await tester.start { p in
            if p.completed % step == 0 || p.completed == p.total { say("\(p.completed) of \(p.total) completed") }
        }.summary
        say(summary.description)
        if summary.failures > 0 {
            FileHandle.standardError.write(Data("load-tester: \(summary.failures) of \(summary.completed) requests got no response: \(summary.firstFailure ?? "")\n".utf8))
            throw ExitCode(1)
        }
    }

    /// The terminal UI: the key loop on a thread of its own, ``ThreadPool/uiThread``.
    func runInteractive(client: WebClient, size: Terminal.Size) async throws {
        // The key loop blocks its thread in poll(): it must not be a thread of
        // the cooperative pool, so it runs on a thread of its own and this task waits.
        let concurrency = concurrency, dedicatedLoop = dedicatedLoop
        let initial = LoadTesterScreen(url: url ?? "http://127.0.0.1:8080/", count: requests.map(String.init) ?? "100")
        let autostart = url != nil && requests != nil
        let loop: LoopExecutor? = dedicatedLoop ? LoopExecutor() : nil
        defer { if let loop { Task { try? await loop.close() } } }
        try await toThread(on: .uiThread) {
            try runKeyLoop(initial: initial, autostart: autostart, client: client, concurrency: concurrency, loop: loop, size: size)
        }
    }
}

/// Writes one line to stdout at once.
func say(_ text: String) { Terminal.write(text + "\n") }

extension ThreadPool {
    /// The one thread the key loop runs on (never the cooperative pool).
    static let uiThread = ThreadPool(threads: 1, name: "ui")
}

/// What the load thread posts for the key loop.
enum Event: Sendable {
    case progress(LoadTestProgress)
    case finished(LoadTestSummary)
}

func runKeyLoop(
    initial: LoadTesterScreen, autostart: Bool, client: WebClient, concurrency: Int, loop: LoopExecutor?, size: Terminal.Size
) throws {
    var state = initial
    let events = UIQueue<Event>()
    var current: LoadTester?

    func perform(_ effect: LoadTesterScreen.Effect?) -> TerminalApp.Next {
        switch effect {
        case nil: return .keepGoing
        case .quit:
            current?.cancel()
            return .quit
        case .cancel:
            current?.cancel()
            return .keepGoing
        case .start(let url, let count)?:
            do {
                let tester = try LoadTester(url: url, totalRequests: count, client: client, maxConcurrent: concurrency)
                current = tester
                let post: @Sendable (LoadTestProgress) -> Void = { events.post(.progress($0)) }  // workers never draw
                let begin: @Sendable () async -> Void = {
                    let summary = await tester.start(progress: post).summary
                    events.post(.finished(summary))
                }
                if let loop { Task { try? await loop.run { await begin() } } } else { Task { await begin() } }
            } catch {
                state.status = "\(error)"
            }
            return .keepGoing
        }
    }

    if autostart { _ = perform(state.handle(key: .enter)) }
    try TerminalApp().runFullScreen(
        lastRow: size.rows,
        handleKey: { key in perform(state.handle(key: key)) },
        onTick: {
            for event in events.drain() {
                switch event {
                case .progress(let p): state.handle(completed: p.completed, total: p.total)
                case .finished(let summary): state.finished(cancelled: summary.cancelled, message: summary.description)
                }
            }
            return .keepGoing
        },
        render: { LoadTesterRenderer.render(state, size: size) }
    )
    // Quitting mid-run: the run was cancelled; wait (bounded) for its requests to end before the client shuts down.
    if let current {
        let done = DispatchSemaphore(value: 0)
        Task {
            _ = await current.start().summary
            done.signal()
        }
        _ = done.wait(timeout: .now() + 5)
    }
}
