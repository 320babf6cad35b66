/// Listing 7.14's window as a pure state machine: two fields (URL, request
/// count), a Submit/Cancel button, a progress bar and a status line.
///
/// Keys: Tab moves the focus (URL → count → button), also while a test
/// runs; typing edits the focused field (frozen while a test runs); Enter submits (from any field) and, while a test runs,
/// Enter or `c` cancels it; Esc quits, and so does `q` unless a text field
/// has the focus. `handle(key:)` returns the effect the app must carry out;
/// the state never touches the network or the terminal itself, so the whole
/// behaviour is testable without either.
public struct LoadTesterScreen: Sendable, Equatable {
    public enum Focus: Sendable, Equatable { case url, count, button }

    /// What the app must do after a key.
    public enum Effect: Sendable, Equatable {
        case start(url: String, count: Int)
        case cancel
        case quit
    }

    public var url: String
    public var count: String
    public var focus: Focus = .url
    public private(set) var running = false
    /// The bar's position, 0…100.
    public private(set) var percent = 0
    /// A one-line message under the bar: an input error, "Cancelled", the summary.
    public var status = ""

    public init(url: String = "", count: String = "") {
        self.url = url
        self.count = count
    }

    /// The button's label: "Cancel" while a test runs, else "Submit".
    public var buttonLabel: String { running ? "Cancel" : "Submit" }

    /// Applies one key; returns the effect to carry out, if any.
    public mutating func handle(key: Key) -> Effect? {
        if running {
            switch key {
            case .enter, .character("c"):
                running = false
                status = "Cancelling…"
                return .cancel
            case .escape, .character("q"): return .quit
            case .tab:
                focus = focus == .url ? .count : focus == .count ? .button : .url
                return nil
            default: return nil  // the fields are frozen while a test runs
            }
        }
        switch key {
        case .tab:
            focus = focus == .url ? .count : focus == .count ? .button : .url
            return nil
        case .escape:
            return .quit
        case .enter:
            return submit()
        case .backspace:
            if focus == .url, !url.isEmpty { url.removeLast() }
            if focus == .count, !count.isEmpty { count.removeLast() }
            return nil
        case .character(let c):
            switch focus {
            case .url: url.append(c)
            case .count: count.append(c)
            case .button: return c == "q" ? .quit : c == " " ? submit() : nil
            }
            return nil
        case .other:
            return nil
        }
    }

    /// Validates the fields; a bad count or URL is an inline error, not a
    /// crash (the listing raises inside the click callback after the label
    /// already says Cancel).
    private mutating func submit() -> Effect? {
        let target = url.trimmingSpaces
        guard target.hasPrefix("http://") || target.hasPrefix("https://") else {
            status = "Enter a URL starting with http:// or https://"
            return nil
        }
        guard let n = Int(count.trimmingSpaces), n >= 1 else {
            status = "The number of requests must be a whole number of at least 1, not \"\(count)\""
            return nil
        }
        running = true
        percent = 0
        status = "Running \(n) requests…"
        return .start(url: target, count: n)
    }

    /// Applies one progress report. At the end the bar shows 100 % and the
    /// button says Submit again (the listing resets the button at 100 without
    /// ever drawing 100 %).
    public mutating func handle(completed: Int, total: Int) {
        guard running, total > 0 else { return }
        percent = min(100, completed * 100 / total)
        if completed >= total {
            running = false
            percent = 100
        }
    }

    /// The run ended (finished or cancelled): `message` goes on the status line.
    public mutating func finished(cancelled: Bool, message: String) {
        running = false
        if !cancelled { percent = 100 }
        status = cancelled ? "Cancelled: " + message : message
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

/// Draws a ``LoadTesterScreen`` as terminal text (only ``ANSI`` sequences).
public enum LoadTesterRenderer {
    /// The smallest terminal the screen fits in.
    public static let minimumSize = Terminal.Size(rows: 8, columns: 40)

    /// A progress bar `cells` wide: `[#####-----]`.
    public static func bar(percent: Int, cells: Int) -> String {
        let filled = max(0, min(cells, percent * cells / 100))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: cells - filled) + "]"
    }

    /// The screen's lines, each at most `columns` characters.
    public static func lines(_ state: LoadTesterScreen, columns: Int) -> [String] {
        func field(_ label: String, _ value: String, focused: Bool) -> String {
            let room = max(0, columns - label.count - 4)
            let shown = value.count > room ? String(value.suffix(room)) : value
            return (focused ? "> " : "  ") + label + shown + (focused ? "_" : "")
        }
        let barCells = max(10, min(50, columns - 8))
        let lines = [
            "Load tester (Tab: next field, Enter: submit/cancel, Esc: quit)",
            field("URL:      ", state.url, focused: state.focus == .url),
            field("Requests: ", state.count, focused: state.focus == .count),
            (state.focus == .button ? "> " : "  ") + "[ \(state.buttonLabel) ]",
            bar(percent: state.percent, cells: barCells) + " " + String(state.percent) + "%",
            state.status,
        ]
        return lines.map { $0.count > columns ? String($0.prefix(columns)) : $0 }
    }

    /// The whole screen: clear, then each line at its row.
    public static func render(_ state: LoadTesterScreen, size: Terminal.Size) -> String {
        var text = ANSI.clearScreen
        for (i, line) in lines(state, columns: size.columns).enumerated() {
            text += ANSI.moveTo(row: i + 1) + line
        }
        return text
    }
}
