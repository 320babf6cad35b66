// chat-server: listing 8.13's chat server.
//
//   swift run chat-server [--host 127.0.0.1] [--port 8000] [--idle-timeout 60]
//
// Clients send `CONNECT <username>` first, then lines that everyone
// receives as "<username>: <text>". Try it with `swift run chat-client` or
// `nc 127.0.0.1 8000`. SIGINT/SIGTERM: everyone is told and disconnected,
// then it exits 0. It prints "listening <port>" once it accepts clients.

import ArgumentParser
import Logging
import ServiceLifecycle
import Streams
import TerminalUI

@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server", abstract: "The chat server of listing 8.13.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8000

    @Option(name: .customLong("idle-timeout"), help: "Seconds a client may stay silent before it is disconnected.")
    var idleTimeout: Double = 60

    @Option(name: .customLong("grace-ms"), help: "How long the goodbyes may take after SIGINT/SIGTERM.")
    var graceMilliseconds = 2000

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard idleTimeout > 0, idleTimeout.isFinite else { throw ValidationError("--idle-timeout must be a positive number of seconds") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "chat-server")
        let server = try await ChatServer.bind(
            .init(host: host, port: port, idleTimeout: .milliseconds(Int64(idleTimeout * 1000))), logger: logger)
        var config = ServiceGroupConfiguration(
            services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.maximumGracefulShutdownDuration = .milliseconds(graceMilliseconds)
        Terminal.write("listening \(server.port)\n")
        try await ServiceGroup(configuration: config).run()
        logger.info("stopped")
    }
}
