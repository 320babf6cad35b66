import Testing
import CurriculumCore

/// The trait every chapter suite carries: `@Suite("Chapter 2 · …", .curriculum)`.
///
/// For each test it:
/// - binds `Book.second` (50 ms, or the value of a `.bookSecond(_:)` trait on
///   the test) so the book's seconds become milliseconds;
/// - bounds every wait for an event (``CurriculumCore/WaitLimit``, 15 s), so
///   broken code fails a test in seconds instead of hanging it;
/// - runs tests tagged `.timing` **alone**: a timing test waits until every
///   running test has finished and no other test starts until it ends. Other
///   tests run in parallel with each other. `.serialized` only orders tests
///   within one suite, so this gate spans the whole test process.
///
/// Swift Testing counts a test's scoping traits against its `.timeLimit`, so
/// the time a test waits at this gate counts too: the suites use
/// `.timeLimit(.minutes(3))`, well above the whole run's length, as a guard
/// against hangs rather than a speed check.
public struct CurriculumTrait: SuiteTrait, TestTrait, TestScoping {
    /// The default book second in tests.
    public static let defaultBookSecond: Duration = .milliseconds(50)

    /// How long any one wait for an event (`EventLog.waitFor`, the stub's
    /// `waitUntil`, a child's `termination`) may take in a test before it
    /// fails with `WaitLimitExceeded`: far above any wait of correct code
    /// (the whole suite runs in under a minute), far below the time limit.
    public static let waitLimit: Duration = .seconds(15)

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite's own scope: nothing to do; each test gets its own below.
        guard testCase != nil else {
            try await function()
            return
        }
        let exclusive = test.tags.contains(.timing)
        let second = test.traits.lazy.compactMap { $0 as? BookSecondTrait }.first?.second
            ?? Self.defaultBookSecond
        await TestGate.shared.acquire(exclusive: exclusive)
        do {
            try await Book.$second.withValue(second) {
                try await WaitLimit.$current.withValue(Self.waitLimit) { try await function() }
            }
        } catch {
            await TestGate.shared.release(exclusive: exclusive)
            throw error
        }
        await TestGate.shared.release(exclusive: exclusive)
    }
}

extension Trait where Self == CurriculumTrait {
    /// Book time and `.timing` isolation for every test of a suite.
    public static var curriculum: Self { CurriculumTrait() }
}

/// One book second in the running test (`Book.second`, bound by the
/// `.curriculum` trait): the book's "3 seconds" is `3 * u` in a test.
public var u: Duration { Book.second }

/// Sets the book second for one test (the suite's `.curriculum` trait reads it).
public struct BookSecondTrait: TestTrait {
    public var second: Duration
}

extension Trait where Self == BookSecondTrait {
    /// One book second lasts `second` in this test (default 50 ms): use
    /// 100 ms for the few tests whose bounds are tight.
    public static func bookSecond(_ second: Duration) -> Self { BookSecondTrait(second: second) }
}

/// A fair readers–writer gate over the whole test process: ordinary tests
/// share it, `.timing` tests hold it alone. FIFO, so a waiting timing test
/// is not starved by a stream of ordinary ones.
actor TestGate {
    static let shared = TestGate()

    private var readers = 0
    private var writer = false
    private var queue: [(exclusive: Bool, continuation: CheckedContinuation<Void, Never>)] = []

    func acquire(exclusive: Bool) async {
        if queue.isEmpty && canGrant(exclusive) {
            grant(exclusive)
            return
        }
        await withCheckedContinuation { queue.append((exclusive, $0)) }
    }

    func release(exclusive: Bool) {
        if exclusive { writer = false } else { readers -= 1 }
        while let next = queue.first, canGrant(next.exclusive) {
            queue.removeFirst()
            grant(next.exclusive)
            next.continuation.resume()
        }
    }

    private func canGrant(_ exclusive: Bool) -> Bool {
        exclusive ? (!writer && readers == 0) : !writer
    }

    private func grant(_ exclusive: Bool) {
        if exclusive { writer = true } else { readers += 1 }
    }
}
