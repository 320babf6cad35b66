import CurriculumCore
import Glibc
import Processes
import TerminalUI
import Threads

/// A terminal app under test: a pseudo-terminal pair (`openpty`, with a
/// chosen window size), the app spawned with the slave side as its stdin,
/// stdout and stderr, keystrokes written to the master, and everything the
/// app draws fed into a ``VirtualTerminal``.
///
/// The child has no controlling terminal (posix_spawn with inherited
/// descriptors gives it none), so a typed Ctrl-C sends no signal: use
/// ``send(_:)`` to signal it. The slave's `termios` settings can be read
/// before and after (``slaveSettings()``): an app must restore them.
public final class PseudoTerminal: Sendable {
    public let process: ChildProcess
    public let master: Int32
    public let slave: Int32
    /// The slave side's settings before the app started (see ``slaveSettings()``).
    public let initialSettings: [UInt8]
    private let screen: Locked<VirtualTerminal>
    /// Screen snapshots (its text rows), updated after every read.
    private let rows: Watched<[String]>
    private let stopped = Locked(false)
    private let reader: JoinHandle<Void>

    /// Starts `executable` on a new pseudo-terminal of `rows` × `columns`.
    public init(_ executable: String, arguments: [String] = [], rows: Int = 24, columns: Int = 80,
                environment: [String: String]? = nil) throws {
        let (master, slave) = try Self.openPair(rows: rows, columns: columns)
        initialSettings = Self.settings(of: slave)
        var env = environment ?? ChildProcess.environmentWithoutBacktracer()
        env["TERM"] = "xterm"
        env["COLUMNS"] = nil
        env["LINES"] = nil
        do {
            process = try ChildProcess.spawn(
                executable, arguments: arguments, environment: env,
                standardInput: .descriptor(slave), standardOutput: .descriptor(slave), standardError: .descriptor(slave))
        } catch {
            close(master)
            close(slave)
            throw error
        }
        self.master = master
        self.slave = slave
        let screen = Locked(VirtualTerminal(rows: rows, columns: columns))
        let snapshots = Watched<[String]>(screen.withLock { $0.text })
        self.screen = screen
        self.rows = snapshots
        let stopped = self.stopped
        let masterFD = master
        reader = spawnThread(name: "pty-reader", stackSize: 256 << 10) {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !stopped.withLock({ $0 }) {
                var descriptor = pollfd(fd: masterFD, events: Int16(POLLIN), revents: 0)
                guard poll(&descriptor, 1, 20) > 0 else { continue }
                let n = read(masterFD, &buffer, buffer.count)
                guard n > 0 else {
                    if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                    return
                }
                let bytes = Array(buffer[..<n])
                let text = screen.withLock { s in
                    s.feed(bytes)
                    return s.text
                }
                snapshots.update { $0 = text }
            }
        }
    }

    deinit {
        stopped.withLock { $0 = true }
        process.kill()
        _ = try? reader.join()
        close(master)
        close(slave)
    }

    /// A bare pseudo-terminal pair of `rows` × `columns` (both ends
    /// close-on-exec), for tests of the terminal functions themselves; the
    /// caller closes both.
    public static func openPair(rows: Int = 24, columns: Int = 80) throws -> (master: Int32, slave: Int32) {
        var master: Int32 = -1
        var slave: Int32 = -1
        var size = winsize(ws_row: UInt16(rows), ws_col: UInt16(columns), ws_xpixel: 0, ws_ypixel: 0)
        guard openpty(&master, &slave, nil, nil, &size) == 0 else {
            throw PseudoTerminalError.openFailed(errno: errno)
        }
        _ = fcntl(master, F_SETFD, FD_CLOEXEC)
        _ = fcntl(slave, F_SETFD, FD_CLOEXEC)
        return (master, slave)
    }

    /// A descriptor's terminal settings (`tcgetattr`).
    public static func termiosSettings(of fd: Int32) -> termios {
        var settings = termios()
        _ = tcgetattr(fd, &settings)
        return settings
    }

    /// Types `text` (its UTF-8 bytes) into the terminal.
    public func type(_ text: String) { Terminal.write(text, to: master) }

    /// Sends `signal` to the app.
    public func send(_ signal: Int32) { process.send(signal) }

    /// The screen's rows as text (trailing spaces trimmed).
    public var text: [String] { rows.value }

    /// The escape sequences the screen model did not understand (a test fails on any).
    public var unknownSequences: [String] { screen.withLock { $0.unknown } }

    /// Suspends until some row satisfies `predicate` (bounded by the suite's wait limit).
    public func waitUntil(row predicate: @escaping @Sendable (String) -> Bool) async throws {
        try await waitUntil(screen: { $0.contains(where: predicate) })
    }

    /// Suspends until the rows satisfy `predicate`. The predicate runs under
    /// the screen's lock: it must use the rows it is given, never this object.
    public func waitUntil(screen predicate: @escaping @Sendable ([String]) -> Bool) async throws {
        do {
            try await rows.waitUntil(predicate)
        } catch {
            throw PseudoTerminalError.screenNeverMatched(reason: "\(error)", screen: text, exit: process.exitStatus.map { "\($0)" })
        }
    }

    /// Suspends until the screen contains `text` somewhere.
    public func waitUntil(screenContains text: String) async throws {
        try await waitUntil(row: { $0.contains(text) })
    }

    /// The slave side's terminal settings now (`tcgetattr`), as comparable bytes.
    public func slaveSettings() -> [UInt8] { Self.settings(of: slave) }

    private static func settings(of fd: Int32) -> [UInt8] {
        var settings = termios()
        _ = tcgetattr(fd, &settings)
        return withUnsafeBytes(of: &settings) { Array($0) }
    }

    /// Waits for the app to exit; returns its shell status.
    public func waitForExit() async throws -> Int32 {
        try await process.termination.shellStatus
    }
}

public enum PseudoTerminalError: Error, Sendable, CustomStringConvertible {
    case openFailed(errno: Int32)
    /// A wait for the screen failed; what the screen showed then.
    case screenNeverMatched(reason: String, screen: [String], exit: String?)

    public var description: String {
        switch self {
        case .openFailed(let code): "openpty failed (errno \(code))"
        case .screenNeverMatched(let reason, let screen, let exit):
            "the screen never matched (\(reason)); the app \(exit.map { "had exited: " + $0 } ?? "was running"); screen:\n"
                + screen.map { "|" + $0 }.joined(separator: "\n")
        }
    }
}

/// A small screen model that interprets exactly what the curriculum's
/// terminal apps emit: printable text (UTF-8) with wrap, CR, LF, BS,
/// `ESC 7`/`ESC 8`, and the CSI sequences `H`, `A`, `B`, `C`, `D`, `E`, `G`,
/// `2K`, `2J`, `3J`, `?25l`/`?25h`. Anything else is recorded in ``unknown``.
public struct VirtualTerminal: Sendable {
    public let rows: Int
    public let columns: Int
    public private(set) var cells: [[Character]]
    public private(set) var row = 0
    public private(set) var column = 0
    public private(set) var unknown: [String] = []
    private var saved = (0, 0)
    private var pending: [UInt8] = []

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        cells = Array(repeating: Array(repeating: " ", count: columns), count: rows)
    }

    /// The rows as text, trailing spaces trimmed.
    public var text: [String] {
        cells.map { line in
            var s = String(line)
            while s.last == " " { s.removeLast() }
            return s
        }
    }

    /// Interprets more output bytes (an incomplete sequence waits for the rest).
    public mutating func feed(_ bytes: [UInt8]) {
        pending += bytes
        var i = 0
        while i < pending.count {
            let byte = pending[i]
            switch byte {
            case 13: column = 0; i += 1
            case 10: lineFeed(); i += 1
            case 8: column = max(0, column - 1); i += 1
            case 7: i += 1  // bell
            case 27:
                guard let consumed = escape(at: i) else {
                    pending.removeFirst(i)
                    return
                }
                i += consumed
            default:
                let length = utf8SequenceLength(leading: byte)
                guard i + length <= pending.count else {
                    pending.removeFirst(i)
                    return
                }
                if byte >= 32 {
                    for c in String(decoding: pending[i..<(i + length)], as: UTF8.self) { put(c) }
                }
                i += length
            }
        }
        pending = []
    }

    private mutating func put(_ c: Character) {
        if column >= columns {
            column = 0
            lineFeed()
        }
        cells[row][column] = c
        column += 1
    }

    private mutating func lineFeed() {
        if row + 1 < rows {
            row += 1
        } else {
            cells.removeFirst()
            cells.append(Array(repeating: " ", count: columns))
        }
    }

    /// Handles the escape sequence at `i`; returns its length, or nil if incomplete.
    private mutating func escape(at i: Int) -> Int? {
        guard i + 1 < pending.count else { return nil }
        switch pending[i + 1] {
        case UInt8(ascii: "7"): saved = (row, column); return 2
        case UInt8(ascii: "8"): (row, column) = saved; return 2
        case UInt8(ascii: "["):
            var j = i + 2
            while j < pending.count, !(64...126).contains(pending[j]) { j += 1 }
            guard j < pending.count else { return nil }
            let parameters = String(decoding: pending[(i + 2)..<j], as: UTF8.self)
            csi(parameters, final: Character(UnicodeScalar(pending[j])))
            return j - i + 1
        default:
            unknown.append("ESC " + String(UnicodeScalar(pending[i + 1])))
            return 2
        }
    }

    private mutating func csi(_ parameters: String, final: Character) {
        let numbers = parameters.split(separator: ";", omittingEmptySubsequences: false).map { Int($0) }
        func n(_ index: Int, _ fallback: Int = 1) -> Int { index < numbers.count ? (numbers[index] ?? fallback) : fallback }
        switch (final, parameters) {
        case ("H", _):
            row = min(rows - 1, max(0, n(0) - 1))
            column = min(columns - 1, max(0, n(1) - 1))
        case ("A", _): row = max(0, row - n(0))
        case ("B", _): row = min(rows - 1, row + n(0))
        case ("C", _): column = min(columns - 1, column + n(0))
        case ("D", _): column = max(0, column - n(0))
        case ("E", _): row = min(rows - 1, row + n(0)); column = 0
        case ("G", _): column = min(columns - 1, max(0, n(0) - 1))
        case ("K", "2"): cells[row] = Array(repeating: " ", count: columns)
        case ("J", "2"), ("J", "3"):
            cells = Array(repeating: Array(repeating: " ", count: columns), count: rows)
        case ("l", "?25"), ("h", "?25"): break
        default: unknown.append("CSI \(parameters)\(final)")
        }
    }
}
