// hello-tui: listing 7.12's Tkinter "hello world" as a terminal app.
//
//   swift run hello-tui [--slow-ms MS]
//
// The main thread runs the key loop (Tk's mainloop): Enter or space "clicks"
// the [ Say Hello ] button, which adds a line "Hello!"; q or Esc quits.
// The hidden key s is a slow click: it blocks the loop for --slow-ms (3 s by
// default), and nothing typed meanwhile is drawn until it ends — the freeze
// that listings 7.13-7.15 avoid by moving work off the UI thread.
// Exit status: 0; 2 when stdin/stdout are not a terminal or it is too small.

#if canImport(Glibc)
import Glibc
#endif
import TerminalUI

let arguments = Array(CommandLine.arguments.dropFirst())
var slowMilliseconds = 3000
if arguments.first == "--help" || arguments.first == "-h" {
    print("usage: hello-tui [--slow-ms MS]   (Enter/space: say hello, s: a slow click, q/Esc: quit)")
    exit(0)
}
if arguments.count == 2, arguments[0] == "--slow-ms", let ms = Int(arguments[1]), ms >= 0 {
    slowMilliseconds = ms
} else if !arguments.isEmpty {
    complain("usage: hello-tui [--slow-ms MS]  (MS: a whole number of milliseconds, 0 or more)")
    exit(2)
}

/// A message for the user on stderr.
func complain(_ text: String) { Terminal.write("hello-tui: " + text + "\n", to: 2) }

guard Terminal.isTerminal(0), Terminal.isTerminal(1) else {
    complain("stdin and stdout must be a terminal (try it in a terminal or tmux)")
    exit(2)
}
let size = Terminal.size(of: 1)
guard size.columns >= 20, size.rows >= 4 else {
    complain(TerminalError.tooSmall(needed: .init(rows: 4, columns: 20), actual: size).description)
    exit(2)
}

/// The app itself: a local counter, the key loop and its drawing.
func runHello(size: Terminal.Size, slowMilliseconds: Int) throws {
    var greetings = 0
    func render() -> String {
        var text = ANSI.clearScreen + ANSI.moveTo(row: 1) + "[ Say Hello ]  (Enter: click, q: quit)"
        let room = size.rows - 2
        for i in 0..<min(greetings, room) { text += ANSI.moveTo(row: i + 2) + "Hello!" }
        return text
    }
    try TerminalApp().runFullScreen(
        lastRow: size.rows,
        handleKey: { key in
            switch key {
            case .enter, .character(" "): greetings += 1
            case .character("s"): usleep(useconds_t(slowMilliseconds) * 1000)  // the slow callback, on the UI thread
            case .character("q"), .escape: return .quit
            default: break
            }
            return .keepGoing
        },
        onTick: { .keepGoing },
        render: render
    )
}

do {
    try runHello(size: size, slowMilliseconds: slowMilliseconds)
} catch {
    complain("\(error)")
    exit(2)
}
