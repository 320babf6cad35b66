/// The screen of listings 8.10, 8.11 and 8.14: messages scroll in the rows
/// above, the line being typed stays on the bottom row.
///
/// Every redraw saves the cursor, rewrites the message rows from the top
/// and restores the cursor (listing 8.10's `redraw_output`), so the input
/// line — and the cursor in it — is left as it was. Redraws come from the
/// ``MessageStore`` actor, one at a time; they and the echo of typed
/// characters go out through one ``ScreenOutput``, so they never interleave.
///
/// Messages are shown one row each: cut to the screen's width, with control
/// characters (a remote peer's escape sequences included) shown as `�`.
public final class MessageScreen: Sendable {
    public let size: Terminal.Size
    public let output: ScreenOutput
    public let store: MessageStore

    /// A screen of `size` (at least 2 rows) on `output`: `rows - 1` message rows.
    public init(size: Terminal.Size, output: ScreenOutput = ScreenOutput()) {
        self.size = size
        self.output = output
        let columns = size.columns
        store = MessageStore(capacity: max(1, size.rows - 1)) { messages in
            var text = ANSI.saveCursor
            for (i, message) in messages.enumerated() {
                text += ANSI.moveTo(row: i + 1) + ANSI.eraseLine + Self.printable(message, width: columns)
            }
            output.write(text + ANSI.restoreCursor)
        }
    }

    /// Clears the screen and puts the cursor at the start of the bottom row.
    public func open() { output.write(ANSI.clearScreen + ANSI.moveTo(row: size.rows)) }

    /// Echo of the line editor, on the bottom row.
    public func echo(_ text: String) { output.write(text) }

    /// Adds a message above the input line.
    public func post(_ message: String) async { await store.append(message) }

    /// Leaves the cursor below everything, on a fresh line.
    public func close() { output.write(ANSI.moveTo(row: size.rows) + "\r\n") }

    /// `message` on one row: control characters as `�`, cut to `width`.
    static func printable(_ message: String, width: Int) -> String {
        String(message.map { c in c.unicodeScalars.contains { $0.value < 32 || $0.value == 127 } ? "\u{FFFD}" : c }.prefix(width))
    }
}
