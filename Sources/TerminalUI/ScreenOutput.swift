import CurriculumCore

/// One terminal's output for an app whose drawing comes from several
/// tasks (the message store's redraws, the line editor's echo): each
/// ``write(_:)`` goes out whole under a lock, so two redraws never
/// interleave their escape sequences — in asyncio the single thread
/// guarantees that; here several threads may draw.
public final class ScreenOutput: Sendable {
    public let fd: Int32
    private let lock = Locked(())

    public init(fd: Int32 = 1) { self.fd = fd }

    /// Writes `text` in full before any other write to this screen starts.
    public func write(_ text: String) {
        lock.withLock { _ in Terminal.write(text, to: fd) }
    }
}
