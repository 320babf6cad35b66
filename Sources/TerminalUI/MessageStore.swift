import DequeModule

/// Listing 8.9's `MessageStore`: the newest `capacity` messages, and a
/// redraw after every append.
///
/// The callback gets a value snapshot, not the live queue (Python hands
/// over the deque itself, which a slow redraw may see change). It is
/// synchronous and runs on the actor, so redraws happen one at a time and
/// in append order: an `async` callback would reopen the actor to
/// reentrancy while it awaits, and an older snapshot could be drawn over a
/// newer one — a hazard asyncio's single thread hides only as long as the
/// redraw never awaits.
public actor MessageStore {
    public let capacity: Int
    private var messages: Deque<String> = []
    private let onChange: @Sendable ([String]) -> Void

    /// - Parameters:
    ///   - capacity: how many messages are kept (at least 1).
    ///   - onChange: called with the messages, oldest first, after each append.
    public init(capacity: Int, onChange: @escaping @Sendable ([String]) -> Void = { _ in }) {
        self.capacity = max(1, capacity)
        self.onChange = onChange
    }

    /// Appends `message`, dropping the oldest beyond the capacity, then redraws.
    public func append(_ message: String) {
        messages.append(message)
        if messages.count > capacity { messages.removeFirst(messages.count - capacity) }
        onChange(Array(messages))
    }

    /// The messages now, oldest first.
    public var contents: [String] { Array(messages) }
}
