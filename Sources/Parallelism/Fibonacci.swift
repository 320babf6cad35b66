import CurriculumCore
/// The book's deliberately naive recursive Fibonacci (listing 1.5), with the
/// book's indexing: `fib(1) == 0`, `fib(2) == 1`, `fib(40) == 63_245_986`.
///
/// Exponential time on purpose: it is the stand-in for "pure CPU work".
/// Runs synchronously on the calling thread and never suspends, so on the
/// cooperative pool it holds its thread until done; it cannot be cancelled.
///
/// - Precondition: `n >= 1`.
public func fib(_ n: Int) -> Int {
    precondition(n >= 1, "fib is defined for n >= 1")
    if n == 1 { return 0 }
    if n == 2 { return 1 }
    return fib(n - 1) + fib(n - 2)
}

/// The same sequence computed iteratively in O(n): the reference that checks
/// ``fib(_:)`` without paying for it (`fibIterative(41) == 102_334_155`).
///
/// - Precondition: `n >= 1` (and `n <= 93`, beyond which `Int` overflows).
public func fibIterative(_ n: Int) -> Int {
    precondition(n >= 1, "fib is defined for n >= 1")
    var (a, b) = (0, 1)
    for _ in 1..<n { (a, b) = (b, a + b) }
    return a
}

/// A naive-Fibonacci argument sized for this build on this machine.
///
/// Compiled Swift runs `fib(40)` one to two orders of magnitude faster than
/// CPython, and a debug build several times slower than a release build, so
/// tests never hard-code the book's 40 and 41: they calibrate the argument
/// until one naive run costs at least a chosen amount of CPU.
public struct FibWorkload: Sendable, Equatable, CustomStringConvertible {
    /// The argument passed to ``fib(_:)``.
    public var n: Int
    /// `fib(n)`, from ``fibIterative(_:)``.
    public var expected: Int
    /// The thread CPU time one naive `fib(n)` took while calibrating.
    public var cost: Duration

    /// Finds the smallest `n >= start` whose naive `fib(n)` uses at least
    /// `minimum` of the calling thread's CPU time.
    ///
    /// Measured with the thread's CPU clock, so a busy machine does not skew
    /// it. Runs synchronously on the calling thread (the steps cost about
    /// 2.6 × the final run in total); each step of `n` costs about 1.6 × more.
    ///
    /// - Parameters:
    ///   - minimum: the CPU one run must at least take (50 ms in the tests).
    ///   - start: the first argument tried.
    ///   - limit: the largest argument tried, whatever its cost.
    public static func calibrated(minimum: Duration = .milliseconds(50), start: Int = 28, limit: Int = 50) -> FibWorkload {
        var n = start
        while true {
            let before = CPUTime.thread()
            _ = fib(n)
            let cost = CPUTime.thread() - before
            if cost >= minimum || n >= limit {
                // `expected` comes from the reference, not from the run being
                // timed, so a broken `fib` cannot vouch for itself.
                return FibWorkload(n: n, expected: fibIterative(n), cost: cost)
            }
            n += 1
        }
    }

    /// Creates a workload for a known argument (for instance the book's 40),
    /// with its cost unknown (zero).
    public init(n: Int) {
        self.init(n: n, expected: fibIterative(n), cost: .zero)
    }

    init(n: Int, expected: Int, cost: Duration) {
        self.n = n
        self.expected = expected
        self.cost = cost
    }

    /// Runs the naive `fib(n)` on the calling thread and returns its value.
    public func run() -> Int { fib(n) }

    public var description: String { "fib(\(n)) = \(expected) (≈ \(cost) CPU)" }
}
