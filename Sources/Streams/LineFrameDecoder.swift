import NIOCore

/// Frames a byte stream into lines the way asyncio's `StreamReader.readline()`
/// does: each line *with* its `\n` (and any `\r`), and at end of stream the
/// unfinished last line as it is. TCP may split or merge writes, so a handler
/// must never assume one read is one message.
///
/// Unlike NIOExtras' `LineBasedFrameDecoder`, which strips the delimiter and
/// reports an unterminated tail as `LeftOverBytesError`, it keeps the
/// delimiter (an echo is byte-for-byte, CRLF included), delivers the tail,
/// and bounds memory: a line longer than `maxLineLength` without a newline
/// fails with ``LineTooLongError`` instead of buffering forever.
///
/// A single-step decoder, so the one framing rule serves both a channel
/// pipeline (`ByteToMessageHandler(LineFrameDecoder())`, on the channel's
/// event loop) and any sequence of byte chunks (``lines(of:maxLineLength:)``,
/// through `NIOSingleStepByteToMessageProcessor`).
public struct LineFrameDecoder: NIOSingleStepByteToMessageDecoder {
    /// Each output is one line, delimiter included.
    public typealias InboundOut = ByteBuffer

    /// The longest line accepted, newline included.
    public let maxLineLength: Int
    private var scanned = 0

    /// - Parameter maxLineLength: the longest accepted line (default 8 MiB).
    public init(maxLineLength: Int = 8 << 20) {
        self.maxLineLength = maxLineLength
    }

    /// The next complete line, if the buffer holds one; remembers how far it
    /// scanned so a long line is searched only once.
    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let view = buffer.readableBytesView
        let from = view.startIndex + min(scanned, view.count)
        if let newline = view[from...].firstIndex(of: UInt8(ascii: "\n")) {
            scanned = 0
            return buffer.readSlice(length: newline - view.startIndex + 1)
        }
        scanned = view.count
        if view.count > maxLineLength { throw LineTooLongError(limit: maxLineLength) }
        return nil
    }

    /// At EOF: the remaining complete lines, then the unfinished tail, if any.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        if let line = try decode(buffer: &buffer) { return line }
        scanned = 0
        return buffer.readableBytes > 0 ? buffer.readSlice(length: buffer.readableBytes) : nil
    }
}

/// A client sent a line longer than the decoder's limit.
public struct LineTooLongError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The limit that was exceeded.
    public var limit: Int

    public var description: String { "line too long (no newline within \(limit) bytes)" }
}

/// The lines of a stream of byte chunks, framed by ``LineFrameDecoder``
/// (terminators kept, the unterminated tail delivered at the end), decoded
/// as UTF-8 once each line is whole — so a character cut across two chunks
/// arrives intact: asyncio's `async for line in reader`.
///
/// It pulls from `chunks` only when it has no whole line left, so the
/// source's backpressure and cancellation carry through unchanged.
public func lines<Chunks: AsyncSequence>(of chunks: Chunks, maxLineLength: Int = 8 << 20) -> AsyncLineSequence<Chunks>
where Chunks.Element == ByteBuffer {
    AsyncLineSequence(base: chunks, maxLineLength: maxLineLength)
}

/// See ``lines(of:maxLineLength:)``.
public struct AsyncLineSequence<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    public typealias Element = String
    let base: Base
    let maxLineLength: Int

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), processor: .init(LineFrameDecoder(maxLineLength: maxLineLength)))
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator?
        let processor: NIOSingleStepByteToMessageProcessor<LineFrameDecoder>
        var ready: [String] = []
        var nextReady = 0

        public mutating func next() async throws -> String? {
            while true {
                if nextReady < ready.count {
                    defer { nextReady += 1 }
                    return ready[nextReady]
                }
                ready.removeAll(keepingCapacity: true)
                nextReady = 0
                guard var source = base else { return nil }
                base = nil
                if let chunk = try await source.next() {
                    base = source
                    try processor.process(buffer: chunk) { ready.append(String(buffer: $0)) }
                } else {
                    try processor.finishProcessing(seenEOF: true) { ready.append(String(buffer: $0)) }
                }
            }
        }
    }
}
