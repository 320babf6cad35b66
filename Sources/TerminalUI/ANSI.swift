/// The escape sequences the curriculum's terminal apps emit (listing 8.7 and
/// a few more), and nothing else: the test harness's `VirtualTerminal`
/// interprets exactly these.
public enum ANSI {
    public static let escape = "\u{1B}"
    /// Clear the screen and home the cursor: `ESC[H ESC[2J`.
    public static let clearScreen = "\u{1B}[H\u{1B}[2J"
    /// The cursor to the top-left corner: `ESC[H`.
    public static let home = "\u{1B}[H"
    /// Erase the whole current line, the cursor staying where it is: `ESC[2K`.
    public static let eraseLine = "\u{1B}[2K"
    /// Erase the whole line and go to its first column: `ESC[2K ESC[0G`.
    public static let clearLine = "\u{1B}[2K\u{1B}[0G"
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
    /// The cursor `n` columns left: `ESC[{n}D` (8.7's `move_back_one_char` is `cursorBack(1)`).
    public static func cursorBack(_ n: Int = 1) -> String { "\u{1B}[\(n)D" }
    /// To the start of the line `n` rows down, stopping at the bottom row: `ESC[{n}E`.
    public static func cursorNextLine(_ n: Int = 1) -> String { "\u{1B}[\(n)E" }
    /// To column `n` of the current row: `ESC[{n}G`.
    public static func column(_ n: Int) -> String { "\u{1B}[\(n)G" }
}
