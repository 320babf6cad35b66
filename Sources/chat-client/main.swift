// chat-client: listing 8.14's chat client, a full-screen terminal app.
//
//   swift run chat-client [--host 127.0.0.1] [--port 8000] [--username NAME]
//
// Asks for a username (unless given), connects to chat-server, and then
// shows every message above the input line while you type. Ctrl-C quits
// (exit 0, the terminal restored); so does the server going away, after
// "Server closed connection." is shown.

import ArgumentParser
import Streams
import TerminalUI

@main
struct ChatClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-client", abstract: "The chat client of listing 8.14.")

    @Option(help: "The chat server's address.")
    var host = "127.0.0.1"

    @Option(help: "The chat server's port.")
    var port = 8000

    @Option(help: "Your username (asked for when missing).")
    var username: String?

    func run() async throws {
        let (host, port, given) = (host, port, username)
        let status = await TerminalSession.run(name: "chat-client") { screen, input in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // One reader of the keyboard; its lines go to whoever needs them next.
                let (typed, typing) = AsyncStream.makeStream(of: String.self)
                group.addTask {
                    for try await line in input.editedLines(echoingOn: screen) { typing.yield(line) }
                    typing.finish()
                }
                defer { group.cancelAll() }
                var username = given
                while username == nil {
                    await screen.post("Enter a username:")
                    var lines = typed.makeAsyncIterator()
                    guard let line = await lines.next() else { return }
                    let name = line.split(separator: " ").joined()
                    if !name.isEmpty { username = name }
                }
                await screen.post("Connecting to \(host):\(port) as \(username!)…")
                try await ChatClient.run(username: username!, host: host, port: port, input: typed, post: screen.post)
                await screen.post("Press Ctrl-C to quit.")
                try await group.next()  // wait for the keyboard reader until Ctrl-C or end of input
            }
        }
        throw ExitCode(status)
    }
}
