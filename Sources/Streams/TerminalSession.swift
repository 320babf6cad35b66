#if canImport(Glibc)
import Glibc
#endif
import AsyncPrimitives
import TerminalUI

/// The life of an async full-screen app (listings 8.10, 8.11, 8.14): stdin
/// and stdout must be a terminal of at least `minimumSize`; the terminal
/// goes into cbreak mode, the ``TerminalUI/MessageScreen`` is drawn, and
/// `body` gets the screen and stdin (``StdinReader``, so reads are cancellable).
///
/// SIGINT, SIGTERM and SIGHUP cancel `body` (structured: everything it
/// started is cancelled with it); the stdin reader's flags and the terminal
/// settings are then restored, the cursor left below the screen, and the
/// app exits 0 — as it does when `body` returns. The listings never restore
/// the terminal.
public enum TerminalSession {
    /// Runs the app; returns its exit status (0; 1 when `body` failed, with
    /// the error on stderr; 2 when there is no terminal or it is too small).
    public static func run(
        name: String,
        minimumSize: Terminal.Size = .init(rows: 4, columns: 20),
        _ body: @escaping @Sendable (MessageScreen, StdinReader.Input) async throws -> Void
    ) async -> Int32 {
        func complain(_ text: String) { Terminal.write("\(name): \(text)\n", to: 2) }
        guard Terminal.isTerminal(0), Terminal.isTerminal(1) else {
            complain("stdin and stdout must be a terminal (try it in a terminal or tmux)")
            return 2
        }
        let size = Terminal.size(of: 1)
        guard size.rows >= minimumSize.rows, size.columns >= minimumSize.columns else {
            complain(TerminalError.tooSmall(needed: minimumSize, actual: size).description)
            return 2
        }
        do {
            try await withSignalCancellation([.sigint, .sigterm, .sighup]) {
                try await Terminal.withCbreakMode(0) {
                    let screen = MessageScreen(size: size)
                    screen.open()
                    defer { screen.close() }
                    try await StdinReader.withReader(fd: 0) { input in try await body(screen, input) }
                }
            }
            return 0
        } catch is CancellationError {
            return 0
        } catch {
            complain("\(error)")
            return 1
        }
    }
}

extension StdinReader.Input {
    /// Listing 8.8's loop: the lines typed, read a byte at a time through a
    /// ``TerminalUI/LineEditor`` that echoes on `screen`; ends at end of input.
    public func editedLines(echoingOn screen: MessageScreen) -> EditedLines<AsyncBytes<Self>> {
        LineEditor.lines(of: bytes, echo: screen.echo)
    }
}
