#if canImport(Glibc)
import Glibc
#endif
import CurriculumCore

/// The terminal a program runs in: its size, and cbreak mode restored on
/// every exit path (listing 8.8's `tty.setcbreak`, which the listings never undo).
public enum Terminal {
    /// A terminal's size in character cells.
    public struct Size: Sendable, Equatable {
        public var rows: Int
        public var columns: Int
        public init(rows: Int, columns: Int) {
            self.rows = rows
            self.columns = columns
        }
    }

    /// Whether `fd` is a terminal (`isatty`).
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// The size with Python's precedence (`shutil.get_terminal_size`):
    /// `COLUMNS`/`LINES` from the environment, then the terminal on `fd`
    /// (`TIOCGWINSZ`), then 80 × 24.
    public static func size(of fd: Int32 = 1, environment: [String: String] = currentEnvironment()) -> Size {
        var window = winsize()
        let fromTerminal = ioctl(fd, UInt(TIOCGWINSZ), &window) == 0 && window.ws_col > 0 && window.ws_row > 0
        let columns = environment["COLUMNS"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
            ?? (fromTerminal ? Int(window.ws_col) : 80)
        let rows = environment["LINES"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
            ?? (fromTerminal ? Int(window.ws_row) : 24)
        return Size(rows: rows, columns: columns)
    }

    /// `COLUMNS` and `LINES` of this process's environment.
    public static func currentEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        for key in ["COLUMNS", "LINES"] {
            if let value = getenv(key) { environment[key] = String(cString: value) }
        }
        return environment
    }

    /// Runs `body` with `fd` in cbreak mode — no echo, no line buffering
    /// (`ECHO` and `ICANON` cleared, `VMIN` 1, `VTIME` 0), while `ISIG`
    /// (Ctrl-C still signals) and `ICRNL` stay — and restores the saved
    /// settings afterwards: when `body` returns or throws, and when SIGINT,
    /// SIGTERM or SIGHUP arrives (a handler restores them, then the signal's
    /// default action ends the process with its usual status).
    /// - Throws: ``TerminalError/notATerminal`` if `fd` is not a terminal.
    public static func withCbreakMode<T>(_ fd: Int32 = 0, _ body: () throws -> T) throws -> T {
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { throw TerminalError.notATerminal(fd: fd) }
        var raw = cbreak(saved)
        RestoreOnSignal.install(fd: fd, settings: saved)
        defer {
            var settings = saved
            _ = tcsetattr(fd, TCSAFLUSH, &settings)
            RestoreOnSignal.uninstall()
        }
        guard tcsetattr(fd, TCSAFLUSH, &raw) == 0 else { throw TerminalError.notATerminal(fd: fd) }
        return try body()
    }

    /// ``withCbreakMode(_:_:)-(_,()->T)`` for an async app, without the
    /// signal handlers: such an app traps SIGINT and SIGTERM itself and
    /// cancels its work (``AsyncPrimitives/withSignalCancellation(_:onSignal:body:)``), so the settings come
    /// back as `body` unwinds and the app exits with its own status. Its
    /// reads must therefore be cancellable (``Streams/StdinReader``, not a blocking `read`).
    public static func withCbreakMode<T>(
        _ fd: Int32 = 0, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async throws -> T {
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { throw TerminalError.notATerminal(fd: fd) }
        var raw = cbreak(saved)
        guard tcsetattr(fd, TCSAFLUSH, &raw) == 0 else { throw TerminalError.notATerminal(fd: fd) }
        defer { _ = tcsetattr(fd, TCSAFLUSH, &saved) }
        return try await body()
    }

    /// `settings` with `ECHO` and `ICANON` cleared, `ISIG` kept, `VMIN` 1, `VTIME` 0.
    static func cbreak(_ settings: termios) -> termios {
        var raw = settings
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON)
        raw.c_lflag |= tcflag_t(ISIG)
        raw.c_cc.6 = 1  // VMIN
        raw.c_cc.5 = 0  // VTIME
        return raw
    }

    /// Writes `text` to `fd` in full (the apps draw with this: no stdio buffering).
    /// - Precondition: while a ``TerminalApp`` runs, only its thread draws on
    ///   its output (listing 7.14's rule: workers post to a queue, the UI
    ///   thread draws); a worker drawing there stops the program with a clear message.
    public static func write(_ text: String, to fd: Int32 = 1) {
        if let owner = UIThread.owner.withLock({ $0 }), owner.fd == fd {
            precondition(pthread_equal(owner.thread, pthread_self()) != 0,
                         "only the UI thread draws: a worker wrote to the terminal while a TerminalApp was running")
        }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                // Non-blocking: an async stdin reader on the same terminal
                // shares the open file description, O_NONBLOCK included.
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&descriptor, 1, 1000)
                continue
            }
            guard n > 0 else { return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Listing 8.7's `move_to_bottom_of_screen`: the row count, after moving
    /// the cursor to the first column of the last row with the relative
    /// `ESC[{rows-1}E` (terminals stop it at the bottom margin, wherever it started).
    @discardableResult
    public static func moveToBottom(of fd: Int32 = 1, environment: [String: String] = currentEnvironment()) -> Int {
        let rows = size(of: fd, environment: environment).rows
        write(ANSI.cursorNextLine(rows - 1), to: fd)
        return rows
    }
}

/// A terminal operation that cannot be done.
public enum TerminalError: Error, Sendable, Equatable, CustomStringConvertible {
    case notATerminal(fd: Int32)
    case tooSmall(needed: Terminal.Size, actual: Terminal.Size)

    public var description: String {
        switch self {
        case .notATerminal(let fd): "descriptor \(fd) is not a terminal"
        case .tooSmall(let needed, let actual):
            "the terminal is \(actual.columns)×\(actual.rows); this program needs at least \(needed.columns)×\(needed.rows)"
        }
    }
}

/// The signal handlers that put the terminal back before the process dies.
/// Only async-signal-safe calls inside: `tcsetattr`, `write`, `signal`, `raise`.
private enum RestoreOnSignal {
    nonisolated(unsafe) static var fd: Int32 = -1
    nonisolated(unsafe) static var settings = termios()
    static let signals = [SIGINT, SIGTERM, SIGHUP]

    static func install(fd: Int32, settings: termios) {
        Self.settings = settings
        Self.fd = fd
        for signal in signals {
            _ = Glibc.signal(signal) { number in
                if RestoreOnSignal.fd >= 0 {
                    _ = tcsetattr(RestoreOnSignal.fd, TCSAFLUSH, &RestoreOnSignal.settings)
                    let show = "\u{1B}[?25h\r\n"
                    _ = show.withCString { Glibc.write(1, $0, strlen($0)) }
                }
                _ = Glibc.signal(number, SIG_DFL)
                _ = raise(number)
            }
        }
    }

    static func uninstall() {
        for signal in signals { _ = Glibc.signal(signal, SIG_DFL) }
        fd = -1
    }
}

/// The thread that runs a ``TerminalApp`` and the descriptor it draws on.
enum UIThread {
    struct Owner: @unchecked Sendable {  // pthread_t is a plain integer on Linux
        var thread: pthread_t
        var fd: Int32
    }
    static let owner = Locked<Owner?>(nil)
}
