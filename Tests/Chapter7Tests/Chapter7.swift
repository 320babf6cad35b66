import AsyncPrimitives
import BlockingHTTP
import CurriculumCore
import CurriculumTesting
import Foundation
import Glibc
import LocalServices
import Parallelism
import PasswordHashing
import Processes
import SocketServers
import Testing
import TerminalUI
import Threads
import WebClients

/// Chapter 7: blocking work on threads. Swift has no GIL, so threads speed up
/// CPU work too; but async Swift has asyncio's rule — never block a
/// cooperative thread — so blocking calls (sockets, libcurl, libpq) still go
/// to dedicated OS threads: a thread per client, or the package's
/// `ThreadPool` (`concurrent.futures.ThreadPoolExecutor`), bridged into async
/// code by `ThreadPool.run` / `toThread` (`run_in_executor`, `to_thread`).
@Suite("Chapter 7 · Handling blocking work with threads", .curriculum, .timeLimit(.minutes(3)))
struct Chapter7 {
    let clock = ContinuousClock()

    // MARK: - A thread per client

    @Test("Listing 7.1 — A multithreaded echo server")
    func listing7_1() async throws {
        // Book: a thread per connection; a silent client no longer holds the others up (3.3's failure).
        // Swift: ThreadedEchoServer, one spawnThread per client. Unlike the listing, which never checks for
        // end-of-stream (after a disconnect its recv returns b'' at once, forever: a spinning thread), the port
        // stops on EOF — a faithful copy would fail the "thread ends and burns no CPU" check below.
        try await withThreadedEchoServer { server in
            let silent = try await TestClient.connect(server.port)
            let talker = try await TestClient.connect(server.port)
            try await talker.send("hello\n")
            #expect(try await talker.readLine() == "hello\n", "a silent client does not hold the others up")

            // 20 clients, 3 lines each, sent interleaved: each gets exactly its own bytes back, in order.
            var clients: [TestClient] = []
            for _ in 0..<20 { clients.append(try await TestClient.connect(server.port)) }
            for round in 0..<3 {
                for (i, client) in clients.enumerated() { try await client.send("client \(i) line \(round)\n") }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, client) in clients.enumerated() {
                    group.addTask { () async throws -> Void in
                        for round in 0..<3 { #expect(try await client.readLine() == "client \(i) line \(round)\n") }
                    }
                }
                try await group.waitForAll()
            }

            // A distinct kernel thread per connection, all 22 alive together.
            let ports = ([silent, talker] + clients).map(\.localPort)
            let tids = try ports.map { port -> pid_t in
                let handle = try #require(server.handlerThread(peerPort: port))
                #expect(server.log.names.contains("thread(\(port): \(handle.threadID))"), "the handler logged its own tid")
                return handle.threadID
            }
            #expect(Set(tids).count == 22)
            let alive = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { pid_t($0) })
            #expect(Set(tids).isSubset(of: alive), "every handler thread is listed in /proc/self/task at once")

            // A client leaves: its thread ends (it stopped at EOF) and used next to no CPU meanwhile.
            let leaver = clients[0]
            let handle = try #require(server.handlerThread(peerPort: leaver.localPort))
            leaver.close()
            try await handle.value  // bounded by the suite's wait limit: a spinning thread fails here
            #expect(server.log.names.contains("closed(\(leaver.localPort))"))
            #expect(!FileManager.default.fileExists(atPath: "/proc/self/task/\(handle.threadID)"))
            #expect(handle.cpuTime < u, "the handler did not spin on empty reads (used \(handle.cpuTime))")
            // The others are still served.
            try await clients[1].send("still here\n")
            #expect(try await clients[1].readLine() == "still here\n")
        }
    }

    @Test("Listing 7.2 — Subclassing Thread for a clean shutdown")
    func listing7_2() async throws {
        // Book: on Ctrl-C every client thread's close() sends "Shutting down!" and shuts its socket down; each thread
        // leaves its loop normally. Swift: ThreadedEchoServer.stop() wakes the blocked accept (shutdown → EINVAL),
        // says goodbye to each live client under the same lock its loop leaves by (the listing's check-then-send race
        // is gone), shuts the sockets down and joins every thread.
        let server = try ThreadedEchoServer()
        var clients: [TestClient] = []
        for i in 0..<3 {
            let client = try await TestClient.connect(server.port)
            try await client.send("echo \(i)\n")
            #expect(try await client.readLine() == "echo \(i)\n")
            clients.append(client)
        }
        // A client that left before the stop: no goodbye may be sent to it (no write to a dead socket, no SIGPIPE).
        let departed = try await TestClient.connect(server.port)
        try await departed.send("bye\n")
        #expect(try await departed.readLine() == "bye\n")
        let departedThread = try #require(server.handlerThread(peerPort: departed.localPort))
        departed.close()
        try await server.log.waitFor("closed(\(departed.localPort))")
        let handles = try clients.map { try #require(server.handlerThread(peerPort: $0.localPort)) }

        await server.stop()
        // Joined: every handler had left by its normal exit path before stop() returned.
        for (client, handle) in zip(clients, handles) {
            #expect(handle.isFinished, "stop() joined the handler thread")
            #expect(server.log.position("closed(\(client.localPort))") < server.log.position("stopped"))
        }

        for client in clients {
            #expect(try await client.read(ThreadedEchoServer.goodbye.count) == ThreadedEchoServer.goodbye)
            #expect(try await client.readsEOF())
        }
        let names = server.log.names
        for client in clients { #expect(names.contains("goodbye(\(client.localPort))")) }
        #expect(departedThread.isFinished)
        #expect(!names.contains { $0.hasPrefix("goodbye(\(departed.localPort)") }, "no goodbye to a client that left")
        #expect(!names.contains { $0.hasPrefix("failed(") || $0.hasPrefix("goodbye failed") }, "\(names)")
        #expect(await isRefused(server.port), "no connections after stop()")
    }

    @Test("Listing 7.2 — echo-server --mode threads stops cleanly on SIGINT", .tags(.processes))
    func listing7_2Executable() async throws {
        let (child, port) = try await EchoServerChild.startServer(["--mode", "threads", "--port", "0"])
        defer { child.kill() }
        var clients: [TestClient] = []
        for i in 0..<2 {
            let client = try await TestClient.connect(port)
            try await client.send("ping \(i)\n")
            #expect(try await client.readLine() == "ping \(i)\n")
            clients.append(client)
        }
        child.send(SIGINT)
        for client in clients {
            #expect(try await client.read(ThreadedEchoServer.goodbye.count) == ThreadedEchoServer.goodbye)
            #expect(try await client.readsEOF())
        }
        #expect(try await child.waitForExit() == 0)
    }

    // MARK: - Blocking HTTP on a thread pool

    @Test("Listing 7.3 — Basic usage of requests", .tags(.http))
    func listing7_3() async throws {
        // Book: requests.get holds its thread until the whole response has arrived; status codes are not errors.
        // Swift: BlockingHTTP (libcurl) on a pool thread (toThread), never on the cooperative pool.
        try await withStubServer { stub in
            let url = stub.url("/")
            let codes = try await toThread { [try BlockingHTTP.statusCode(url), try BlockingHTTP.statusCode(url)] }
            #expect(codes == [200, 200])
            #expect(stub.counters.peakInFlight == 1)
            #expect(stub.counters.completed == 2)
            let unavailable = stub.url("/status/503")
            #expect(try await toThread { try BlockingHTTP.statusCode(unavailable) } == 503)
        }
        let refusing = try RefusingPort()
        defer { refusing.close() }
        let refusedURL = refusing.baseURL + "/"
        let error = await #expect(throws: BlockingHTTPError.self) {
            try await toThread { try BlockingHTTP.statusCode(refusedURL, timeout: .seconds(5)) }
        }
        guard case .connectionFailed? = error else {
            Issue.record("a refused port is a connection failure, got \(String(describing: error))")
            return
        }
    }

    @Test("Listing 7.4 — Making requests with a thread pool", .tags(.http, .timing))
    func listing7_4() async throws {
        // Book: a ThreadPoolExecutor's map runs up to pool-size requests at once and keeps input order.
        // Swift: ThreadPool(threads: 6).map — the seed's default size on this 2-core machine (cores + 4).
        try await withStubServer { stub in
            // Sequential: one at a time.
            let slow = stub.url("/delay/\(ms(1))")
            let start = clock.now
            let sequential = try await toThread { try (0..<12).map { _ in try BlockingHTTP.statusCode(slow) } }
            #expect(clock.now - start >= u * 12)
            #expect(sequential == Array(repeating: 200, count: 12))
            #expect(stub.counters.peakInFlight == 1)

            // Six at once, never more: the barrier opens only when 6 requests wait together.
            let pool = ThreadPool(threads: 6, name: "pool-7.4")
            defer { pool.shutdown() }
            #expect(pool.threadIDs.count == 6)
            stub.resetCounters()
            let barrier = stub.url("/barrier/6?key=7.4&timeout_ms=\(ms(40))")
            let bodies = try await toThread {
                try pool.map(0..<12) { i in try BlockingHTTP.get(barrier + "&id=\(i)", timeout: .seconds(10)) }
            }
            #expect(bodies.map(\.status) == Array(repeating: 200, count: 12))
            #expect(bodies.map { Self.requestID($0.body) } == Array(0..<12), "map keeps input order")
            #expect(stub.counters.peakInFlight == 6)
            #expect(stub.counters.barrierTimeouts == 0)

            // Input order although they finish in reverse: the first input is the slowest.
            let reverse = try await toThread {
                try pool.map((0..<6).reversed()) { k in
                    Self.requestID(try BlockingHTTP.get(stub.url("/delay/\(ms(Double(k)))?id=\(k)")).body)
                }
            }
            #expect(reverse == [5, 4, 3, 2, 1, 0])

            // The bound is real: 5 threads can never gather 6 at the barrier.
            let five = ThreadPool(threads: 5, name: "pool-7.4b")
            defer { five.shutdown() }
            stub.resetCounters()
            let tooSmall = stub.url("/barrier/6?key=7.4b&timeout_ms=\(ms(4))")
            let timedOut = try await toThread { try five.map(0..<5) { _ in try BlockingHTTP.statusCode(tooSmall) } }
            #expect(timedOut == Array(repeating: 504, count: 5))
            #expect(stub.counters.peakInFlight == 5)

            // Timing: 12 requests of 2 u on 6 threads take two rounds (sequential: 24 u).
            let twoU = stub.url("/delay/\(ms(2))")
            let timed = clock.now
            _ = try await toThread { try pool.map(0..<12) { _ in try BlockingHTTP.statusCode(twoU) } }
            let elapsed = clock.now - timed
            #expect(elapsed >= u * 4 && elapsed < u * 8, "took \(elapsed)")
        }
    }

    @Test("Listing 7.5 — Using a thread-pool executor with asyncio", .tags(.http, .timing))
    func listing7_5() async throws {
        // Book: run_in_executor gives a blocking library an asyncio interface; gather returns statuses in order.
        // Swift: pool.run { } suspends the caller on a continuation resumed from the pool thread.
        try await withStubServer { stub in
            let pool = ThreadPool(threads: 6, name: "pool-7.5")
            defer { pool.shutdown() }
            let barrier = stub.url("/barrier/6?key=7.5&timeout_ms=\(ms(40))")
            let ran = Locked<Set<pid_t>>([])
            let results = try await gather((0..<12).map { i in
                { @Sendable in
                    try await pool.run { () throws -> (Int, Int) in
                        ran.update { _ = $0.insert(currentThreadID()) }
                        let response = try BlockingHTTP.get(barrier + "&id=\(i)", timeout: .seconds(10))
                        return (response.status, Self.requestID(response.body))
                    }
                }
            })
            #expect(results.map(\.0) == Array(repeating: 200, count: 12))
            #expect(results.map(\.1) == Array(0..<12), "gather keeps input order")
            #expect(stub.counters.peakInFlight == 6)
            #expect(ran.get.isSubset(of: pool.threadIDs), "every closure ran on one of the pool's threads")

            // While the pool's threads wait on the network, the async side is free.
            stub.resetCounters()
            let held = stub.url("/delay/\(ms(4))")
            async let busy = gather((0..<6).map { _ in { @Sendable in try await pool.run { try BlockingHTTP.statusCode(held) } } })
            try await stub.waitUntil(inFlight: 6)
            let start = clock.now
            try await delay(1)
            let elapsed = clock.now - start
            #expect(elapsed >= u && elapsed < u * 2, "delay(1) took \(elapsed) while 6 blocking requests ran")
            #expect(stub.counters.inFlight == 6, "the requests were still in flight")
            #expect(try await busy == Array(repeating: 200, count: 6))
        }
    }

    @Test("Listing 7.6 — Using the default executor", .tags(.http, .timing))
    func listing7_6() async throws {
        // Book: run_in_executor(None, …) uses asyncio's lazily created default pool, min(32, cores + 4) threads.
        // Swift: ThreadPool.shared follows Python's formula (NIO's singleton pool would have one per core).
        let shared = ThreadPool.shared
        #expect(shared.threadCount == min(32, Machine.cores + 4))
        #expect(shared.threadIDs.count == shared.threadCount)
        let n = shared.threadCount
        try await withStubServer { stub in
            let barrier = stub.url("/barrier/\(n)?key=7.6&timeout_ms=\(ms(40))")
            let ran = Locked<Set<pid_t>>([])
            let codes = try await gather((0..<(2 * n)).map { _ in
                { @Sendable in
                    try await toThread { () throws -> Int in
                        ran.update { _ = $0.insert(currentThreadID()) }
                        return try BlockingHTTP.statusCode(barrier)
                    }
                }
            })
            #expect(codes == Array(repeating: 200, count: 2 * n))
            #expect(stub.counters.peakInFlight == n, "never more than the default pool's \(n) threads")
            // Separate calls share the one process-wide pool.
            let first = try await toThread { currentThreadID() }
            let second = try await toThread { currentThreadID() }
            #expect(ran.get.union([first, second]).isSubset(of: shared.threadIDs))
        }
    }

    @TaskLocal static var requestID: String?

    @Test("Listing 7.7 — Using the to_thread coroutine", .tags(.http))
    func listing7_7() async throws {
        // Book: asyncio.to_thread(f, url): the default executor with less ceremony (it copies context variables).
        // Swift: toThread { } on ThreadPool.shared. Cancellation, pinned down on a one-thread pool of its own:
        // queued work never runs and the caller gets CancellationError at once; running work is not interrupted
        // and the caller waits for its result (asyncio raises CancelledError at once and drops the result).
        let tid = try await toThread { currentThreadID() }
        #expect(ThreadPool.shared.threadIDs.contains(tid))
        #expect(try await toThread { 6 * 7 } == 42)

        let pool = ThreadPool(threads: 1, name: "pool-7.7")
        defer { pool.shutdown() }

        // (a) Queued, then cancelled: never runs.
        let gate = Gate()
        let occupied = Gate()
        let blocker = Task { try await toThread(on: pool) { occupied.open(); gate.enterBlocking() } }
        await occupied.enter()
        let ran = Locked(0)
        let queued = Task { try await toThread(on: pool) { ran.update { $0 += 1 } } }
        try await pool.waitUntil(queued: 1)
        queued.cancel()
        await #expect(throws: CancellationError.self) { try await queued.value }
        #expect(!gate.isOpen, "CancellationError came while the pool's only thread was still busy")
        gate.open()
        try await blocker.value
        try await toThread(on: pool) {}  // the queue has drained past the cancelled job
        #expect(ran.get == 0, "the cancelled closure never ran")

        // (b) Running, then cancelled: not interrupted; the caller gets the value after the closure's end.
        try await withStubServer { stub in
            let log = EventLog()
            let url = stub.url("/delay/\(ms(3))")
            let running = Task {
                let status = try await toThread(on: pool) { () throws -> Int in
                    let status = try BlockingHTTP.statusCode(url)
                    log.record("closure returned")
                    return status
                }
                log.record("caller resumed")
                return status
            }
            try await stub.waitUntil(inFlight: 1)
            running.cancel()
            #expect(try await running.value == 200, "the result of running work is delivered")
            #expect(log.names == ["closure returned", "caller resumed"])
            #expect(stub.counters.completed == 1 && stub.counters.aborted == 0, "the request was not interrupted")
        }

        // Task-locals do not reach the pool's threads; capture what the closure needs.
        try await Self.$requestID.withValue("req-7") {
            let seen = try await toThread { Self.requestID }
            #expect(seen == nil)
            let captured = Self.requestID
            #expect(try await toThread { captured } == "req-7")
        }
    }

    @Test("Listing 7.8 — Printing the status of requests", .tags(.http, .timing), .bookSecond(.milliseconds(100)))
    func listing7_8() async throws {
        // Book: pool threads bump a locked counter; a reporter coroutine prints "k of n" every 0.5 s.
        // Swift: ProgressCounter (a lock) bumped in the pooled closures; ProgressSampler as the reporter. (The Swift
        // idiom counts completions from the task group instead; the lock is the listing's point.)
        try await withStubServer { stub in
            let pool = ThreadPool(threads: 6, name: "pool-7.8")
            defer { pool.shutdown() }
            let counter = ProgressCounter()
            let lastDone = Locked<ContinuousClock.Instant?>(nil)
            let reporter = ProgressSampler(total: 24)
            let url = stub.url("/delay/\(ms(1))")
            async let reporting: Void = reporter.run(every: u / 2, read: { counter.value })
            let codes = try await gather((0..<24).map { _ in
                { @Sendable in
                    try await pool.run { () throws -> Int in
                        let code = try BlockingHTTP.statusCode(url)
                        counter.increment()
                        lastDone.set(ContinuousClock.now)
                        return code
                    }
                }
            })
            await reporting
            let reporterEnded = ContinuousClock.now
            #expect(codes.count == 24 && counter.value == 24)
            let samples = reporter.samples
            #expect(samples == samples.sorted() && samples.allSatisfy { $0 <= 24 } && samples.last == 24, "\(samples)")
            #expect(samples.count >= 3, "the reporter saw the work in progress: \(samples)")
            let last = try #require(lastDone.get)
            #expect(reporterEnded - last < u, "the reporter ended \(reporterEnded - last) after the last completion")
        }

        // The lock earns its place: 4 threads × 50,000 increments.
        let locked = ProgressCounter()
        let unlocked = UnlockedCounter()
        let threads = (0..<4).map { i in
            spawnThread(name: "count-\(i)") {
                for _ in 0..<50_000 {
                    locked.increment()
                    unlocked.increment()
                }
            }
        }
        for thread in threads { try await thread.value }
        #expect(locked.value == 200_000)
        #expect(unlocked.value <= 200_000)
        // Not asserted (it depends on scheduling): how many updates the load-then-store shape lost.
        print("7.8: the unlocked counter reached \(unlocked.value) of 200000 (\(200_000 - unlocked.value) updates lost)")
    }

    // MARK: - Locks

    @Test("Listing 7.9 — Locks and recursion", .tags(.processes))
    func listing7_9() async throws {
        // Book: a plain Lock deadlocks when its owner takes it again; an RLock allows it and the sum is 10.
        // Swift: RecursiveLock (PTHREAD_MUTEX_RECURSIVE, like NSRecursiveLock) sums; the non-reentrant locks fail
        // three ways: CheckedMutex reports EDEADLK (in-process); Synchronization.Mutex traps and NSLock deadlocks —
        // both in a child process, never in this one.
        let recursive = RecursiveLock()
        let acquisitions = Locked<[(left: Int, depth: Int, thread: pid_t)]>([])
        let sum = try await spawnThread(name: "sum-7.9") {
            try recursiveSum([1, 2, 3, 4], lock: recursive) { left in
                acquisitions.update { $0.append((left.count, recursive.depth, currentThreadID())) }
            }
        }.value
        #expect(sum == 10)
        let log = acquisitions.get
        #expect(log.map(\.left) == [4, 3, 2, 1, 0], "five acquisitions, the fifth on the empty list")
        #expect(log.map(\.depth) == [1, 2, 3, 4, 5], "nested: each one while holding the previous")
        #expect(Set(log.map(\.thread)).count == 1, "all by one thread")

        // (a) Error-checking mutex: the second lock() by its owner throws instead of deadlocking.
        let checked = CheckedMutex()
        let outcome = try await spawnThread(name: "checked-7.9") { () -> LockError? in
            do {
                _ = try recursiveSum([1, 2, 3, 4], lock: checked)
                return nil
            } catch let error as LockError {
                return error
            }
        }.value
        #expect(outcome == .wouldDeadlock)
        #expect(try checked.locked { true }, "the first acquisition was released on the way out")

        // (b) Synchronization.Mutex: the child traps.
        let worker = try WorkerExecutable.locate()
        let trap = try ChildProcess.spawn(worker, arguments: ["lock-recursion", "--lock", "mutex"],
                                          environment: ChildProcess.environmentWithoutBacktracer())
        let trapped = await trap.collectOutput()
        guard case .signalled = trapped.termination else {
            Issue.record("Mutex re-entry should end the child by a signal: \(trapped.termination)")
            return
        }
        #expect(trapped.standardErrorText.contains("Recursive call to lock Mutex"), "\(trapped.standardErrorText)")

        // (c) NSLock: a real deadlock. The child took the lock once and is still running 2 u later.
        let hang = try ChildProcess.spawn(worker, arguments: ["lock-recursion", "--lock", "nslock"],
                                          environment: ChildProcess.environmentWithoutBacktracer())
        defer { hang.kill() }
        var lines = hang.standardOutput!.lines().makeAsyncIterator()
        #expect(try await lines.next() == "acquired=4")
        let window = u * 2
        let exited = try await toThread { hang.waitForExit(timeout: window) }
        #expect(exited == nil, "still running after \(window): deadlocked on its own lock")
        hang.kill()
        #expect(try await hang.termination == .signalled(SIGKILL))
    }

    @Test("Listing 7.10 — A thread-safe list class", arguments: [ListDesign.recursiveLock, .lockOnce])
    func listing7_10(design: ListDesign) async throws {
        // Book: find_and_replace calls indices_of under the same lock, so the lock must be an RLock.
        // Swift: both designs — the faithful one on RecursiveLock, and the idiom (lock once at the boundary, private
        // helpers on inout [Int]), which needs no reentrancy: Synchronization.Mutex would trap on the faithful shape.
        let list = design.make([1, 2, 1, 2, 1])
        #expect(list.indicesOf(1) == [0, 2, 4])
        list.findAndReplace(1, 2)
        #expect(list.snapshot() == [2, 2, 2, 2, 2])

        // Stress: 4 threads × 1,000 mixed operations.
        let stressed = design.make([1, 2, 1, 2, 1])
        let threads = (0..<4).map { t in
            spawnThread(name: "list-\(t)") { () -> Int in
                var rng = SplitMix64(seed: UInt64(t + 1))
                var appended = 0
                for _ in 0..<1000 {
                    switch rng.next() % 4 {
                    case 0: stressed.append(1); appended += 1
                    case 1: stressed.append(2); appended += 1
                    case 2: stressed.findAndReplace(1, 2)
                    default: stressed.findAndReplace(2, 1)
                    }
                }
                return appended
            }
        }
        var appended = 0
        for thread in threads { appended += try await thread.value }
        let final = stressed.snapshot()
        #expect(final.count == 5 + appended)
        #expect(Set(final).isSubset(of: [1, 2]))

        // A reader never sees a replacement half done.
        let whole = design.make(Array(repeating: 1, count: 2000))
        let writer = spawnThread(name: "replacer") {
            for round in 0..<200 { round.isMultiple(of: 2) ? whole.findAndReplace(1, 2) : whole.findAndReplace(2, 1) }
        }
        let reader = spawnThread(name: "reader") { () -> Int in
            var torn = 0
            while !writer.isFinished {
                if Set(whole.snapshot()).count != 1 { torn += 1 }
            }
            return torn
        }
        try await writer.value
        #expect(try await reader.value == 0, "no snapshot mixed old and new values")
    }

    enum ListDesign: String, CustomTestStringConvertible, Sendable {
        case recursiveLock, lockOnce
        var testDescription: String { rawValue }
        func make(_ items: [Int]) -> any SharedIntList {
            switch self {
            case .recursiveLock: RecursivelyLockedList(items)
            case .lockOnce: ThreadSafeList(items)
            }
        }
    }

    // MARK: - The load tester

    @Test("Listing 7.12 — A Tkinter \"hello world\" app", .tags(.terminal, .processes))
    func listing7_12() async throws {
        // Book: a Tk window with one button; mainloop() owns the main thread; a slow callback freezes the window.
        // Swift on Linux: hello-tui, a key loop on the main thread in cbreak mode; Enter "clicks" the button.
        let pty = try PseudoTerminal(try SiblingExecutable.locate("hello-tui"), arguments: ["--slow-ms", String(ms(3))],
                                     rows: 10, columns: 40)
        try await pty.waitUntil(screenContains: "[ Say Hello ]")
        pty.type("\r")
        try await pty.waitUntil(screenContains: "Hello!")
        pty.type("\r")
        try await pty.waitUntil(screen: { $0.filter { $0 == "Hello!" }.count == 2 })
        #expect(pty.text.filter { $0 == "Hello!" }.count == 2)

        // The slow click blocks the loop: a key typed meanwhile is drawn only after it ends.
        let typed = ContinuousClock.now  // before the key: the app's 3 u freeze starts after this instant
        pty.type("s")
        pty.type("\r")
        try await pty.waitUntil(screen: { $0.filter { $0 == "Hello!" }.count == 3 })
        #expect(ContinuousClock.now - typed >= u * 3, "the third Hello! waited for the slow click")

        pty.type("q")
        #expect(try await pty.waitForExit() == 0)
        #expect(pty.slaveSettings() == pty.initialSettings, "the terminal settings are restored")
        #expect(pty.unknownSequences.isEmpty, "\(pty.unknownSequences)")
    }

    @Test("Listing 7.13 — The load tester class", .tags(.http), .bookSecond(.milliseconds(250)))
    func listing7_13() async throws {
        // Book: StressTest runs aiohttp requests on a loop in another thread, counts completions without a lock (only
        // the loop's thread touches the counter) and calls back every 1 %; cancel() is posted onto that loop.
        // Swift: LoadTester — one task owns the counter; Task.cancel() is thread-safe, so nothing is posted.
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(timeout: .seconds(30), maxConnectionsPerHost: 100)) { client in
                // 200 requests: a callback every 2 completions, and real traffic (the seed's gather ran after its
                // session had closed: every request failed at once and the bar still reached 100 %).
                let reports = Locked<[LoadTestProgress]>([])
                let tester = try LoadTester(url: stub.url("/"), totalRequests: 200, client: client)
                let summary = await tester.start { p in reports.update { $0.append(p) } }.summary
                #expect(reports.get.map(\.completed) == Array(stride(from: 2, through: 200, by: 2)))
                #expect(reports.get.allSatisfy { $0.total == 200 })
                #expect(summary.byStatus == [200: 200] && summary.completed == 200 && !summary.cancelled)
                #expect(stub.counters.completed == 200, "the stub served every request")

                // Below 100 requests: a callback after every completion (the listing divides by zero).
                let few = Locked<[Int]>([])
                _ = try await LoadTester(url: stub.url("/"), totalRequests: 50, client: client)
                    .start { p in few.update { $0.append(p.completed) } }.summary
                #expect(few.get == Array(1...50))

                // Error statuses are completed requests, reported by status.
                let errors = try await LoadTester(url: stub.url("/status/500"), totalRequests: 10, client: client).start().summary
                #expect(errors.byStatus == [500: 10] && errors.completed == 10 && errors.failures == 0)

                // Cancel from a plain thread while 40 requests hang.
                stub.resetCounters()
                let late = Locked<[Int]>([])
                let hanging = try LoadTester(url: stub.url("/hang"), totalRequests: 40, client: client, maxConcurrent: 40)
                let run = hanging.start { p in late.update { $0.append(p.completed) } }
                try await stub.waitUntil(inFlight: 40)
                let cancelledAt = ContinuousClock.now
                try await spawnThread(name: "ui-7.13") { hanging.cancel() }.value
                let cancelled = await run.summary
                #expect(ContinuousClock.now - cancelledAt < u * 2, "the run ended soon after cancel()")
                #expect(cancelled.cancelled && cancelled.completed == 0)
                try await stub.waitUntil(aborted: 40)
                #expect(stub.counters.inFlight == 0)
                #expect(late.get.isEmpty, "no callback for cancelled requests, none after the summary")
                hanging.cancel()  // twice: a no-op

                // cancel() before start() is a no-op: the run then goes ahead.
                let early = try LoadTester(url: stub.url("/"), totalRequests: 5, client: client)
                early.cancel()
                #expect(await early.start().summary.completed == 5)
            }
        }
        // Bad input: a clear error, no trap; a refused port is a counted failure.
        await #expect(throws: LoadTestError.self) {
            try await withHTTPClient { client in _ = try LoadTester(url: "http://127.0.0.1:1/", totalRequests: 0, client: client) }
        }
        let refusing = try RefusingPort()
        defer { refusing.close() }
        let refused = try await withHTTPClient { client in
            try await LoadTester(url: refusing.baseURL + "/", totalRequests: 5, client: client).start().summary
        }
        #expect(refused.failures == 5 && refused.completed == 5 && refused.byStatus.isEmpty)
        #expect(refused.firstFailure != nil)
    }

    @Test("Listing 7.14 — The Tkinter GUI: the screen's state machine, renderer and progress queue")
    func listing7_14Model() async throws {
        // Book: a Tk window; the tester's callback only puts a percentage into a queue that the GUI polls every
        // 25 ms. Swift: LoadTesterScreen (pure state: keys and progress in, effects out), LoadTesterRenderer, and
        // UIQueue, which the key loop drains whole each tick (the listing takes one item per tick).
        var screen = LoadTesterScreen()
        for c in "http://127.0.0.1:9/" { #expect(screen.handle(key: .character(c)) == nil) }
        #expect(screen.handle(key: .tab) == nil)
        for c in "40" { _ = screen.handle(key: .character(c)) }
        #expect(screen.handle(key: .enter) == .start(url: "http://127.0.0.1:9/", count: 40))
        #expect(screen.buttonLabel == "Cancel")
        screen.handle(completed: 20, total: 40)
        #expect(screen.percent == 50)
        screen.handle(completed: 40, total: 40)
        #expect(screen.buttonLabel == "Submit" && screen.percent == 100, "100 % is drawn; the listing never draws it")

        // Cancel while running.
        #expect(screen.handle(key: .enter) == .start(url: "http://127.0.0.1:9/", count: 40))
        #expect(screen.handle(key: .enter) == .cancel)
        #expect(screen.buttonLabel == "Submit")
        screen.finished(cancelled: true, message: "3 requests")
        #expect(screen.status.hasPrefix("Cancelled"))

        // Bad counts: an inline error and no effect (the listing raises after the label already says Cancel).
        for bad in ["abc", "0", ""] {
            var form = LoadTesterScreen(url: "http://127.0.0.1:9/", count: bad)
            #expect(form.handle(key: .enter) == nil)
            #expect(form.buttonLabel == "Submit" && form.status.contains("at least 1"))
        }
        var noURL = LoadTesterScreen(url: "example", count: "3")
        #expect(noURL.handle(key: .enter) == nil && noURL.status.contains("http://"))
        // Quitting: Esc anywhere, q where it is not text.
        var form = LoadTesterScreen()
        #expect(form.handle(key: .character("q")) == nil && form.url == "q")
        #expect(form.handle(key: .escape) == .quit)

        // Ten queued updates are drained in one tick and the newest is drawn.
        let queue = UIQueue<LoadTestProgress>()
        var running = LoadTesterScreen(url: "http://127.0.0.1:9/", count: "10")
        _ = running.handle(key: .enter)
        for k in 1...9 { queue.post(LoadTestProgress(completed: k, total: 10)) }
        let drained = queue.drain()
        #expect(drained.count == 9 && queue.drain().isEmpty)
        for p in drained { running.handle(completed: p.completed, total: p.total) }
        #expect(running.percent == 90)

        // Renderer: a 20-cell bar at 50 % has 10 filled cells; no line wider than the terminal.
        #expect(LoadTesterRenderer.bar(percent: 50, cells: 20) == "[" + String(repeating: "#", count: 10) + String(repeating: "-", count: 10) + "]")
        let lines = LoadTesterRenderer.lines(running, columns: 40)
        #expect(lines.allSatisfy { $0.count <= 40 })
        #expect(lines.contains { $0.contains("90%") && $0.contains("[") })
        // Key decoding: CR is Enter, DEL is Backspace, an arrow key is one key.
        #expect(Key.decode(Array("a\r\u{7F}\t".utf8)) == [.character("a"), .enter, .backspace, .tab])
        #expect(Key.decode([27, 91, 65, 120]) == [.other([27, 91, 65]), .character("x")])
    }

    @Test("Listing 7.14 — The Tkinter GUI: load-tester in a terminal", .tags(.terminal, .processes, .http))
    func listing7_14Terminal() async throws {
        try await withStubServer { stub in
            let pty = try PseudoTerminal(try SiblingExecutable.locate("load-tester"),
                                         arguments: ["--url", stub.url("/"), "--requests", "40"], rows: 12, columns: 60)
            try await pty.waitUntil(screenContains: "100%")
            try await pty.waitUntil(screenContains: "[ Submit ]")
            #expect(stub.counters.completed == 40)
            // A second run against /hang, cancelled from the keyboard.
            pty.type(String(repeating: "\u{7F}", count: stub.url("/").count) + stub.url("/hang"))
            try await pty.waitUntil(screenContains: "/hang")
            pty.type("\r")
            try await pty.waitUntil(screenContains: "[ Cancel ]")
            try await stub.waitUntil(inFlight: 40)
            pty.type("c")
            try await pty.waitUntil(screenContains: "Cancelled")
            try await stub.waitUntil(aborted: 40)
            #expect(stub.counters.inFlight == 0)
            pty.type("\u{1B}")
            #expect(try await pty.waitForExit() == 0)
            #expect(pty.slaveSettings() == pty.initialSettings)
            #expect(pty.unknownSequences.isEmpty, "\(pty.unknownSequences)")
        }
    }

    @Test("Listing 7.15 — The load tester app", .tags(.terminal, .processes, .http), arguments: [false, true])
    func listing7_15(dedicatedLoop: Bool) async throws {
        // Book: asyncio's loop runs forever in a daemon thread, Tk's mainloop on the main thread; closing the window
        // ends the program. Swift: the key loop on its own thread, the load as tasks (or, --dedicated-loop, on an
        // event-loop thread like the book's); quitting cancels the run, shuts the client down, restores the terminal.
        try await withStubServer { stub in
            let pty = try PseudoTerminal(
                try SiblingExecutable.locate("load-tester"),
                arguments: ["--url", stub.url("/delay/\(ms(20))"), "--requests", "40", "--concurrency", "10"]
                    + (dedicatedLoop ? ["--dedicated-loop"] : []),
                rows: 12, columns: 60)
            try await pty.waitUntil(screenContains: "[ Cancel ]")
            try await stub.waitUntil(completed: 10)
            // Requests of 20 u, 10 at a time: progress is drawn as it happens (the bar between 0 and 100 after the
            // first ten), and the next ten are in flight for the next 20 u.
            try await pty.waitUntil(row: { row in
                guard let p = row.split(separator: " ").last.flatMap({ Int($0.dropLast()) }), row.hasPrefix("[") else { return false }
                return p > 0 && p < 100
            })
            // The UI loop is never blocked by the I/O: a key moves the focus while the requests run.
            pty.type("\t")
            try await pty.waitUntil(row: { $0.hasPrefix("> Requests:") })
            #expect(stub.counters.completed < 40, "still running when the key was drawn")
            try await stub.waitUntil(inFlight: 10)
            let inFlight = stub.counters.inFlight
            pty.type("q")
            #expect(try await pty.waitForExit() == 0)
            try await stub.waitUntil { $0.inFlight == 0 }
            #expect(stub.counters.aborted == inFlight, "quitting aborted exactly the requests in flight")
            #expect(stub.counters.completed < 40, "quitting stopped the run")
            #expect(pty.slaveSettings() == pty.initialSettings)
            #expect(pty.unknownSequences.isEmpty, "\(pty.unknownSequences)")
        }
    }

    // MARK: - CPU work in C: scrypt

    @Test("Listing 7.16 — Hashing passwords with scrypt")
    func listing7_16() async throws {
        // Book: 10,000 random passwords hashed with scrypt (N=2048, r=8, p=1, 16-byte salt, 64 bytes) one after
        // another: slow, CPU-bound. Swift: swift-crypto's KDF.Scrypt (BoringSSL), checked against RFC 7914.
        let vectors: [(password: String, salt: String, n: Int, r: Int, p: Int, key: String)] = [
            ("", "", 16, 1, 1,
             "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"),
            ("password", "NaCl", 1024, 8, 16,
             "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"),
            ("pleaseletmein", "SodiumChloride", 16384, 8, 1,
             "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"),
        ]
        for v in vectors {
            let hasher = PasswordHasher(rounds: v.n, blockSize: v.r, parallelism: v.p, outputByteCount: 64)
            let key = try await toThread { try hasher.hash(v.password, salt: Array(v.salt.utf8)) }
            #expect(hexString(key) == v.key, "RFC 7914 vector N=\(v.n)")
        }

        var rng = SplitMix64(seed: 716)
        let hasher = PasswordHasher.book
        let items = (0..<32).map { _ in
            PasswordHasher.Item(password: randomPassword(length: 10, using: &rng), salt: randomSalt(count: 16, using: &rng))
        }
        #expect(items.allSatisfy { $0.password.count == 10 && $0.password.allSatisfy { ("a"..."z").contains($0) } })
        let keys = try await toThread { try hasher.hashSerially(items) }
        #expect(keys.allSatisfy { $0.count == 64 })
        #expect(Set(keys.map(hexString)).count == 32)
        for (item, key) in zip(items, keys) {
            #expect(try hasher.verify(item.password, salt: item.salt, key: key))
        }
        // Same password and salt → same key; another salt → another key.
        let first = items[0]
        #expect(try hasher.hash(first.password, salt: first.salt) == keys[0])
        #expect(try hasher.hash(first.password, salt: items[1].salt) != keys[0])
        // Bad parameters are an error, not a trap.
        #expect(throws: PasswordHashingError.self) { try PasswordHasher(rounds: 1000).hash("x", salt: []) }
        #expect(throws: PasswordHashingError.self) { try PasswordHasher(outputByteCount: 0).hash("x", salt: []) }
    }

    @Test("Listing 7.17 — Hashing with multiple threads and asyncio", .tags(.timing))
    func listing7_17() async throws {
        // Book: run_in_executor on a ThreadPoolExecutor makes 10,000 hashes ~5× faster: hashlib's scrypt releases
        // the GIL. (Seed and book gather after the executor's with-block, whose exit waits for every hash on the
        // event-loop thread: the loop is blocked throughout. Not ported.) Swift: no GIL; slices on pool threads.
        var rng = SplitMix64(seed: 717)
        let items = (0..<32).map { _ in
            PasswordHasher.Item(password: randomPassword(using: &rng), salt: randomSalt(using: &rng))
        }
        let hasher = PasswordHasher.book
        let serial = try await toThread { try hasher.hashSerially(items) }

        let pool = ThreadPool(threads: Machine.cores, name: "scrypt")
        defer { pool.shutdown() }
        let ticks = Locked(0)
        let ticker = Task {
            while !Task.isCancelled {
                ticks.update { $0 += 1 }
                try? await Task.sleep(for: u / 10)
            }
        }
        let start = ContinuousClock.now
        let (keys, slices) = try await hasher.hashAll(items, concurrency: Machine.cores, on: pool)
        let wall = ContinuousClock.now - start
        ticker.cancel()
        #expect(keys == serial, "the parallel keys equal the serial ones, in input order")
        #expect(slices.map(\.count).reduce(0, +) == 32)
        #expect(Set(slices.map(\.threadID)).isSubset(of: pool.threadIDs))
        #expect(ticks.get >= 3, "the caller's ticker kept ticking during the run (\(ticks.get) ticks in \(wall))")
        guard Machine.isMulticore else { return }
        // Parallel: the workers overlapped and kept more than 1.3 cores busy (one clear showing is the evidence;
        // another program's load can hide it in one attempt — showParallelism retries and measures that load).
        try await showParallelism {
            let start = ContinuousClock.now
            let (again, slices) = try await hasher.hashAll(items, concurrency: Machine.cores, on: pool)
            let wall = ContinuousClock.now - start
            let cpu = slices.map(\.cpuTime).reduce(.zero, +)
            let overlapped = Interval.allOverlap(slices.map(\.interval)) && Set(slices.map(\.threadID)).count == Machine.cores
            return (again == serial && overlapped && cpu / wall > 1.3,
                    "\(slices.map(\.count)) hashes per worker, summed thread CPU \(cpu) over wall \(wall)")
        }
    }

    /// The `id=N` the stub echoes in a response body, or -1.
    static func requestID(_ body: [UInt8]) -> Int {
        let text = String(decoding: body, as: UTF8.self)
        guard let range = text.range(of: "id=") else { return -1 }
        return Int(text[range.upperBound...].prefix { $0.isNumber }) ?? -1
    }
}
