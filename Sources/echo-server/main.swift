// echo-server: the chapter 3 echo servers as one program.
//
//   swift run echo-server --mode blocking|selector|async|threads [--port N] [--grace-ms MS]
//   swift run echo-server signal-demo [--delay SECONDS] [--tasks N]
//
// It prints `listening <port>` on stdout once it accepts clients (bind port 0
// to let the kernel choose), logs connections on stderr, and shuts down
// cleanly on Ctrl-C (SIGINT) or SIGTERM. In async mode, open connections get
// `--grace-ms` to finish before they are cancelled (listing 3.10).

import ArgumentParser
import AsyncPrimitives
import Glibc
import Logging
import ServiceLifecycle
import SocketServers
import UnixSignals
import Threads

/// Writes one line to stdout at once (no stdio buffering: the tests read it
/// through a pipe, where stdio would hold it back).
func say(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

/// With `--exit-with-parent`: exit when stdin reaches EOF. A test runner that
/// starts this program keeps a pipe to its stdin open; if the runner dies
/// (even by SIGKILL) the pipe closes and no orphaned server is left behind.
func exitWhenStdinCloses(_ enabled: Bool) {
    guard enabled else { return }
    _ = spawnThread(name: "stdin-watch", stackSize: 1 << 20) {
        var byte: UInt8 = 0
        while read(0, &byte, 1) > 0 {}
        Glibc.exit(3)
    }
}

@main
struct EchoServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "The echo servers of chapters 3 and 7 (blocking, selector, async, threads).",
        subcommands: [Serve.self, SignalDemo.self],
        defaultSubcommand: Serve.self
    )
}

/// Which server to run.
enum Mode: String, ExpressibleByArgument, CaseIterable {
    case blocking, selector, async, threads
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run an echo server (the default command).")

    @Option(help: "blocking (one client at a time), selector (epoll loop), async (SwiftNIO) or threads (a thread per client, listings 7.1-7.2).")
    var mode: Mode = .async

    @Option(help: "Port to listen on (0: any free port).")
    var port: Int = 8000

    @Option(name: .customLong("grace-ms"), help: "Async mode: how long open connections may finish after SIGINT/SIGTERM.")
    var graceMilliseconds: Int = 2000

    @Flag(help: "Exit when stdin closes (used by tests so a dead runner leaves no server behind).")
    var exitWithParent = false

    func run() async throws {
        exitWhenStdinCloses(exitWithParent)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "echo-server")
        switch mode {
        case .async:
            let server = try await AsyncEchoServer.bind(.init(port: port), logger: logger)
            var config = ServiceGroupConfiguration(
                services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            config.maximumGracefulShutdownDuration = .milliseconds(graceMilliseconds)
            let group = ServiceGroup(configuration: config)
            say("listening \(server.port)")
            try await group.run()
        case .selector:
            let server = try SelectorEchoServer(port: port, logger: logger)
            try await serveUntilSignal(port: server.port, logger: logger) { await server.stop() }
        case .blocking:
            let server = try BlockingEchoServer(mode: .oneClientAtATime, port: port, logger: logger)
            try await serveUntilSignal(port: server.port, logger: logger) { await server.stop() }
        case .threads:
            let server = try ThreadedEchoServer(port: port, logger: logger)
            try await serveUntilSignal(port: server.port, logger: logger) { await server.stop() }
        }
        logger.info("stopped")
    }

    /// Thread-based servers: wait for SIGINT/SIGTERM, then stop the thread.
    func serveUntilSignal(port: Int, logger: Logger, stop: () async -> Void) async throws {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        say("listening \(port)")
        for await signal in signals {
            logger.info("shutting down", metadata: ["signal": "\(signal)"])
            break
        }
        await stop()
    }
}

/// Listing 3.9: a SIGINT handler that cancels every task.
struct SignalDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal-demo",
        abstract: "Listing 3.9: Ctrl-C cancels the delays; exits 130.")

    @Option(help: "Seconds each task sleeps (the book's delay(10)).")
    var delay: Double = 10

    @Option(help: "How many tasks run under the root task.")
    var tasks: Int = 3

    @Flag(help: "Exit when stdin closes (see serve).")
    var exitWithParent = false

    func run() async throws {
        exitWhenStdinCloses(exitWithParent)
        let tasks = self.tasks
        let delay = self.delay
        do {
            try await withSignalCancellation([.sigint, .sigterm]) { signal in
                say("got \(signal)")
                say("cancelling \(tasks) tasks")
            } body: {
                say("ready")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<tasks {
                        group.addTask {
                            do {
                                try await Task.sleep(for: .seconds(delay))
                                say("delay finished")
                            } catch {
                                say("delay cancelled")
                                throw error
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
        } catch is CancellationError {
            throw ExitCode(130)  // 128 + SIGINT, what a shell reports for Ctrl-C
        }
    }
}
