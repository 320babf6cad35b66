import AsyncPrimitives

/// The async generator of listing 5.14 as an `AsyncSequence`: yields 1, 2, …,
/// `until`, sleeping `delay(i)` book seconds before yielding `i`.
///
/// Pull-based and lazy like a Python async generator: creating it does
/// nothing; each `next()` does one step's work (recording `start(i)`/`end(i)`
/// through `delay`). Cancelling the consumer while `next()` sleeps throws
/// `CancellationError`. Swift has no `yield` in async functions: the
/// generator's state lives in the iterator value.
public struct PositiveIntegers: AsyncSequence, Sendable {
    public typealias Element = Int

    /// The last value yielded.
    public let until: Int

    /// `positive_integers_async(until)`.
    public init(until: Int) { self.until = until }

    /// A fresh generator run, starting at 1.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(until: until) }

    /// The generator's state: the next value to yield.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let until: Int
        var nextValue = 1

        /// Sleeps `delay(i)` then returns `i`; nil after `until`.
        public mutating func next() async throws -> Int? {
            guard nextValue <= until else { return nil }
            let value = nextValue
            nextValue += 1
            try await delay(value)
            return value
        }
    }
}

/// `positive_integers_async(until)`: see ``PositiveIntegers``.
public func positiveIntegers(until: Int) -> PositiveIntegers { PositiveIntegers(until: until) }
