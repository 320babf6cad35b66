import BlockingHTTP
import CurriculumTesting
import LocalServices
import Parallelism
import Testing
import AsyncPrimitives
import CurriculumCore
import Threads

/// Chapter 2 · asyncio basics: coroutines, tasks, cancellation, timeouts,
/// futures, and what blocking does to an event loop.
///
/// `u` is one book second (`Book.second`, 50 ms unless a test says otherwise).
@Suite("Chapter 2 · asyncio basics", .curriculum, .timeLimit(.minutes(3)))
struct Chapter2 {
    let clock = ContinuousClock()

    // MARK: - Coroutines and await

    @Test("Listing 2.3 — Running a coroutine")
    func listing2_3() async {
        // Book: asyncio.run starts a loop, drives the coroutine, returns its value (2).
        // Swift: no loop to start and no coroutine objects — an async function runs when awaited.
        let log = EventLog()
        func addOne(_ n: Int) async -> Int {
            log.record("addOne(\(n))")
            return n + 1
        }
        log.record("before await")
        let result = await addOne(1)
        #expect(result == 2)
        #expect(log.names == ["before await", "addOne(1)"])
    }

    @Test("Listing 2.4 — Using await to wait for a coroutine's result")
    func listing2_4() async {
        // Book: each await pauses main until that result exists: 2, then 3, strictly in order.
        // Swift: the same; an await is a *possible* suspension point.
        let log = EventLog()
        func addOne(_ n: Int) async -> Int {
            log.record("begin(\(n))")
            await Task.yield()
            log.record("end(\(n))")
            return n + 1
        }
        let one = await addOne(1)
        let two = await addOne(2)
        #expect([one, two] == [2, 3])
        #expect(log.names == ["begin(1)", "end(1)", "begin(2)", "end(2)"])
    }

    @Test("Listing 2.5 — First use of sleep", .tags(.timing))
    func listing2_5() async throws {
        // Book: "Hello World!" after about a second; the sleep suspends instead of blocking.
        // Swift: Task.sleep throws on cancellation, so the function is async throws.
        func helloWorldMessage() async throws -> String {
            try await Task.sleep(for: Book.second)
            return "Hello World!"
        }
        let start = clock.now
        let message = try await helloWorldMessage()
        let elapsed = clock.now - start
        #expect(message == "Hello World!")
        #expect(elapsed >= u && elapsed < u * 5)
    }

    @Test("Listing 2.6 — Reusable delay coroutine", .tags(.timing))
    func listing2_6() async throws {
        // Book: delay(n) announces, sleeps n seconds without blocking, announces, returns n;
        // cancelled mid-sleep it raises CancelledError and never announces the end.
        // Swift: Task.sleep throws CancellationError; Swift cancellation is a flag seen at such awaits.
        let log = EventLog()
        let start = clock.now
        let n = try await EventLog.$current.withValue(log) { try await delay(2) }
        let elapsed = clock.now - start
        #expect(n == 2)
        #expect(log.names == ["start(2)", "end(2)"])
        #expect(elapsed >= u * 2 && elapsed < u * 12)

        let cancelled = EventLog()
        let cancelStart = clock.now
        let task = Task { try await EventLog.$current.withValue(cancelled) { try await delay(10) } }
        try await cancelled.waitFor("start(10)")
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(!cancelled.names.contains("end(10)"))
        #expect(clock.now - cancelStart < u * 5)
    }

    @Test("Listing 2.7 — Running two coroutines")
    func listing2_7() async throws {
        // Book: the instant add_one waits for the slow greeting: plain awaits are sequential.
        // Swift: the same — no concurrency without tasks.
        let log = EventLog()
        func helloWorldMessage() async throws -> String {
            try await delay(1)
            return "Hello World!"
        }
        func addOne(_ n: Int) async -> Int {
            log.record("addOne")
            return n + 1
        }
        let start = clock.now
        let (message, one) = try await EventLog.$current.withValue(log) {
            let message = try await helloWorldMessage()
            let one = await addOne(1)
            return (message, one)
        }
        #expect(message == "Hello World!" && one == 2)
        #expect(log.names == ["start(1)", "end(1)", "addOne"])
        #expect(clock.now - start >= u)
    }

    // MARK: - Tasks

    @Test("Listing 2.8 — Creating a task", .tags(.timing))
    func listing2_8() async throws {
        // Book: create_task schedules the coroutine; it starts only once main suspends, so
        // main's print comes before the delay's start message; awaiting it yields 3 after ~3 s.
        // Swift: Task {} starts eagerly on another thread — no ordering on the global executor.
        // On the asyncio-like LoopExecutor the Python order is exact.
        let start = clock.now
        let task = Task { try await delay(3) }
        #expect(type(of: task) == Task<Int, any Error>.self)
        let value = try await task.value
        let elapsed = clock.now - start
        #expect(value == 3)
        #expect(elapsed >= u * 3 && elapsed < u * 6)

        let log = EventLog()
        let loopValue = try await withLoopExecutor { loop in
            try await loop.run {
                try await EventLog.$current.withValue(log) {
                    let handle = Task(executorPreference: loop) { try await delay(3) }
                    log.record("created")
                    return try await handle.value
                }
            }
        }
        #expect(loopValue == 3)
        #expect(log.names == ["created", "start(3)", "end(3)"])
    }

    @Test("Listing 2.9 — Running several tasks concurrently", .tags(.timing))
    func listing2_9() async throws {
        // Book: three delay(3) tasks take ~3 s in total, not 9: the sleeps overlap.
        // Swift: async let children; if the parent throws they are cancelled automatically.
        let log = EventLog()
        let start = clock.now
        let results = try await EventLog.$current.withValue(log) {
            async let a = delay(3)
            async let b = delay(3)
            async let c = delay(3)
            return try await [a, b, c]
        }
        let elapsed = clock.now - start
        #expect(results == [3, 3, 3])
        let firstEnd = try #require(log.index(of: "end(3)"))
        #expect(log.names[..<firstEnd].filter { $0 == "start(3)" }.count == 3)
        #expect(elapsed >= u * 3 && elapsed < u * 6)
    }

    @Test("Listing 2.10 — Running code while other operations work in the background",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing2_10() async throws {
        // Book: main prints twice, a second apart, while both delays still sleep; total ~3 s.
        // Swift: the ticks and the delays may run on different threads; the time order is the same.
        let log = EventLog()
        let start = clock.now
        try await EventLog.$current.withValue(log) {
            async let a = delay(3)
            async let b = delay(3)
            try await log.waitFor("start(3)", count: 2)
            for _ in 0..<2 {
                try await Task.sleep(for: Book.second)
                log.record("tick")
            }
            _ = try await (a, b)
        }
        let elapsed = clock.now - start
        #expect(log.names == ["start(3)", "start(3)", "tick", "tick", "end(3)", "end(3)"])
        #expect(elapsed >= u * 3 && elapsed < u * 5.5)
    }

    @Test("Listing 2.11 — Cancelling a task", .tags(.timing))
    func listing2_11() async throws {
        // Book: after the fifth check main cancels delay(10); awaiting it raises CancelledError.
        // "not done" prints 6 times in asyncio (cancellation lands on the task's next turn).
        // Swift: cancel() sets a flag and the task reacts on another thread, concurrently —
        // so the check right after cancel() may already see it done: 5 or 6 polls.
        let log = EventLog()
        let start = clock.now
        let handle = EventLog.$current.withValue(log) { createTask { try await delay(10) } }
        var polls = 0
        var secondsElapsed = 0
        while !handle.isDone {
            polls += 1
            try await Task.sleep(for: Book.second)
            secondsElapsed += 1
            if secondsElapsed == 5 { handle.cancel() }
        }
        await #expect(throws: CancellationError.self) { try await handle.value }
        let elapsed = clock.now - start
        #expect(polls == 5 || polls == 6)
        #expect(elapsed >= u * 5 && elapsed < u * 8)
        #expect(!log.names.contains("end(10)"))
        #expect(handle.isCancelled)

        // Swift only: a task that never reaches a cancellation-aware await ignores cancel().
        let stubborn = createTask { () -> Int in
            var x = 0
            for i in 0..<2_000_000 { x &+= i }
            return x
        }
        stubborn.cancel()
        _ = try await stubborn.value
        #expect(stubborn.cancellationRequested && !stubborn.isCancelled)
    }

    // MARK: - Timeouts and shields

    @Test("Listing 2.12 — Setting a timeout with wait_for", .tags(.timing))
    func listing2_12() async throws {
        // Book: wait_for gives delay(3) one second: TimeoutError after ~1 s, and the task is cancelled.
        // Swift: withTimeout races the work against a timer in a task group; it returns only once
        // the cancelled work has stopped (as Python 3.11's wait_for).
        let log = EventLog()
        let handle = EventLog.$current.withValue(log) { createTask { try await delay(3) } }
        let start = clock.now
        await #expect(throws: TimeoutError.self) {
            try await withTimeout(Book.second) { try await handle.value }
        }
        let elapsed = clock.now - start
        #expect(elapsed >= u && elapsed < u * 2)
        #expect(handle.isDone && handle.isCancelled)
        #expect(!log.names.contains("end(3)"))

        // Work that finishes first returns its value promptly.
        let quickStart = clock.now
        let quick = try await withTimeout(Book.second * 5) { try await delay(1) }
        #expect(quick == 1 && clock.now - quickStart < u * 5)

        // Cancelling the *caller* is not a timeout: CancellationError.
        let outer = EventLog()
        let waiter = Task {
            try await EventLog.$current.withValue(outer) {
                try await withTimeout(Book.second * 10) { try await delay(5) }
            }
        }
        try await outer.waitFor("start(5)")
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }

    @Test("withTimeout's timer: one thread keeps every deadline, a shorter one set later fires first, a cancelled one is gone at once",
          .tags(.timing))
    func timeoutAlarms() async throws {
        // Not a listing: the timer behind 2.12's withTimeout. Task.sleep arms a libdispatch timer per
        // call (and wakes threads when it fires, cancelled or not); Alarms keeps deadlines in one table
        // served by one thread, which must still wake for a shorter deadline registered while it waits
        // for a longer one, never wake a sleeper early, and drop a cancelled sleep at once.
        let alarms = Alarms(linger: .seconds(30))
        // A deadline as far as a Duration goes (the thread must not overflow its wait computing it).
        let longDeadline = clock.now + .seconds(Int64.max)
        let long = Task { try await alarms.sleep(until: longDeadline) }
        // The thread has taken the far deadline as its next wake-up.
        try await eventually { while alarms.nextWake != longDeadline { await Task.yield() } }
        let start = clock.now
        try await eventually(within: .seconds(20)) { try await alarms.sleep(until: start + u) }
        let woke = clock.now - start
        #expect(woke >= u && woke < .seconds(10), "a 1 u sleep set while the thread waits for the far deadline woke after \(woke)")
        #expect(alarms.count == 1)

        // Several deadlines at once: none wakes before its own.
        try await withThrowingTaskGroup(of: Duration.self) { group in
            for k in 1...5 {
                group.addTask {
                    let deadline = clock.now + u * Double(k) / 2
                    try await alarms.sleep(until: deadline)
                    return clock.now - deadline
                }
            }
            for try await late in group { #expect(late >= .zero) }
        }
        #expect(alarms.threads == 1, "every sleep was served by the one thread")

        // Cancelling a sleep ends it with CancellationError, promptly, and leaves nothing behind.
        let cancelledAt = clock.now
        long.cancel()
        await #expect(throws: CancellationError.self) { try await long.value }
        #expect(clock.now - cancelledAt < .seconds(5))
        #expect(alarms.count == 0)
        // A task cancelled before it sleeps does not sleep at all.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await alarms.sleep(until: clock.now + .seconds(600))
        }
        await #expect(throws: CancellationError.self) { try await early.value }
        #expect(alarms.count == 0)
    }

    @Test("Listing 2.13 — Shielding a task from cancellation", .tags(.timing))
    func listing2_13() async throws {
        // Book: wait_for(shield(task), 5) times out at ~5 s but the task lives on; awaiting it
        // afterwards yields 10 at ~10 s.
        // Swift: cancellation never flows from a waiter into an unstructured task; what shield adds
        // is the ability to *stop waiting* early (plain `await task.value` would wait the full 10).
        let handle = createTask { try await delay(10) }
        let start = clock.now
        await #expect(throws: TimeoutError.self) {
            try await withTimeout(Book.second * 5) { try await shield(handle) }
        }
        let timedOutAt = clock.now - start
        #expect(timedOutAt >= u * 5 && timedOutAt < u * 7.5)
        #expect(!handle.isDone && !handle.cancellationRequested)
        let value = try await handle.value
        let total = clock.now - start
        #expect(value == 10)
        #expect(total >= u * 10 && total < u * 13)
    }

    // MARK: - Futures

    @Test("Listing 2.14 — Basics of futures")
    func listing2_14() async throws {
        // Book: a future is not done until set_result(42); reading it early or setting it twice
        // raises InvalidStateError.
        // Swift: no loop needed; the Future is thread-safe and awaited by any number of tasks.
        let future = Future<Int>()
        #expect(!future.isDone)
        #expect(throws: FutureError.notReady) { try future.result() }
        let waiters = (0..<10).map { _ in Task { try await future.value } }
        try future.setResult(42)
        #expect(future.isDone)
        #expect(try future.result() == 42)
        #expect(throws: FutureError.alreadyCompleted) { try future.setResult(7) }
        #expect(try future.result() == 42)
        for w in waiters { #expect(try await w.value == 42) }
    }

    @Test("Listing 2.15 — Awaiting a future", .tags(.timing))
    func listing2_15() async throws {
        // Book: make_request returns an unfinished future that a task completes a second later.
        // Swift: the same; but cancelling one awaiter drops only that wait — asyncio would cancel
        // the future itself, the Swift Future stays usable for its other consumers.
        func makeRequest() -> Future<Int> {
            let future = Future<Int>()
            Task {
                try await Task.sleep(for: Book.second)
                try future.setResult(42)
            }
            return future
        }
        let start = clock.now
        let future = makeRequest()
        #expect(!future.isDone)
        let value = try await future.value
        let elapsed = clock.now - start
        #expect(value == 42)
        #expect(elapsed >= u && elapsed < u * 3)
        #expect(future.isDone)

        let shared = Future<Int>()
        let cancelledWaiter = Task { try await shared.value }
        let patientWaiter = Task { try await shared.value }
        cancelledWaiter.cancel()
        await #expect(throws: CancellationError.self) { try await cancelledWaiter.value }
        #expect(!shared.isDone)
        try shared.setResult(42)
        #expect(try await patientWaiter.value == 42)
    }

    // MARK: - Timing

    @Test("Listing 2.16 — Timing decorator for coroutines", .tags(.timing))
    func listing2_16() async throws {
        // Book: the decorator reports the call and, in a finally, its duration — also on failure.
        // Swift: no decorators for this: a higher-order `timed`; closures have no runtime name,
        // so the label is explicit.
        let recorder = TimingRecorder()
        let value = try await timed("delay(2)", sink: .recorder(recorder)) { try await delay(2) }
        #expect(value == 2)
        #expect(recorder.events.first == .calling("delay(2)"))
        let d = try #require(recorder.duration(of: "delay(2)"))
        #expect(d >= u * 2 && d < u * 4)

        struct Boom: Error {}
        let failing = TimingRecorder()
        await #expect(throws: Boom.self) {
            try await timed("boom", sink: .recorder(failing)) { throw Boom() }
        }
        #expect(failing.duration(of: "boom") != nil)

        let nested = TimingRecorder()
        try await timed("outer", sink: .recorder(nested)) {
            try await timed("inner", sink: .recorder(nested)) { try await delay(1) }
        }
        let labels = nested.events.map { event -> String in
            switch event {
            case .calling(let l): "calling \(l)"
            case .completed(let l, _): "completed \(l)"
            }
        }
        #expect(labels == ["calling outer", "calling inner", "completed inner", "completed outer"])
    }

    @Test("Listing 2.17 — Timing two concurrent tasks with the decorator",
          .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing2_17() async throws {
        // Book: delay(2) reports ~2 s, delay(3) ~3 s, and main ~3 s — the maximum, not the sum.
        // Swift: the same behaviour.
        let recorder = TimingRecorder()
        let sink = TimingSink.recorder(recorder)
        try await timed("main", sink: sink) {
            async let a = timed("delay(2)", sink: sink) { try await delay(2) }
            async let b = timed("delay(3)", sink: sink) { try await delay(3) }
            _ = try await (a, b)
        }
        let two = try #require(recorder.duration(of: "delay(2)"))
        let three = try #require(recorder.duration(of: "delay(3)"))
        let main = try #require(recorder.duration(of: "main"))
        #expect(two >= u * 2 && two < u * 3)
        #expect(three >= u * 3 && three < u * 4)
        #expect(main >= u * 3 && main < u * 4)
        let completions = recorder.events.compactMap { e -> String? in
            if case .completed(let l, _) = e { l } else { nil }
        }
        #expect(completions == ["delay(2)", "delay(3)", "main"])
    }

    // MARK: - CPU-bound and blocking work

    /// One CPU-bound job: burns `cpu` of its thread's CPU time and reports
    /// its interval and the CPU time it used.
    struct Burn: Sendable {
        var interval: Interval<ContinuousClock.Instant>
        var cpu: Duration
        /// The library's `Interval.overlaps`: the test of running at the same time.
        func overlaps(_ other: Burn) -> Bool { interval.overlaps(other.interval) }
    }

    static func burn(_ cpu: Duration, log: EventLog? = nil, name: String = "cpu") -> Burn {
        log?.record("start \(name)")
        let c0 = CPUTime.thread()
        let start = ContinuousClock.now
        burnCPU(for: cpu)
        let end = ContinuousClock.now
        log?.record("end \(name)")
        return Burn(interval: Interval(start: start, end: end), cpu: CPUTime.thread() - c0)
    }

    /// An async wrapper, so the burn runs as a job of whatever executor the task prefers.
    static func burnTask(_ cpu: Duration, log: EventLog? = nil, name: String = "cpu") async -> Burn {
        burn(cpu, log: log, name: name)
    }

    @Test("Listing 2.18 — Attempting to run CPU-bound code concurrently", .tags(.timing))
    func listing2_18() async throws {
        // Book: two counting tasks get no concurrency — the one loop thread runs them back to back.
        // Swift: on a serial executor (LoopExecutor) exactly so; on the default executor the
        // cooperative pool has a thread per core and they run in PARALLEL. Traps: `Task {}` made
        // from an actor runs on that actor (serial again), and a literal counting loop folds into
        // a constant in release builds — hence burnCPU, which spins on the thread's CPU clock.
        let unit = u
        let (a, b, wall) = try await withLoopExecutor { loop in
            try await loop.run {
                let start = ContinuousClock.now
                async let a = Self.burnTask(unit * 3)
                async let b = Self.burnTask(unit * 3)
                let (ra, rb) = await (a, b)
                return (ra, rb, ContinuousClock.now - start)
            }
        }
        #expect(!a.overlaps(b))
        #expect(wall >= unit * 6)

        guard Machine.isMulticore else { return }  // parallelism needs two cores
        try await showParallelism {
            let start = ContinuousClock.now
            let burns = await withTaskGroup(of: Burn.self) { group in
                for _ in 0..<2 { group.addTask { await Self.burnTask(unit * 3) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let parallelWall = ContinuousClock.now - start
            // Overlap is load-independent: assert it in every attempt.
            #expect(burns[0].overlaps(burns[1]))
            let cpuPerWall = (burns[0].cpu + burns[1].cpu) / parallelWall
            return (cpuPerWall > 1.3, "two threads' CPU / wall = \(cpuPerWall)")
        }
    }

    @Test("Listing 2.19 — CPU-bound code and a long task", .tags(.timing))
    func listing2_19() async throws {
        // Book: a delay(4) created after two CPU tasks cannot even start until both finish: ~cpu+cpu+4.
        // Swift: (a) a LoopExecutor reproduces it; (b) on the global pool the same stall appears once
        // CPU tasks occupy every pool thread (one per core); (c) the fix: CPU work off the pool.
        let unit = u
        let log = EventLog()
        let start = clock.now
        try await withLoopExecutor { loop in
            try await loop.run {
                try await EventLog.$current.withValue(log) {
                    async let a = Self.burnTask(unit * 3, log: log, name: "A")
                    async let b = Self.burnTask(unit * 3, log: log, name: "B")
                    async let d = delay(4)
                    _ = try await (a, b, d)
                }
            }
        }
        let wall = clock.now - start
        let delayStart = try #require(log.index(of: "start(4)"))
        #expect(delayStart > (log.index(of: "end A") ?? .max) && delayStart > (log.index(of: "end B") ?? .max))
        #expect(wall >= unit * 10)

        // (b) Saturate the cooperative pool: one CPU task per core. A plain thread (which needs no
        // pool thread) waits until all have started, then creates the delay and notes the moment.
        let cores = Machine.cores
        let pool = EventLog()
        let delayDone = Future<Int>()
        let created = Future<ContinuousClock.Instant>()
        let watcher = spawnThread(name: "watcher") {
            pool.waitBlocking(for: "start cpu", count: cores)
            try? created.setResult(.now)
            Task {
                do {
                    try delayDone.setResult(try await EventLog.$current.withValue(pool) { try await delay(4) })
                } catch {
                    try? delayDone.setError(error)
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<cores { group.addTask { _ = await Self.burnTask(unit * 3, log: pool) } }
        }
        _ = try await delayDone.value
        try await watcher.value
        let createdAt = try created.result()
        let startedAt = try #require(pool.instant(of: "start(4)"))
        #expect(startedAt - createdAt >= unit * 2, "the delay waited for a free pool thread")

        // (c) The fix: the CPU work runs on threads outside the pool; the delay is not held up.
        let fixed = EventLog()
        try await EventLog.$current.withValue(fixed) {
            async let cpu: [Burn] = withThrowingTaskGroup(of: Burn.self) { group in
                for _ in 0..<cores { group.addTask { try await toThread { Self.burn(unit * 7, log: fixed) } } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await fixed.waitFor("start cpu", count: cores)
            let createdAt = ContinuousClock.now
            try await delay(4)
            let startedAt = try #require(fixed.instant(of: "start(4)"))
            let endedAt = try #require(fixed.instant(of: "end(4)"))
            #expect(startedAt - createdAt < unit)
            #expect(endedAt - createdAt >= unit * 4 && endedAt - createdAt < unit * 6)
            #expect(fixed.index(of: "end cpu") == nil || fixed.index(of: "end cpu")! > fixed.index(of: "end(4)")!)
            _ = try await cpu
        }
    }

    @Test("Listing 2.20 — Incorrectly using a blocking API as a coroutine", .tags(.timing, .http))
    func listing2_20() async throws {
        // Book: blocking requests.get inside coroutines runs one after another; ~3 × one request.
        // Swift: on a LoopExecutor exactly so (shown here); on the global pool the blocking calls
        // are partly concurrent (up to the core count), which hides the bug on big machines and
        // can deadlock small ones. The fix runs them off the pool (toThread) or uses async I/O.
        try await withStubServer { stub in
            let url = stub.url("/delay/\((u * 2).milliseconds)")
            let start = clock.now
            let statuses = try await withLoopExecutor { loop in
                try await loop.run {
                    async let a = Self.blockingStatus(url)
                    async let b = Self.blockingStatus(url)
                    async let c = Self.blockingStatus(url)
                    return try await [a, b, c]
                }
            }
            let elapsed = clock.now - start
            #expect(statuses == [200, 200, 200])
            #expect(stub.counters.peakInFlight == 1)
            #expect(elapsed >= u * 6)

            stub.resetCounters()
            let barrier = stub.url("/barrier/3?key=2.20&timeout_ms=5000")
            let fixed = try await gather((0..<3).map { _ in
                { @Sendable in try await toThread { try Self.blockingStatusSync(barrier) } }
            })
            #expect(fixed == [200, 200, 200])
            #expect(stub.counters.peakInFlight == 3)
            #expect(stub.counters.barrierTimeouts == 0)
        }
    }

    static func blockingStatusSync(_ url: String) throws -> Int {
        try BlockingHTTP.get(url, timeout: .seconds(10)).status
    }

    /// The listing's mistake: an async function whose body blocks its thread.
    static func blockingStatus(_ url: String) async throws -> Int {
        try blockingStatusSync(url)
    }

    // MARK: - The event loop itself

    @Test("Listing 2.21 — Creating an event loop manually", .tags(.timing))
    func listing2_21() async throws {
        // Book: a hand-made loop runs main to completion (~1 s) and is closed in a finally.
        // Swift: concurrency has no loop to create; LoopExecutor is the explicit analog — one NIO
        // event-loop thread that runs every job, including the resumption after a sleep.
        let loop = LoopExecutor()
        let onLoop = Locked<[Bool]>([])
        let recorder = TimingRecorder()
        let start = clock.now
        do {
            try await loop.run {
                try await timed("main", sink: .recorder(recorder)) {
                    onLoop.withLock { $0.append(loop.inLoop) }
                    try await Task.sleep(for: Book.second)
                    onLoop.withLock { $0.append(loop.inLoop) }
                }
            }
        } catch {
            try await loop.close()
            throw error
        }
        try await loop.close()
        #expect(clock.now - start >= u)
        #expect(try #require(recorder.duration(of: "main")) >= u)
        #expect(onLoop.withLock { $0 } == [true, true])
        await #expect(throws: LoopExecutorError.closed) { try await loop.run { 1 } }
    }

    @Test("Listing 2.22 — Accessing the event loop")
    func listing2_22() async throws {
        // Book: call_soon runs the callback on the loop's next turn — after main suspends:
        // start, callback, end.
        // Swift: no "current loop"; the LoopExecutor is passed explicitly. On the global executor
        // the order would not be deterministic.
        let log = EventLog()
        try await confirmation(expectedCount: 1) { called in
            try await withLoopExecutor { loop in
                try await loop.run {
                    try await EventLog.$current.withValue(log) {
                        loop.callSoon {
                            log.record(loop.inLoop ? "callback" : "callback off the loop")
                            called()
                        }
                        try await delay(1)
                    }
                }
            }
        }
        #expect(log.names == ["start(1)", "callback", "end(1)"])
    }

    @Test("Listing 2.23 — Running CPU-bound code in debug mode", .tags(.timing))
    func listing2_23() async throws {
        // Book: debug mode warns that one step of a task held the loop longer than 0.25 s.
        // Swift: no debug mode; LoopExecutor times every job (a task's run between two
        // suspensions, asyncio's "callback") and reports those over its threshold.
        let unit = u
        // A job's report lands just after the job returns, which can be after its task already
        // resumed elsewhere: read the reports once the loop is closed (all jobs have returned).
        func slowJobs(_ body: @escaping @Sendable () async throws -> Void) async throws -> [Duration] {
            let loop = LoopExecutor(slowJobThreshold: unit * 2)
            do { try await loop.run(body) } catch {
                try await loop.close()
                throw error
            }
            try await loop.close()
            return loop.slowJobs
        }
        let slow = try await slowJobs { _ = await Self.burnTask(unit * 5) }
        #expect(slow.count == 1)
        #expect(slow.allSatisfy { $0 >= unit * 5 })

        let sleeper = try await slowJobs { try await delay(3) }
        #expect(sleeper.isEmpty)

        // The same CPU in ten short steps, each a tenth of the threshold: the loop sees only short
        // jobs (jobs are timed by the wall clock, so a step may stretch on a busy machine, not tenfold).
        let polite = try await slowJobs {
            for _ in 0..<10 {
                burnCPU(for: unit / 5)
                await Task.yield()
            }
        }
        #expect(polite.isEmpty)
    }
}
