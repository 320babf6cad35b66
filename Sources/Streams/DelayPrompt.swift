import CurriculumCore

/// The delay "app" of listings 8.6 and 8.10: each line names a number of
/// (book) seconds, and a task sleeps that long between two messages, while
/// the next line is read. Lines are read without blocking anything, so the
/// sleeps overlap and finish in their own order.
///
/// Unlike the listings, a line that is not a number gets a message and the
/// prompt goes on (8.6 crashes on it, and on end of input), and at end of
/// input the running delays are awaited (their task group outlives the
/// reading loop) instead of being cancelled by `asyncio.run`'s exit.
public enum DelayPrompt {
    /// The delay app's first message (the listing shows an empty screen).
    public static let hint = "Type a number of seconds and Enter; Ctrl-C quits."
    /// The message before a delay of `seconds` sleeps (book: "Starting delay N").
    public static func started(_ seconds: String) -> String { "Start sleeping for \(seconds) sec." }
    /// The message after it (book: "Finished delay N").
    public static func ended(_ seconds: String) -> String { "End sleeping for \(seconds) sec." }
    /// The message for a line that is not a delay.
    public static func rejected(_ line: String) -> String {
        "Not a number of seconds: '\(line)' (type a number from 0 to 86400)"
    }

    /// The book second the delay programs run with: one second, or
    /// `--unit-ms MS` (their only argument; the tests shorten time with it).
    /// Nil when the arguments are anything else.
    public static func unit(fromArguments arguments: [String]) -> Duration? {
        if arguments.isEmpty { return .seconds(1) }
        guard arguments.count == 2, arguments[0] == "--unit-ms", let ms = Int(arguments[1]), ms > 0 else { return nil }
        return .milliseconds(ms)
    }

    /// The delay a line asks for, or nil: a number of seconds from 0 to 86,400.
    public static func seconds(in line: String) -> Double? {
        guard let n = Double(line.trimmingWhitespace()), n.isFinite, (0...86_400).contains(n) else { return nil }
        return n
    }

    /// Reads `lines` and runs a delay for each, posting its messages through
    /// `post`; returns after end of input once every delay has finished.
    /// Cancellation ends the reading and cancels the delays.
    public static func run<Lines: AsyncSequence>(
        lines: Lines, post: @escaping @Sendable (String) async -> Void,
        isolation: isolated (any Actor)? = #isolation
    ) async throws where Lines.Element == String {
        try await withThrowingDiscardingTaskGroup { group in
            for try await line in lines {
                let text = line.trimmingWhitespace()
                if text.isEmpty { continue }
                guard let n = seconds(in: text) else {
                    await post(rejected(text))
                    continue
                }
                // "Start" is posted here, in reading order: asyncio runs the listing's tasks in creation
                // order on its one loop, so its starts appear as typed; two child tasks posting their own
                // starts would race (seen under the full suite: "1" before "3").
                await post(started(text))
                group.addTask {
                    try await Task.sleep(for: Book.second * n)
                    await post(ended(text))
                }
            }
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs, CR and LF.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
