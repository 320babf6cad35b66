#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore

/// A key press, decoded from the bytes a terminal in cbreak mode sends.
public enum Key: Sendable, Equatable {
    case character(Character)
    case enter, tab, backspace, escape
    /// Bytes this decoder does not name (arrows and other escape sequences).
    case other([UInt8])

    /// Decodes one read's worth of bytes into keys (UTF-8 text, CR/LF as
    /// Enter, DEL/BS as Backspace, a lone ESC as Escape; an escape sequence
    /// such as an arrow key as one ``other(_:)``).
    public static func decode(_ bytes: [UInt8]) -> [Key] {
        var keys: [Key] = []
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            switch byte {
            case 13, 10: keys.append(.enter); i += 1
            case 9: keys.append(.tab); i += 1
            case 127, 8: keys.append(.backspace); i += 1
            case 27:
                if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "[") || bytes[i + 1] == UInt8(ascii: "O") {
                    var j = i + 2
                    while j < bytes.count, !(64...126).contains(bytes[j]) { j += 1 }
                    let end = min(j + 1, bytes.count)
                    keys.append(.other(Array(bytes[i..<end])))
                    i = end
                } else {
                    keys.append(.escape)
                    i += 1
                }
            default:
                let end = min(i + utf8SequenceLength(leading: byte), bytes.count)
                let text = String(decoding: bytes[i..<end], as: UTF8.self)
                if byte < 32 || text.isEmpty {
                    keys.append(.other(Array(bytes[i..<end])))
                } else {
                    keys.append(contentsOf: text.map(Key.character))
                }
                i = end
            }
        }
        return keys
    }
}

/// How many bytes the UTF-8 sequence that starts with `byte` has (1 for
/// ASCII and for a stray continuation byte, which then stands alone).
public func utf8SequenceLength(leading byte: UInt8) -> Int {
    byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
}

/// The key loop of listings 7.12 and 7.14 — Tk's `mainloop` for a terminal —
/// on the calling (main) thread: wait for input with `poll` for at most one
/// `tick` (25 ms), hand each key to `handleKey`, call `tick` (where the app
/// drains its queues), and redraw when `render` gives a different screen.
/// Only this loop draws; other threads post to queues that `onTick` drains.
///
/// The loop ends when `handleKey` or `onTick` returns `.quit`, or when input
/// reaches end-of-file.
public struct TerminalApp {
    public enum Next: Sendable, Equatable { case keepGoing, quit }

    public var input: Int32
    public var output: Int32
    public var tick: Duration

    public init(input: Int32 = 0, output: Int32 = 1, tick: Duration = .milliseconds(25)) {
        self.input = input
        self.output = output
        self.tick = tick
    }

    /// The whole life of a full-screen app: `input` in cbreak mode, the
    /// cursor hidden, ``run(handleKey:onTick:render:)``, then the cursor shown
    /// again below the screen's `lastRow` and the terminal settings restored
    /// (on every exit path, signals included: ``Terminal/withCbreakMode(_:_:)``).
    /// - Throws: ``TerminalError/notATerminal`` if `input` is not a terminal.
    @discardableResult
    public func runFullScreen(
        lastRow: Int,
        handleKey: (Key) -> Next,
        onTick: () -> Next,
        render: () -> String
    ) throws -> Int {
        try Terminal.withCbreakMode(input) {
            Terminal.write(ANSI.hideCursor, to: output)
            defer { Terminal.write(ANSI.showCursor + ANSI.moveTo(row: lastRow) + "\r\n", to: output) }
            return run(handleKey: handleKey, onTick: onTick, render: render)
        }
    }

    /// Runs the loop; returns how many times it redrew.
    @discardableResult
    public func run(
        handleKey: (Key) -> Next,
        onTick: () -> Next,
        render: () -> String
    ) -> Int {
        UIThread.owner.withLock { $0 = UIThread.Owner(thread: pthread_self(), fd: output) }
        defer { UIThread.owner.withLock { $0 = nil } }
        var shown = ""
        var redraws = 0
        func redraw() {
            let screen = render()
            if screen != shown {
                Terminal.write(screen, to: output)
                shown = screen
                redraws += 1
            }
        }
        redraw()
        let timeout = Int32(max(1, tick.milliseconds))
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeout)
            if ready > 0 {
                let n = read(input, &buffer, buffer.count)
                if n == 0 { return redraws }
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return redraws
                }
                for key in Key.decode(Array(buffer[..<n])) {
                    if handleKey(key) == .quit {
                        redraw()
                        return redraws
                    }
                }
            } else if ready < 0 && errno != EINTR {
                return redraws
            }
            if onTick() == .quit {
                redraw()
                return redraws
            }
            redraw()
        }
    }
}

/// A thread-safe queue of values posted by workers and drained by the UI
/// loop: the `queue.Queue` of listing 7.14, which the GUI polls every 25 ms.
/// Unlike the listing, which takes one item per tick (100 updates need at
/// least 2.5 s to show), ``drain()`` takes everything queued at once.
public final class UIQueue<Element: Sendable>: Sendable {
    private let items = Locked<[Element]>([])

    public init() {}

    /// From any thread.
    public func post(_ element: Element) { items.withLock { $0.append(element) } }

    /// Everything posted since the last drain, oldest first (on the UI thread).
    public func drain() -> [Element] { items.withLock { q in defer { q = [] }; return q } }
}
