/// Listing 8.8's `read_line`: the line being typed, kept by the program
/// itself while the terminal is in cbreak mode (no echo, no line editing),
/// so output drawn elsewhere on the screen cannot scramble it.
///
/// Fed one byte at a time, it says what to echo: each character as it is
/// completed; for Delete (0x7F, or Backspace 0x08) one column left, a
/// space, one column left — nothing on an empty line (the seed's version
/// raises there); and on Enter (`\n`, or the `\r` a terminal without
/// `ICRNL` sends) the line is cleared (`ESC[2K ESC[0G`) and returned.
///
/// Unlike the listing, which decodes every byte on its own (and fails on
/// "é"), it keeps bytes until a character is complete and erases whole
/// `Character`s: "é" then Delete leaves nothing behind. Other control
/// bytes are ignored.
public struct LineEditor: Sendable {
    private var bytes: [UInt8] = []
    /// Where the incomplete UTF-8 sequence at the end starts (== count: none).
    private var complete = 0

    public init() {}

    /// The complete characters typed so far on this line.
    public var text: String { String(decoding: bytes[..<complete], as: UTF8.self) }

    /// Takes one byte: what to echo, and the finished line when it was Enter.
    public mutating func feed(_ byte: UInt8) -> (echo: String, line: String?) {
        switch byte {
        case 10, 13:
            let line = text
            bytes = []
            complete = 0
            return (ANSI.clearLine, line)
        case 127, 8:
            if complete < bytes.count {  // half a character: it was never shown
                bytes.removeSubrange(complete...)
                return ("", nil)
            }
            guard !bytes.isEmpty else { return ("", nil) }
            var line = text
            line.removeLast()
            bytes = Array(line.utf8)
            complete = bytes.count
            return (ANSI.cursorBack(1) + " " + ANSI.cursorBack(1), nil)
        case 0..<32:
            return ("", nil)
        default:
            bytes.append(byte)
            let lead = bytes[complete]
            guard bytes.count - complete >= utf8SequenceLength(leading: lead) else { return ("", nil) }
            let character = String(decoding: bytes[complete...], as: UTF8.self)
            complete = bytes.count
            return (character, nil)
        }
    }

    /// Reads bytes from `input` until a line is complete, echoing through
    /// `echo`; returns the line, or nil at end of input (a partly typed line
    /// is returned first, as asyncio's last `readline()`).
    public mutating func readLine<Input: AsyncIteratorProtocol>(
        from input: inout Input, echo: (String) -> Void
    ) async throws -> String? where Input.Element == UInt8 {
        while let byte = try await input.next() {
            let (shown, line) = feed(byte)
            if !shown.isEmpty { echo(shown) }
            if let line { return line }
        }
        defer { bytes = []; complete = 0 }
        return bytes.isEmpty ? nil : text
    }
}

extension LineEditor {
    /// The lines typed on `bytes`, each edited by a fresh ``LineEditor`` and
    /// echoed through `echo` as it is typed.
    public static func lines<Bytes: AsyncSequence>(
        of bytes: Bytes, echo: @escaping @Sendable (String) -> Void
    ) -> EditedLines<Bytes> where Bytes.Element == UInt8 {
        EditedLines(bytes: bytes, echo: echo)
    }
}

/// See ``LineEditor/lines(of:echo:)``.
public struct EditedLines<Bytes: AsyncSequence>: AsyncSequence where Bytes.Element == UInt8 {
    public typealias Element = String
    let bytes: Bytes
    let echo: @Sendable (String) -> Void

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes.makeAsyncIterator(), echo: echo) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: Bytes.AsyncIterator
        let echo: @Sendable (String) -> Void
        var editor = LineEditor()

        public mutating func next() async throws -> String? {
            try await editor.readLine(from: &bytes, echo: echo)
        }
    }
}

extension EditedLines: Sendable where Bytes: Sendable {}
