import NIOCore
import NIOPosix
import ServiceLifecycle

/// Listing 8.12: an echo server built on a server object (`start_server`)
/// with shared state: the writers of every client, so that arrivals and
/// departures are announced to everyone.
///
/// A newcomer gets "Welcome! Users online: N!", then everyone, the newcomer
/// included, gets "New user connected!"; each line a client sends is echoed
/// to it alone; when a client leaves the rest are told "Client
/// disconnected. Users left online: N!". Stopping the server (cancelling
/// ``run()``) closes every connection: each client reads EOF.
///
/// Unlike the listing, which removes writers from the list it is iterating
/// (skipping the next client) and catches only `ConnectionError`,
/// announcements go to a snapshot of the writers and any failed write
/// removes just that client. An announcement waits for each client's write
/// in turn, as the listing's `drain()` does: a client that never reads holds
/// the announcements up (the chat server of 8.13 bounds that).
public struct AnnouncingEchoServer: Sendable, Service {
    /// The bound port.
    public var port: Int { server.port }
    private let server: LineServer
    private let state = ServerState()

    /// Binds on `configuration`'s address (loopback, any port by default).
    public static func bind(
        _ configuration: LineServer.Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> AnnouncingEchoServer {
        AnnouncingEchoServer(server: try await LineServer.bind(configuration, group: group))
    }

    /// Serves until cancelled (or graceful shutdown has ended every connection).
    public func run() async throws {
        try await server.run { connection in await serve(connection) }
    }

    /// How many clients are registered now.
    public var online: Int { get async { await state.count } }

    private func serve(_ connection: LineServer.Connection) async {
        try? await connection.executeThenClose { inbound, outbound in
            // Welcome first, then register: no announcement can overtake the welcome.
            let (id, online) = await state.reserve()
            try? await outbound.write(ByteBuffer(string: "Welcome! Users online: \(online)!\n"))
            await state.register(id, outbound)  // even if gone already: the next announcement removes it
            await state.announce("New user connected!\n")
            do {
                for try await line in inbound { try await outbound.write(line) }
            } catch {
                // A reset, or a line over the limit: this client is done; the others go on.
            }
            if let left = await state.remove(id) {
                await state.announce("Client disconnected. Users left online: \(left)!\n")
            }
        }
    }
}

/// Listing 8.12's `ServerState`: every client's writer, by connection.
actor ServerState {
    private var writers: [Int: NIOAsyncChannelOutboundWriter<ByteBuffer>] = [:]
    private var reserved = 0
    private var nextID = 0

    var count: Int { writers.count }

    /// A new client's id and the number online counting it.
    func reserve() -> (Int, Int) {
        nextID += 1
        reserved += 1
        return (nextID, writers.count + reserved)
    }

    func register(_ id: Int, _ writer: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        reserved -= 1
        writers[id] = writer
    }

    /// Removes a client; the number left, or nil if it was gone already.
    func remove(_ id: Int) -> Int? {
        guard writers.removeValue(forKey: id) != nil else { return nil }
        return writers.count
    }

    /// Writes `message` to a snapshot of the clients; a failed write removes that client only.
    func announce(_ message: String) async {
        let buffer = ByteBuffer(string: message)
        for (id, writer) in writers.sorted(by: { $0.key < $1.key }) {
            do {
                try await writer.write(buffer)
            } catch {
                writers[id] = nil
            }
        }
    }
}
