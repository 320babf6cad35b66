import NIOCore
import NIOPosix

/// Listing 8.14: the chat client. It connects, sends `CONNECT <username>`,
/// then listens and sends at once: one child task posts every line from the
/// server (and "Server closed connection." at its end), the other sends
/// each line of `input`. A connection lost with an error is posted as
/// "Connection lost: …".
///
/// Structured concurrency replaces the listing's `asyncio.wait(…,
/// FIRST_COMPLETED)`: when either child finishes, the group cancels the
/// other and the connection is closed — on every path (the listing closes
/// it only when an exception escapes). `input` must therefore end its
/// `next()` when cancelled (an `AsyncStream`, ``StdinReader``): a blocking
/// read would keep the client alive after the server has gone.
public enum ChatClient {
    /// The message posted when the server ends the connection.
    public static let serverClosed = "Server closed connection."

    /// Chats until the server closes the connection or `input` ends.
    /// - Throws: ``StreamConnectError`` when the server cannot be reached.
    public static func run<Input: AsyncSequence & Sendable>(
        username: String, host: String, port: Int, input: Input,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        post: @escaping @Sendable (String) async -> Void
    ) async throws where Input.Element == String {
        try await withConnection(host: host, port: port, group: group) { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "CONNECT \(username)\n"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {  // listen_for_messages
                    do {
                        for try await line in lines(of: inbound) { await post(line.trimmingNewline()) }
                        if !Task.isCancelled { await post(serverClosed) }
                    } catch where !(error is CancellationError) {
                        await post("Connection lost: \(error)")
                    }
                }
                tasks.addTask {  // read_and_send
                    for try await line in input {
                        try await outbound.write(ByteBuffer(string: line.trimmingNewline() + "\n"))
                    }
                }
                defer { tasks.cancelAll() }
                do {
                    try await tasks.next()
                } catch is CancellationError {
                }
            }
        }
    }
}
