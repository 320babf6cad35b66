import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Listing 8.13: the chat server. A client's first line must be
/// `CONNECT <username>`; it is welcomed ("Welcome! Users connected: N!") and
/// "<username> connected!" goes to everyone, the newcomer included; each
/// further line goes to everyone, the sender included, as "<username>:
/// <text>"; when the client leaves, "<username> has left the chat".
///
/// What the port adds to the listing (each checked by a test):
/// - A missing or malformed `CONNECT`, an empty, too long or taken name is
///   answered with an `ERROR …` line and the connection is closed (the
///   listing crashes on a missing space and silently replaces a taken
///   name's connection).
/// - Idle clients (no line for `idleTimeout`; the book's 60 s) are told,
///   disconnected, and the others see them leave (the listing removes them
///   silently); read by NIO's `IdleStateHandler`.
/// - A client that stops reading cannot stall the others: every member has
///   its own ``Outbox``, bounded at `maxQueuedMessages`, drained by its
///   own writer task, which writes everything queued at once (one system
///   call for many messages under load) and waits for the socket. A
///   broadcast only enqueues; a member whose queue is full is dropped with a notice to the
///   others — never buffered without bound.
/// - A line longer than `maxLineLength` (say 1 MiB without a newline) ends
///   that connection with an error; abrupt disconnects (resets) clean up
///   like any departure.
/// - Graceful shutdown (swift-service-lifecycle): no new clients; everyone
///   is told "Server is shutting down. Bye!" and disconnected once their
///   queue is written.
public struct ChatServer: Sendable, Service {
    public struct Configuration: Sendable {
        /// Where to listen.
        public var host: String
        public var port: Int
        /// A client silent this long is disconnected (the book: 60 s).
        public var idleTimeout: Duration
        /// The longest line accepted, newline included.
        public var maxLineLength: Int
        /// The most messages waiting for one slow client before it is dropped.
        public var maxQueuedMessages: Int
        /// The longest username, in characters.
        public var maxUsernameLength = 32

        public init(host: String = "127.0.0.1", port: Int = 0, idleTimeout: Duration = .seconds(60),
                    maxLineLength: Int = 64 << 10, maxQueuedMessages: Int = 1024) {
            self.host = host
            self.port = port
            self.idleTimeout = idleTimeout
            self.maxLineLength = maxLineLength
            self.maxQueuedMessages = maxQueuedMessages
        }
    }

    /// The bound port.
    public var port: Int { server.port }
    public let configuration: Configuration
    /// Who is connected (also for tests and the benchmark).
    public let room: ChatRoom
    private let server: LineServer
    private let logger: Logger

    /// Binds the listener; call ``run()`` once.
    public static func bind(
        _ configuration: Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "chat-server", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> ChatServer {
        let lines = LineServer.Configuration(host: configuration.host, port: configuration.port,
                                             maxLineLength: configuration.maxLineLength)
        let idle = TimeAmount(configuration.idleTimeout)
        let server = try await LineServer.bind(lines, group: group) { channel in
            try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
            try channel.pipeline.syncOperations.addHandler(IdleReadTimeoutHandler())
        }
        return ChatServer(configuration: configuration, room: ChatRoom(logger: logger), server: server, logger: logger)
    }

    private init(configuration: Configuration, room: ChatRoom, server: LineServer, logger: Logger) {
        self.configuration = configuration
        self.room = room
        self.server = server
        self.logger = logger
    }

    /// Serves until cancelled, or until graceful shutdown has said goodbye to everyone.
    public func run() async throws {
        let room = self.room
        try await server.run(onGracefulShutdown: { Task { await room.shutDown() } }) { connection in
            await serve(connection)
        }
    }

    private func serve(_ connection: LineServer.Connection) async {
        let channel = connection.channel
        do {
            try await connection.executeThenClose { inbound, outbound in
                var lines = inbound.makeAsyncIterator()
                let username: String
                switch try await Self.username(from: lines.next(), configuration: configuration) {
                case .failure(let refusal):
                    try await outbound.write(ByteBuffer(string: "ERROR \(refusal)\n"))
                    return
                case .success(let name):
                    username = name
                }
                let outbox = Outbox(capacity: configuration.maxQueuedMessages)
                let member = ChatRoom.Member(name: username, outbox: outbox, channel: channel)
                guard await room.join(member) else {
                    try await outbound.write(ByteBuffer(string: "ERROR username '\(username)' is taken\n"))
                    return
                }
                try await withThrowingDiscardingTaskGroup { group in
                    // The member's writer: everything queued, in order, in one write at a
                    // time, at the pace the socket takes it.
                    group.addTask {
                        defer { channel.close(promise: nil) }  // outbox finished: the member is gone
                        while let batch = await outbox.next() { try await outbound.write(contentsOf: batch) }
                    }
                    var farewell: String? = nil
                    do {
                        while let line = try await lines.next() {
                            await room.say(username, String(buffer: line).trimmingNewline())
                        }
                    } catch is IdleReadTimeout {
                        farewell = "ERROR idle for too long: disconnected"
                    } catch let error as LineTooLongError {
                        farewell = "ERROR \(error): disconnected"
                    } catch {
                        // Reset or closed under us (dropped as too slow, shutdown): just leave.
                    }
                    await room.leave(member, farewell: farewell)
                }
            }
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// Why a first line is refused, or the username it gives.
    static func username(from line: ByteBuffer?, configuration: Configuration) -> Result<String, ChatRefusal> {
        guard let line else { return .failure(.noConnect) }
        let text = String(buffer: line).trimmingNewline()
        guard text == "CONNECT" || text.hasPrefix("CONNECT ") else { return .failure(.noConnect) }
        let name = text.dropFirst("CONNECT".count).trimmingWhitespace()
        if name.isEmpty { return .failure(.emptyName) }
        if name.count > configuration.maxUsernameLength { return .failure(.nameTooLong(configuration.maxUsernameLength)) }
        if name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 32 || $0.value == 127 }) {
            return .failure(.badName)
        }
        return .success(name)
    }
}

/// Why the server refused a first line (sent as `ERROR <description>`).
public enum ChatRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case noConnect, emptyName, badName
    case nameTooLong(Int)

    public var description: String {
        switch self {
        case .noConnect: "the first line must be CONNECT <username>"
        case .emptyName: "the username must not be empty"
        case .badName: "the username must not contain spaces or control characters"
        case .nameTooLong(let n): "the username must be at most \(n) characters"
        }
    }
}

/// The chat server's members: listing 8.13's `username_to_writer`, with a
/// bounded queue per member instead of a writer everyone waits on.
public actor ChatRoom {
    /// One connected user.
    public struct Member: Sendable {
        public var name: String
        var outbox: Outbox
        var channel: any Channel
    }

    private var members: [String: Member] = [:]
    private var closed = false
    private let logger: Logger
    /// Messages handed to members' queues (one per recipient), for the benchmark.
    public private(set) var deliveries = 0

    init(logger: Logger) { self.logger = logger }

    /// The usernames connected now, sorted.
    public var usernames: [String] { members.keys.sorted() }

    /// Adds `member` unless its name is taken or the server is shutting down:
    /// the welcome, then "<name> connected!" to everyone (the newcomer too).
    func join(_ member: Member) -> Bool {
        guard !closed, members[member.name] == nil else { return false }
        members[member.name] = member
        member.outbox.enqueue(ByteBuffer(string: "Welcome! Users connected: \(members.count)!\n"))
        logger.info("joined", metadata: ["user": "\(member.name)", "online": "\(members.count)"])
        broadcast("\(member.name) connected!\n")
        return true
    }

    /// "<name>: <text>" to everyone, the sender included.
    func say(_ name: String, _ text: String) {
        guard members[name] != nil else { return }
        broadcast("\(name): \(text)\n")
    }

    /// Removes `member` (if still there), tells it `farewell` first, and the others that it left.
    func leave(_ member: Member, farewell: String? = nil) {
        guard members[member.name]?.channel === member.channel else { return }
        members[member.name] = nil
        if let farewell { member.outbox.enqueue(ByteBuffer(string: farewell + "\n")) }
        member.outbox.finish()
        logger.info("left", metadata: ["user": "\(member.name)", "online": "\(members.count)"])
        broadcast("\(member.name) has left the chat\n")
    }

    /// Graceful shutdown: everyone is told, then disconnected; nobody may join.
    func shutDown() {
        closed = true
        let everyone = members.values
        members = [:]
        for member in everyone {
            member.outbox.enqueue(ByteBuffer(string: "Server is shutting down. Bye!\n"))
            member.outbox.finish()
        }
    }

    /// Enqueues `message` for every member; a member whose queue is full is dropped.
    private func broadcast(_ message: String) {
        let buffer = ByteBuffer(string: message)
        var tooSlow: [Member] = []
        for member in members.values {
            switch member.outbox.enqueue(buffer) {
            case .enqueued: deliveries += 1
            case .full: tooSlow.append(member)
            case .closed: break
            }
        }
        for member in tooSlow where members[member.name] != nil {
            members[member.name] = nil
            member.outbox.finish()
            member.channel.close(promise: nil)  // its writer is stuck in a write: close under it
            logger.warning("dropped a client too slow to keep up", metadata: ["user": "\(member.name)"])
            broadcast("\(member.name) was disconnected: too slow to keep up\n")
        }
    }
}

/// Turns NIO's read-idle event into an error on the connection's inbound sequence.
final class IdleReadTimeoutHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.fireErrorCaught(IdleReadTimeout())
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// A chat client sent nothing for the idle timeout.
struct IdleReadTimeout: Error {}

extension String {
    /// Without one trailing `\n` or `\r\n`.
    func trimmingNewline() -> String {
        var s = Substring(self)
        if s.hasSuffix("\r\n") { s = s.dropLast() } else if s.hasSuffix("\n") { s = s.dropLast() }
        return String(s)
    }
}

extension Substring {
    func trimmingWhitespace() -> String { String(self).trimmingWhitespace() }
}
