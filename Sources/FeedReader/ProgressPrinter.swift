import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CurriculumCore

/// Prints one line per completion in both phases — `[3/6] <url> — 12
/// entries`, `[5/14] 404 <url>` — the seed's `print(f"done {len(done)}
/// pending {len(pending)}")` made readable.
///
/// On a terminal (`isatty`) it also keeps a live status line at the bottom
/// (`feeds 3/16 done, 13 pending`), redrawn in place; when the output is a
/// pipe or a file it prints plain lines only, so logs stay clean.
///
/// `Sendable`: the lines go through a `Locked`, so completions reported from
/// several tasks never interleave mid-line.
public final class ProgressPrinter: Sendable {
    private let write: @Sendable (String) -> Void
    private let live: Bool
    private let status = Locked<String?>(nil)

    /// A printer that hands every piece of text to `write`.
    /// - Parameter live: redraw a status line with `\r` and ANSI erase.
    public init(live: Bool = false, write: @escaping @Sendable (String) -> Void) {
        self.live = live
        self.write = write
    }

    /// A printer on standard output (or standard error), live when that
    /// stream is a terminal.
    public static func standard(toStandardError: Bool = false) -> ProgressPrinter {
        let fd: Int32 = toStandardError ? 2 : 1
        let handle = toStandardError ? FileHandle.standardError : FileHandle.standardOutput
        return ProgressPrinter(live: isatty(fd) == 1) { text in handle.write(Data(text.utf8)) }
    }

    /// Reports one finished feed.
    public func feedDone(_ o: FeedFetchOutcome) {
        let total = o.done + o.pending
        let what: String = switch o.result {
        case .success(let feed): "\(entryCount(feed.entries.count)) (\(feed.format.rawValue))"
        case .failure(let error): "failed: \(error)"
        }
        line("[\(o.done)/\(total)] \(o.url) — \(what)", status: o.pending > 0 ? "feeds: \(o.done)/\(total) done, \(o.pending) pending" : nil)
    }

    /// Reports one checked link.
    public func linkDone(_ o: LinkOutcome) {
        let total = o.done + o.pending
        line("[\(o.done)/\(total)] \(o.status) \(o.url)", status: o.pending > 0 ? "links: \(o.done)/\(total) checked, \(o.pending) pending" : nil)
    }

    /// Prints a heading such as `Fetching 16 feeds (at most 8 at a time)`.
    public func phase(_ text: String) {
        line(text, status: nil)
    }

    /// Erases the live status line, if any.
    public func finish() {
        status.withLock { s in
            if live, s != nil { write("\r\u{1B}[2K") }
            s = nil
        }
    }

    private func line(_ text: String, status newStatus: String?) {
        status.withLock { s in
            if live {
                var out = s != nil ? "\r\u{1B}[2K" : ""
                out += text + "\n"
                if let newStatus { out += newStatus }
                write(out)
                s = newStatus
            } else {
                write(text + "\n")
            }
        }
    }
}
