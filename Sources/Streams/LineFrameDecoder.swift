import NIOCore

/// Frames a byte stream into lines, each *with* its `\n` (and any `\r`):
/// TCP may split or merge writes, so a handler must never assume one read is
/// one message.
///
/// Unlike NIOExtras' `LineBasedFrameDecoder`, it keeps the delimiter (so an
/// echo is byte-for-byte, CRLF included) and bounds memory: a line longer
/// than `maxLineLength` without a newline fails the channel with
/// ``LineTooLongError`` instead of buffering forever. At EOF an unfinished
/// last line is delivered as it is.
///
/// Runs on the channel's event loop, like every NIO handler.
public struct LineFrameDecoder: ByteToMessageDecoder {
    /// Each output is one line, delimiter included.
    public typealias InboundOut = ByteBuffer

    /// The longest line accepted, newline included.
    public let maxLineLength: Int
    private var scanned = 0

    /// - Parameter maxLineLength: the longest accepted line (default 8 MiB).
    public init(maxLineLength: Int = 8 << 20) {
        self.maxLineLength = maxLineLength
    }

    /// Emits the next complete line, if the buffer holds one; remembers how
    /// far it scanned so a long line is searched only once.
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        let from = view.startIndex + min(scanned, view.count)
        if let newline = view[from...].firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - view.startIndex + 1
            scanned = 0
            context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: length)!))
            return .continue
        }
        scanned = view.count
        if view.count > maxLineLength { throw LineTooLongError(limit: maxLineLength) }
        return .needMoreData
    }

    /// At EOF: emits the remaining complete lines, then any unfinished tail.
    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            scanned = 0
            context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: buffer.readableBytes)!))
        }
        return .needMoreData
    }
}

/// A client sent a line longer than the decoder's limit.
public struct LineTooLongError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The limit that was exceeded.
    public var limit: Int

    public var description: String { "line too long (no newline within \(limit) bytes)" }
}
