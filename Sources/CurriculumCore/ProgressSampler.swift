/// The reporter task of listing 6.14: reads a progress count every `period`
/// and reports "k of n" until it reaches `total`. Polling is the listing's
/// point (workers in other processes can only leave a number in shared
/// memory); code that sees completions itself should count them instead.
///
/// Every sample is kept (``samples``) and can be waited for
/// (``waitUntil(sampled:)``), so tests observe the reporter without sleeping.
public final class ProgressSampler: Sendable {
    /// The count that ends the reporting.
    public let total: Int
    private let watched = Watched<[Int]>([])

    /// A sampler that stops at `total`.
    public init(total: Int) { self.total = total }

    /// The samples taken so far, in order.
    public var samples: [Int] { watched.value }

    /// Samples `read()` every `period` (first at once) and passes each value
    /// to `report` with the total, until a value reaches the total or the
    /// task is cancelled.
    public func run(every period: Duration, read: @Sendable () -> Int, report: (@Sendable (Int, Int) -> Void)? = nil) async {
        while !Task.isCancelled {
            let k = read()
            watched.update { $0.append(k) }
            report?(k, total)
            if k >= total { return }
            try? await Task.sleep(for: period)
        }
    }

    /// Suspends until a sample equal to `k` has been taken.
    public func waitUntil(sampled k: Int) async throws {
        try await watched.waitUntil { $0.contains(k) }
    }
}
