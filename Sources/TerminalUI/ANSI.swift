/// The escape sequences the curriculum's terminal apps emit (listing 8.7 and
/// a few more), and nothing else: the test harness's `VirtualTerminal`
/// interprets exactly these.
public enum ANSI {
    public static let escape = "\u{1B}"
    /// Clear the screen and home the cursor: `ESC[H ESC[2J`.
    public static let clearScreen = "\u{1B}[H\u{1B}[2J"
    /// Erase the whole current line: `ESC[2K`.
    public static let clearLine = "\u{1B}[2K"
    /// Save / restore the cursor: `ESC 7` / `ESC 8`.
    public static let saveCursor = "\u{1B}7"
    public static let restoreCursor = "\u{1B}8"
    /// Hide / show the cursor: `ESC[?25l` / `ESC[?25h`.
    public static let hideCursor = "\u{1B}[?25l"
    public static let showCursor = "\u{1B}[?25h"

    /// The cursor to `row`, `column` (1-based): `ESC[{row};{column}H`.
    public static func moveTo(row: Int, column: Int = 1) -> String { "\u{1B}[\(row);\(column)H" }
    /// The cursor up / down `n` rows: `ESC[{n}A` / `ESC[{n}B`.
    public static func up(_ n: Int = 1) -> String { "\u{1B}[\(n)A" }
    public static func down(_ n: Int = 1) -> String { "\u{1B}[\(n)B" }
    /// To the start of the line `n` rows down: `ESC[{n}E`.
    public static func nextLine(_ n: Int = 1) -> String { "\u{1B}[\(n)E" }
    /// To column `n` of the current row: `ESC[{n}G`.
    public static func column(_ n: Int) -> String { "\u{1B}[\(n)G" }
}
