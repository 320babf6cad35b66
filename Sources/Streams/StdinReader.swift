#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Threads

/// Listing 8.5's `create_stdin_reader`: standard input (or any descriptor)
/// as an async sequence of byte chunks, so waiting for a line no longer
/// blocks anything (listing 8.4's bug).
///
/// - Pipes, sockets and terminals are read by SwiftNIO
///   (`NIOPipeBootstrap`, asyncio's `connect_read_pipe`) on an event loop.
///   NIO takes ownership of the descriptor it is given and closes it, so it
///   gets a `dup`; it also switches it to non-blocking, a flag of the open
///   file description shared with the parent shell (and, on a terminal,
///   with stdout): the reader puts the saved flags back when it closes.
/// - Regular files (`app < file.txt`), which NIO refuses as asyncio does,
///   and character devices other than terminals (`< /dev/null`) are read with blocking `read`s on the package's ``ThreadPool`` — one
///   chunk per request, so a consumer that stops reading stops the reads.
///
/// Cancelling the consuming task ends a pending `next()` promptly in both modes.
public enum StdinReader {
    /// How the descriptor is read.
    public enum Mode: Sendable, Equatable {
        /// Non-blocking, by NIO.
        case eventLoop
        /// Blocking reads on a pool thread (regular files).
        case blockingReads
    }

    /// Opens a reader on `fd`, runs `body` with its input, and closes the
    /// reader (restoring `fd`'s flags) however `body` ends. `fd` itself stays open.
    public static func withReader<R: Sendable>(
        fd: Int32 = 0,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        pool: ThreadPool = .shared,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (Input) async throws -> R
    ) async throws -> R {
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw StdinReaderError.badDescriptor(fd: fd, errno: errno) }
        let kind = status.st_mode & S_IFMT
        // epoll cannot watch regular files, nor character devices other than
        // terminals (/dev/null: EPERM, on which NIO 2.101 stops the process
        // with a `try!` instead of failing): those never block, so blocking
        // reads are safe there.
        if kind == S_IFREG || (kind == S_IFCHR && isatty(fd) == 0) {
            return try await body(Input(.file(fd: fd, pool: pool)))
        }
        let flags = fcntl(fd, F_GETFL)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        let copy = dup(fd)
        guard copy >= 0 else { throw StdinReaderError.badDescriptor(fd: fd, errno: errno) }
        let channel: NIOAsyncChannel<ByteBuffer, Never>
        do {
            channel = try await NIOPipeBootstrap(group: group).takingOwnershipOfDescriptor(input: copy) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            // NIO closed `copy` (directories, block devices: "operation unsupported").
            throw StdinReaderError.unsupported(fd: fd, underlying: "\(error)")
        }
        return try await channel.executeThenClose { inbound in
            try await body(Input(.pipe(inbound)))
        }
    }

    /// The reader's input: chunks of bytes as they arrive, ending at end of input.
    public struct Input: AsyncSequence, Sendable {
        public typealias Element = ByteBuffer
        enum Source: Sendable {
            case pipe(NIOAsyncChannelInboundStream<ByteBuffer>)
            case file(fd: Int32, pool: ThreadPool)
        }
        let source: Source
        init(_ source: Source) { self.source = source }

        /// How this input is read.
        public var mode: Mode {
            if case .pipe = source { return .eventLoop }
            return .blockingReads
        }

        /// Its lines, asyncio's `readline()` semantics (``lines(of:maxLineLength:)``).
        public var lines: AsyncLineSequence<Input> { Streams.lines(of: self) }

        /// Its bytes one at a time (for a character-at-a-time reader such as listing 8.8's).
        public var bytes: AsyncBytes<Input> { AsyncBytes(base: self) }

        public func makeAsyncIterator() -> AsyncIterator {
            switch source {
            case .pipe(let stream): AsyncIterator(pipe: stream.makeAsyncIterator())
            case .file(let fd, let pool): AsyncIterator(fd: fd, pool: pool)
            }
        }

        public struct AsyncIterator: AsyncIteratorProtocol {
            var pipe: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator?
            var fd: Int32 = -1
            var pool: ThreadPool?
            var ended = false

            init(pipe: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.pipe = pipe }
            init(fd: Int32, pool: ThreadPool) {
                self.fd = fd
                self.pool = pool
            }

            public mutating func next() async throws -> ByteBuffer? {
                if pipe != nil { return try await pipe!.next() }
                guard !ended, let pool else { return nil }
                try Task.checkCancellation()
                let fd = self.fd
                let chunk = try await pool.run { () throws -> [UInt8]? in
                    var buffer = [UInt8](repeating: 0, count: 64 << 10)
                    while true {
                        let n = read(fd, &buffer, buffer.count)
                        if n > 0 { return Array(buffer[..<n]) }
                        if n == 0 { return nil }
                        if errno != EINTR { throw StdinReaderError.readFailed(fd: fd, errno: errno) }
                    }
                }
                guard let chunk else {
                    ended = true
                    return nil
                }
                return ByteBuffer(bytes: chunk)
            }
        }
    }
}

/// The bytes of a sequence of `ByteBuffer` chunks, one at a time.
public struct AsyncBytes<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    public typealias Element = UInt8
    let base: Base

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var chunk = ByteBuffer()

        public mutating func next() async throws -> UInt8? {
            while chunk.readableBytes == 0 {
                guard let next = try await base.next() else { return nil }
                chunk = next
            }
            return chunk.readInteger(as: UInt8.self)
        }
    }
}

/// A descriptor the reader cannot use.
public enum StdinReaderError: Error, Sendable, Equatable, CustomStringConvertible {
    case badDescriptor(fd: Int32, errno: Int32)
    case unsupported(fd: Int32, underlying: String)
    case readFailed(fd: Int32, errno: Int32)

    public var description: String {
        switch self {
        case .badDescriptor(let fd, let code): "descriptor \(fd) cannot be read: \(String(cString: strerror(code)))"
        case .unsupported(let fd, let why): "descriptor \(fd) is neither a pipe, a socket, a terminal nor a regular file: \(why)"
        case .readFailed(let fd, let code): "reading descriptor \(fd) failed: \(String(cString: strerror(code)))"
        }
    }
}

extension AsyncBytes: Sendable where Base: Sendable {}
