import AsyncHTTPClient
import CurriculumTesting
import LocalServices
import NIOCore
import NIOPosix
import SocketServers
import Testing
import WebClients
import AsyncPrimitives
import CurriculumCore

/// Chapter 4 of *Python Concurrency with asyncio*: concurrent web requests.
///
/// aiohttp becomes AsyncHTTPClient behind the `WebClients` layer
/// (`withHTTPClient`, `fetchStatus`, `fetch`, `WebClientError`); `gather`,
/// `as_completed` and `wait` are AsyncPrimitives' `gather`, `asCompleted` and
/// `wait`. Every URL is the loopback `StubHTTPServer`'s, so the evidence is
/// the stub's own counters (peak in flight, `/barrier/{n}`, aborted requests)
/// and event logs, with stopwatches only where time is the claim.
@Suite("Chapter 4 · Concurrent web requests", .curriculum, .tags(.http), .timeLimit(.minutes(3)))
struct Chapter4 {
    // MARK: - 4.1 An asynchronous context manager

    @Test("Listing 4.1 — an async context manager waits for a client and always closes it")
    func listing4_1() async throws {
        // Book: entering suspends until a client connects, the body gets its bytes, leaving closes the connection.
        // Swift: no `async with` and no `await` in `defer`: a scoped `withAcceptedConnection { }` closes on return and throw.
        let log = EventLog()
        let received = try await serveOneClient(log: log, sending: "hello") { clients in
            try await EventLog.$current.withValue(log) {
                try await withAcceptedConnection(on: clients) { connection in
                    let message = try await readString(connection.inbound, count: 5)
                    log.record("received \(message)")
                    return message
                }
            }
        }
        #expect(received == "hello")
        try await eventually { try await log.waitFor("client read EOF") }
        let names = log.names
        #expect(names.filter { !$0.hasPrefix("client") } == ["waiting", "accepted", "received hello", "closed"])
        // The client connected only after the server was waiting, and read EOF after the body ran.
        let at = { (name: String) in names.firstIndex(of: name)! }
        #expect(at("waiting") < at("client connecting") && at("client connecting") < at("accepted"))
        #expect(at("received hello") < at("client read EOF"))
    }

    @Test("A body that throws still closes the accepted connection")
    func acceptedConnectionClosesOnThrow() async throws {
        struct BodyFailed: Error, Equatable {}
        let log = EventLog()
        await #expect(throws: BodyFailed()) {
            _ = try await serveOneClient(log: log, sending: "hello") { clients in
                try await EventLog.$current.withValue(log) {
                    try await withAcceptedConnection(on: clients) { connection -> String in
                        // Read what was sent first: closing a socket with unread bytes sends RST, not EOF.
                        _ = try await readString(connection.inbound, count: 5)
                        throw BodyFailed()
                    }
                }
            }
        }
        try await eventually { try await log.waitFor("client read EOF") }
        #expect(log.names.contains("closed"))
    }

    // MARK: - 4.2–4.3 aiohttp → AsyncHTTPClient

    @Test("Listing 4.2 — a GET through a scoped client session returns the status")
    func listing4_2() async throws {
        // Book: fetch_status GETs the page through a ClientSession and returns 200; the session closes with the block.
        // Swift: `withHTTPClient` always shuts the AsyncHTTPClient down; the body stream is drained so the connection is reused.
        try await withStubServer { stub in
            let recorder = TimingRecorder()
            let (status, notFound, escaped) = try await withHTTPClient { client in
                let status = try await timed("fetch_status", sink: .recorder(recorder)) {
                    try await fetchStatus(client: client, url: stub.url("/repos/"))
                }
                let notFound = try await fetchStatus(client: client, url: stub.url("/status/404"))
                return (status, notFound, client)
            }
            #expect(status == 200)
            #expect(notFound == 404)  // an error status is an answer, not an error
            #expect(stub.counters.perPath["/repos/"] == 1)
            #expect(recorder.events.first == .calling("fetch_status"))
            #expect(recorder.duration(of: "fetch_status") != nil)
            // After the scope the client is shut down: AHC refuses, and our layer says so by URL.
            await #expect(throws: HTTPClientError.alreadyShutdown) {
                _ = try await escaped.http.execute(HTTPClientRequest(url: stub.url("/")), timeout: .seconds(5))
            }
            await #expect(throws: WebClientError.clientShutDown(stub.url("/"))) {
                _ = try await fetchStatus(client: escaped, url: stub.url("/"))
            }
        }
    }

    @Test(
        "Listing 4.3 — total and connect timeouts; a request's own timeout beats the session's",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_3() async throws {
        // Book: a 10 ms total timeout fails the request with a TimeoutError; per-request settings override the session's.
        // Swift: AHC deadlines and connect timeouts, mapped to typed `WebClientError`s; the stub's delay makes the timeout certain.
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(timeout: u * 20)) { client in
                let slow = stub.url("/delay/\(ms(10))")
                let start = ContinuousClock.now
                await #expect(throws: WebClientError.timedOut(slow)) {
                    _ = try await fetchStatus(client: client, url: slow, timeout: u)
                }
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= u && elapsed < u * 5, "timed out after \(elapsed)")
                try await eventually { try await stub.waitUntil(aborted: 1) }  // the server saw the client give up

                #expect(try await fetchStatus(client: client, url: slow) == 200)  // the 20 u default suffices
                let twoSeconds = stub.url("/delay/\(ms(2))")
                #expect(try await fetchStatus(client: client, url: twoSeconds) == 200)
                await #expect(throws: WebClientError.timedOut(twoSeconds)) {
                    _ = try await fetchStatus(client: client, url: twoSeconds, timeout: u)
                }
            }
        }

        // Connect timeout: a listener that never accepts, with a full queue.
        let blackhole = try BlackholeListener()
        defer { blackhole.close() }
        try await withHTTPClient(configuration: .init(timeout: u * 20, connectTimeout: u * 2)) { client in
            let url = "http://127.0.0.1:\(blackhole.port)/"
            let start = ContinuousClock.now
            await #expect(throws: WebClientError.connectTimedOut(url)) {
                _ = try await fetchStatus(client: client, url: url)
            }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= u * 2 && elapsed < u * 6, "connect timed out after \(elapsed)")
        }

        // Refused: nothing listens there, and the client does not retry.
        let refusing = try RefusingPort()
        defer { refusing.close() }
        try await withHTTPClient(configuration: .init(timeout: u * 20, connectTimeout: u * 2)) { client in
            let url = "http://127.0.0.1:\(refusing.port)/"
            let start = ContinuousClock.now
            await #expect(throws: WebClientError.connectionRefused(url)) {
                _ = try await fetchStatus(client: client, url: url)
            }
            #expect(ContinuousClock.now - start < u)
        }
    }

    // MARK: - 4.4–4.5 Creating and awaiting tasks

    @Test("Listing 4.4 — creating a task and awaiting it on the spot runs the delays one after another")
    func listing4_4() async throws {
        // Book: a comprehension that creates and immediately awaits each task takes the sum of the delays.
        // Swift: the same mistake with `Task { }` + `.value` in a loop; no concurrency either.
        let log = EventLog()
        let start = ContinuousClock.now
        let results = try await EventLog.$current.withValue(log) {
            var results: [Int] = []
            for seconds in [3, 2, 1] {
                results.append(try await Task { try await delay(seconds) }.value)
            }
            return results
        }
        let elapsed = ContinuousClock.now - start
        #expect(results == [3, 2, 1])
        #expect(log.names == ["start(3)", "end(3)", "start(2)", "end(2)", "start(1)", "end(1)"])
        #expect(elapsed >= u * 6)
    }

    @Test("Listing 4.5 — creating every task first, then awaiting, runs them concurrently", .tags(.timing))
    func listing4_5() async throws {
        // Book: create all tasks, then await them: ~3 s (the longest) instead of 6 s.
        // Swift: the same with unstructured `Task`s; `gather` is the structured form (leftovers cancelled on failure).
        let delays = [3, 2, 1]

        func check(_ log: EventLog, _ results: [Int], _ elapsed: Duration, _ form: String) {
            let names = log.names
            let firstEnd = names.firstIndex { $0.hasPrefix("end") }!
            #expect(names.prefix(firstEnd).filter { $0.hasPrefix("start") }.count == 3, "\(form): \(names)")
            #expect(names.filter { $0.hasPrefix("end") } == ["end(1)", "end(2)", "end(3)"], "\(form)")
            #expect(results == [3, 2, 1], "\(form)")
            #expect(elapsed >= u * 3 && elapsed < u * 4.5, "\(form) took \(elapsed)")
        }

        let log = EventLog()
        var start = ContinuousClock.now
        let results = try await EventLog.$current.withValue(log) {
            let tasks = delays.map { s in Task { try await delay(s) } }
            var results: [Int] = []
            for task in tasks { results.append(try await task.value) }
            return results
        }
        check(log, results, ContinuousClock.now - start, "Task")

        let gatherLog = EventLog()
        start = ContinuousClock.now
        let gathered = try await EventLog.$current.withValue(gatherLog) {
            try await gather(delays.map { s in { @Sendable in try await delay(s) } })
        }
        check(gatherLog, gathered, ContinuousClock.now - start, "gather")
    }

    // MARK: - 4.6 gather

    @Test("Listing 4.6 — gather runs every request at once and returns results in argument order")
    func listing4_6() async throws {
        // Book: gather sends all requests together and returns results in the order passed (4.7: [3, 1]), not finish order.
        // Swift: `gather` over a task group, each result stored at its index; the pool allows 100 connections like aiohttp's.
        let n = 100
        try await withStubServer { stub in
            let responses = try await withHTTPClient { client in
                try await gather((0..<n).map { i in
                    { @Sendable in
                        // A 504 (barrier timed out) throws, so a sequential gather fails after one timeout.
                        let r = try await fetch(client: client, url: stub.url("/barrier/\(n)?key=4.6&id=\(i)")).raiseForStatus()
                        return (status: r.status, id: r.headers.first(name: "X-Request-Id"))
                    }
                })
            }
            // The barrier opens only when all 100 wait at once: a sequential gather would get 504s.
            #expect(responses.map { $0.status } == Array(repeating: 200, count: n))
            #expect(responses.map { $0.id } == (0..<n).map { "\($0)" })
            #expect(stub.counters.peakInFlight == n)
            #expect(stub.counters.barrierTimeouts == 0)
        }

        // The book's 4.7: results in argument order, though delay(1) ends first.
        let log = EventLog()
        let results = try await EventLog.$current.withValue(log) {
            try await gather([{ @Sendable in try await delay(3) }, { @Sendable in try await delay(1) }])
        }
        #expect(results == [3, 1])
        #expect(log.index(of: "end(1)")! < log.index(of: "end(3)")!)
    }

    @Test(
        "Listing 4.6a — gather with return_exceptions, and without: the first error cancels the rest",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_6a() async throws {
        // Book: with return_exceptions=True gather returns [200, <error>]; without, the first error propagates and the rest keep running.
        // Swift: `gatherResults` for the first; the throwing `gather` cancels the others (structured: no orphans) — asserted here.
        let bad = "error://example.com"
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let results = await gatherResults([
                    { @Sendable in try await fetchStatus(client: client, url: stub.url("/")) },
                    { @Sendable in try await fetchStatus(client: client, url: bad) },
                ])
                #expect(try results[0].get() == 200)
                #expect(throws: WebClientError.unsupportedURL(bad)) { try results[1].get() }
                let statuses = results.compactMap { try? $0.get() }
                let errors = results.compactMap { r -> (any Error)? in if case .failure(let e) = r { e } else { nil } }
                #expect(statuses == [200] && errors.count == 1)

                stub.resetCounters()
                let slow = stub.url("/delay/\(ms(5))")
                let start = ContinuousClock.now
                await #expect(throws: WebClientError.unsupportedURL(bad)) {
                    _ = try await gather([
                        { @Sendable in try await fetchStatus(client: client, url: slow) },
                        { @Sendable in
                            // Fail only once the slow request reached the stub, so its cancellation is visible there.
                            try await stub.waitUntil(started: 1)
                            return try await fetchStatus(client: client, url: bad)
                        },
                    ])
                }
                #expect(ContinuousClock.now - start < u)
                try await eventually { try await stub.waitUntil(aborted: 1) }
                #expect(stub.counters.completed == 0)  // the slow request never finished
            }
        }
    }

    // MARK: - 4.8–4.9 as_completed

    @Test(
        "Listing 4.8 — as_completed yields each result as soon as it finishes",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_8() async throws {
        // Book: results appear at ~1, ~3 and ~7 s in completion order; the whole run lasts as long as the slowest.
        // Swift: `asCompleted` is a task group read in completion order; each element carries its argument index.
        let delays = [7, 1, 3]
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let start = ContinuousClock.now
                var arrivals: [(delay: Int, status: Int, at: Duration)] = []
                let operations = delays.map { d in
                    { @Sendable in try await fetchStatus(client: client, url: stub.url("/"), delay: d) }
                }
                for await completion in asCompleted(operations) {
                    arrivals.append((delays[completion.index], try completion.get(), ContinuousClock.now - start))
                }
                let total = ContinuousClock.now - start
                #expect(arrivals.map { $0.delay } == [1, 3, 7])
                #expect(arrivals.allSatisfy { $0.status == 200 })
                for a in arrivals { #expect(a.at >= u * a.delay, "delay \(a.delay) arrived at \(a.at)") }
                #expect(arrivals.map { $0.at } == arrivals.map { $0.at }.sorted())
                #expect(total >= u * 7 && total < u * 9, "total \(total)")
            }
        }
    }

    @Test(
        "Listing 4.9 — as_completed with a timeout: the slow ones time out (and, in Swift, are cancelled)",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_9() async throws {
        // Book: the 1 s fetch succeeds, the two 10 s ones raise TimeoutError at ~3 s and keep running until the loop closes.
        // Swift: the leftovers are children of the sequence's task group, so they are cancelled at the deadline: no orphans.
        let delays = [1, 10, 10]
        let log = EventLog()
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let start = ContinuousClock.now
                var outcomes: [(index: Int, result: Result<Int, any Error>, at: Duration)] = []
                let operations = delays.enumerated().map { i, d in
                    { @Sendable in
                        do {
                            return try await fetchStatus(client: client, url: stub.url("/?id=\(i)"), delay: d)
                        } catch is CancellationError {
                            log.record("cancelled")
                            throw CancellationError()
                        }
                    }
                }
                try await EventLog.$current.withValue(log) {
                    for await completion in asCompleted(operations, timeout: u * 3) {
                        outcomes.append((completion.index, completion.result, ContinuousClock.now - start))
                    }
                    try await eventually { try await log.waitFor("cancelled", count: 2) }
                }
                let total = ContinuousClock.now - start
                try #require(outcomes.count == 3)
                #expect(outcomes[0].index == 0)
                #expect(try outcomes[0].result.get() == 200)
                for timedOut in outcomes.dropFirst() {
                    #expect(throws: TimeoutError.self) { try timedOut.result.get() }
                    #expect(timedOut.at >= u * 3 && timedOut.at < u * 4.5, "timeout at \(timedOut.at)")
                }
                #expect(Set(outcomes.map { $0.index }) == [0, 1, 2])
                #expect(!log.names.contains("end(10)"))  // the client-side delay never finished
                #expect(stub.counters.started == 1)
                #expect(total < u * 5)
            }
        }
    }

    @Test("Leaving an as_completed loop early cancels the operations still running")
    func asCompletedStopsEarly() async throws {
        // Book: asyncio's as_completed leaves unfinished tasks running when the loop is left.
        // Swift: the operations are children of the sequence's task group; dropping the sequence cancels them.
        let log = EventLog()
        let operations = (0..<3).map { i in
            { @Sendable () async throws -> Int in
                if i == 0 { return 0 }
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch {
                    log.record("cancelled(\(i))")
                    throw error
                }
                return i
            }
        }
        var first: Int?
        for await completion in asCompleted(operations) {
            first = try completion.get()
            break  // leave the loop with two operations still running
        }
        #expect(first == 0)
        try await eventually { try await log.waitFor(prefix: "cancelled(", count: 2) }
        #expect(Set(log.names) == ["cancelled(1)", "cancelled(2)"])
    }

    // MARK: - 4.10–4.15 wait

    @Test("Listing 4.10 — wait's default returns when every task is done", .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_10() async throws {
        // Book: asyncio.wait (ALL_COMPLETED) returns 2 done, 0 pending; wait never raises, it hands back tasks.
        // Swift: `wait` on unstructured `TaskHandle`s; arrays in completion order instead of sets.
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let start = ContinuousClock.now
                let handles = ["/", "/repos/"].map { path in
                    createTask { try await fetchStatus(client: client, url: stub.url(path)) }
                }
                let (done, pending) = await wait(handles)
                #expect(done.count == 2)
                #expect(pending.isEmpty)
                let statuses = try done.map { try $0.result() }
                #expect(statuses.sorted() == [200, 200])
                #expect(ContinuousClock.now - start < u * 2)
            }
        }
    }

    @Test("Listing 4.11 — wait puts failed tasks in done; the error is read from the handle")
    func listing4_11() async throws {
        // Book: both tasks end up done; wait raises nothing; exception() gives the failure, awaiting it re-raises.
        // Swift: `TaskHandle.error` / `result()` on finished handles; `value` rethrows.
        let bad = "python://bad"
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let good = createTask { try await fetchStatus(client: client, url: stub.url("/")) }
                let failing = createTask { try await fetchStatus(client: client, url: bad) }
                let (done, pending) = await wait([good, failing])
                #expect(done.count == 2 && pending.isEmpty)
                let failed = try done.filter { try $0.error != nil }
                #expect(failed.count == 1)
                #expect(try failed.first?.error as? WebClientError == .unsupportedURL(bad))
                #expect(try good.error == nil)
                #expect(try good.result() == 200)
                await #expect(throws: WebClientError.unsupportedURL(bad)) { _ = try await failing.value }
            }
        }
    }

    @Test(
        "Listing 4.12 — wait(FIRST_EXCEPTION) returns at the first failure; the rest are cancelled by hand",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_12() async throws {
        // Book: wait returns as soon as the bad request fails (1 done, 2 pending); cancelling the others saves the 3 s.
        // Swift: the same: `wait` cancels nothing itself; `cancel()` on the pending handles does.
        let bad = "python://bad"
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let start = ContinuousClock.now
                let handles = [
                    createTask { try await fetchStatus(client: client, url: stub.url("/"), delay: 3) },
                    createTask { try await fetchStatus(client: client, url: bad) },
                    createTask { try await fetchStatus(client: client, url: stub.url("/"), delay: 3) },
                ]
                let (done, pending) = await wait(handles, returnWhen: .firstException)
                #expect(ContinuousClock.now - start < u * 1.5)
                #expect(done.count == 1)
                let firstError = try done.first?.error
                #expect(firstError as? WebClientError == .unsupportedURL(bad))
                #expect(pending.count == 2)
                #expect(pending.allSatisfy { !$0.isDone && !$0.cancellationRequested })  // wait cancelled nothing
                for handle in pending { handle.cancel() }
                for handle in pending {
                    await #expect(throws: CancellationError.self) { _ = try await handle.value }
                    #expect(handle.isCancelled)
                }
                #expect(stub.counters.started == 0)  // cancelled during their client-side sleep
            }
        }
    }

    @Test(
        "Listing 4.13 — wait(FIRST_COMPLETED) returns as soon as one task is done",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_13() async throws {
        // Book: wait returns once at least one task is done: typically 1 done and the rest pending.
        // Swift: tasks truly run in parallel, so spaced delays make "1 done" certain; pending handles must be cleaned up.
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let start = ContinuousClock.now
                let fast = createTask { try await fetchStatus(client: client, url: stub.url("/")) }
                let slow = (0..<3).map { i in
                    createTask { try await fetchStatus(client: client, url: stub.url("/delay/\(ms(4))?id=\(i)")) }
                }
                let (done, pending) = await wait([fast] + slow, returnWhen: .firstCompleted)
                #expect(ContinuousClock.now - start < u * 2)
                #expect(done.first === fast)
                #expect(try fast.result() == 200)
                try #require(done.count == 1 && pending.count == 3)

                try await eventually { try await stub.waitUntil(started: 4) }  // the slow ones are at the server…
                for handle in pending { handle.cancel() }
                for handle in pending {
                    await #expect(throws: CancellationError.self) { _ = try await handle.value }
                }
                try await eventually { try await stub.waitUntil(aborted: 3) }  // …and it saw each connection closed
                #expect(stub.counters.completed == 1)
            }
        }
    }

    @Test(
        "Listing 4.14 — a wait(FIRST_COMPLETED) loop handles every result as it lands",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_14() async throws {
        // Book: each result is handled as soon as it arrives; the loop ends when all four are done; total ≈ the slowest.
        // Swift: the same loop; idiomatically `for try await` over a task group (`asCompleted`):
        //     for await c in asCompleted(operations) { handle(try c.get()) }
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let start = ContinuousClock.now
                var pending = [4, 2, 1, 3].map { k in
                    createTask { (k, try await fetchStatus(client: client, url: stub.url("/delay/\(ms(Double(k)))"))) }
                }
                var rounds: [(done: Int, pending: Int)] = []
                var handled: [Int] = []
                while !pending.isEmpty {
                    let (done, stillPending) = await wait(pending, returnWhen: .firstCompleted)
                    rounds.append((done.count, stillPending.count))
                    for handle in done {
                        let (k, status) = try handle.result()
                        #expect(status == 200)
                        handled.append(k)
                    }
                    pending = stillPending
                }
                let total = ContinuousClock.now - start
                #expect(rounds.map { $0.done } == [1, 1, 1, 1])
                #expect(rounds.map { $0.pending } == [3, 2, 1, 0])
                #expect(handled == [1, 2, 3, 4])
                #expect(total >= u * 4 && total < u * 7, "total \(total)")
            }
        }
    }

    @Test(
        "Listing 4.15 — wait with a timeout neither raises nor cancels",
        .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing4_15() async throws {
        // Book: after the 1 s timeout, 2 done and 1 pending; the slow task keeps running (4.16 then cancels it).
        // Swift: the same, because `wait` works on unstructured handles — contrast 4.9, where the structured `asCompleted` cancels.
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let start = ContinuousClock.now
                let handles = [
                    createTask { try await fetchStatus(client: client, url: stub.url("/?id=a")) },
                    createTask { try await fetchStatus(client: client, url: stub.url("/?id=b")) },
                    createTask { try await fetchStatus(client: client, url: stub.url("/?id=slow"), delay: 3) },
                ]
                let (done, pending) = await wait(handles, timeout: u)
                let returned = ContinuousClock.now - start
                #expect(done.count == 2 && pending.count == 1)
                #expect(returned >= u && returned < u * 2, "wait returned at \(returned)")
                #expect(pending.first === handles[2])
                #expect(!handles[2].isDone && !handles[2].cancellationRequested)
                #expect(try await handles[2].value == 200)
                let total = ContinuousClock.now - start
                #expect(total >= u * 3 && total < u * 4.5, "slow task finished at \(total)")
                try await eventually { try await stub.waitUntil(completed: 3) }

                // The book's 4.16: cancel the pending task instead; its request is never sent.
                stub.resetCounters()
                let again = [
                    createTask { try await fetchStatus(client: client, url: stub.url("/")) },
                    createTask { try await fetchStatus(client: client, url: stub.url("/"), delay: 3) },
                ]
                let (_, stillPending) = await wait(again, timeout: u)
                #expect(stillPending.count == 1)
                for handle in stillPending { handle.cancel() }
                await #expect(throws: CancellationError.self) { _ = try await again[1].value }
                #expect(stub.counters.started == 1)
            }
        }
    }

    // MARK: - Bad input: typed errors naming the URL, never a hang

    @Test("An unreachable port is refused at once")
    func refusedConnection() async throws {
        let refusing = try RefusingPort()
        defer { refusing.close() }
        let url = "http://127.0.0.1:\(refusing.port)/repos/"
        try await withHTTPClient { client in
            let error = await #expect(throws: WebClientError.self) { _ = try await fetchStatus(client: client, url: url) }
            #expect(error == .connectionRefused(url))
            #expect(error?.description.contains(url) == true)
        }
    }

    @Test("A connection reset without a response is a typed error")
    func connectionReset() async throws {
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let url = stub.url("/reset")
                let error = await #expect(throws: WebClientError.self) { _ = try await fetch(client: client, url: url) }
                #expect(error == .connectionReset(url))
                #expect(error?.description.contains(url) == true)
                // The client stays usable.
                let status = try await fetchStatus(client: client, url: stub.url("/"))
                #expect(status == 200)
            }
        }
    }

    @Test("A response that never comes times out, and the server sees the client leave")
    func hangTimesOut() async throws {
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let url = stub.url("/hang")
                // 1 s (20 u): long enough that, even on a loaded machine, the request reaches the
                // stub before the deadline (a 2 u deadline once expired while still connecting).
                let error = await #expect(throws: WebClientError.self) { _ = try await fetch(client: client, url: url, timeout: u * 20) }
                #expect(error == .timedOut(url))
                #expect(error?.description.contains(url) == true)
                try await eventually { try await stub.waitUntil(aborted: 1) }
            }
        }
    }

    @Test("A 500 is a status, and raiseForStatus turns it into a typed error")
    func serverError() async throws {
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let url = stub.url("/status/500")
                #expect(try await fetchStatus(client: client, url: url) == 500)
                let response = try await fetch(client: client, url: url)
                #expect(response.status == 500)
                #expect(throws: WebClientError.httpStatus(url, 500)) { try response.raiseForStatus() }
                #expect(WebClientError.httpStatus(url, 500).description.contains(url))
            }
        }
    }

    @Test("Invalid and unsupported URLs fail before any I/O", arguments: [
        ("error://example.com", WebClientError.unsupportedURL("error://example.com")),
        ("http://", WebClientError.invalidURL("http://")),
        ("not a url", WebClientError.invalidURL("not a url")),
    ])
    func invalidURL(url: String, expected: WebClientError) async throws {
        try await withHTTPClient { client in
            let error = await #expect(throws: WebClientError.self) { _ = try await fetch(client: client, url: url) }
            #expect(error == expected)
            #expect(error?.description.contains(url) == true)
        }
    }

    @Test("fetch follows redirects, reads headers and bodies, limits sizes; HEAD reads no body")
    func fetchDetails() async throws {
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let redirected = try await fetch(client: client, url: stub.url("/redirect?to=/about/"))
                #expect(redirected.status == 200)
                #expect(redirected.url == stub.url("/about/"))
                #expect(stub.counters.perPath["/about/"] == 1)

                let bytes = try await fetch(client: client, url: stub.url("/bytes/1000?id=7"))
                #expect(bytes.body.readableBytes == 1000)
                #expect(bytes.headers.first(name: "X-Request-Id") == "7")

                let big = stub.url("/bytes/1000")
                await #expect(throws: WebClientError.tooLarge(big, maxBytes: 10)) {
                    _ = try await fetch(client: client, url: big, maxBytes: 10)
                }

                let head = try await fetch(client: client, url: stub.url("/repos/"), method: .HEAD)
                #expect(head.status == 200 && head.body.readableBytes == 0)
                let probe = try await fetchHead(client: client, url: stub.url("/status/404"), method: .GET)
                #expect(probe.status == 404)

                let page = try await fetch(client: client, url: stub.url("/?id=page"))
                #expect(page.text.contains("page"))
            }
        }
    }

    @Test("Cancelling the task of an in-flight request throws CancellationError and closes the connection")
    func cancellingARequest() async throws {
        try await withStubServer { stub in
            try await withHTTPClient { client in
                let request = Task { try await fetchStatus(client: client, url: stub.url("/hang")) }
                try await eventually { try await stub.waitUntil(started: 1) }
                request.cancel()
                await #expect(throws: CancellationError.self) { _ = try await request.value }
                try await eventually { try await stub.waitUntil(aborted: 1) }
            }
        }
    }
}

// MARK: - Helpers

/// Binds a listener on 127.0.0.1, runs `server` with its stream of
/// connections while a client task connects (once the log shows `"waiting"`),
/// sends `message`, and reads until EOF (recording `"client read EOF"`).
private func serveOneClient<T: Sendable>(
    log: EventLog,
    sending message: String,
    _ server: @escaping @Sendable (AcceptedConnections) async throws -> T
) async throws -> T {
    let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .bind(host: "127.0.0.1", port: 0) { child in
            child.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
            }
        }
    let port = listener.channel.localAddress!.port!
    return try await listener.executeThenClose { clients in
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await log.waitFor("waiting")
                log.record("client connecting")
                let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
                try await client.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: message))
                    for try await _ in inbound {}  // until the server closes
                    log.record("client read EOF")
                }
                return nil
            }
            // The client must see the close even when the server side throws: let it finish first.
            let outcome: Result<T, any Error>
            do { outcome = .success(try await server(clients)) } catch { outcome = .failure(error) }
            try await group.waitForAll()
            return try outcome.get()
        }
    }
}

/// Reads exactly `count` bytes (TCP may deliver them in pieces) as UTF-8.
private func readString(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, count: Int) async throws -> String {
    var buffer = ByteBuffer()
    for try await chunk in inbound {
        buffer.writeImmutableBuffer(chunk)
        if buffer.readableBytes >= count { break }
    }
    return String(buffer: buffer)
}
