import CurriculumTesting
import Foundation
import Glibc
import NIOCore
import NIOPosix
import Parallelism
import SocketServers
import Testing
import AsyncPrimitives
import CurriculumCore
import Processes
import Threads

/// Chapter 3: sockets, the blocking, busy, selector and asyncio echo servers,
/// signals and graceful shutdown. Every server binds 127.0.0.1 port 0.
@Suite("Chapter 3 · Sockets, selectors and the echo server", .curriculum, .timeLimit(.minutes(3)))
struct Chapter3 {

    // MARK: - Blocking sockets

    @Test("Listing 3.1 — accept() blocks until a client connects and returns a new socket")
    func listing3_1() async throws {
        // Book: accept() waits for a client and returns a *new* socket plus the client's address; SO_REUSEADDR allows quick restarts.
        // Swift: same syscalls; the ~Copyable Socket closes its fd when its owner's scope ends (Python waits for the GC).
        let log = EventLog()
        let port = Locked(0)
        let peer = Locked<SocketAddress?>(nil)
        let server = spawnThread(name: "listing3_1", stackSize: 1 << 20) {
            do {
                let listener = try TCPListener(port: 0)  // socket, SO_REUSEADDR, bind, listen
                port.set(listener.port)
                log.record("listening")
                let connection = try listener.accept()  // blocks this thread until a client connects
                peer.set(connection.peer)
                log.record("accepted")
                // `connection` and `listener` go out of scope here: both sockets close.
            } catch {
                log.record("error(\(error))")
            }
        }
        try await log.waitFor("listening")
        let client = try await TestClient.connect(port.get, recordingBefore: "connect", in: log)
        await server.joined()

        #expect(log.names == ["listening", "connect", "accepted"])
        let address = try #require(peer.get)
        #expect(address.ipAddress == "127.0.0.1")
        #expect(address.port == client.localPort)  // the accepted socket's peer is this very client
        #expect(try await client.readsEOF())  // the accepted socket was closed by its owner
        #expect(await isRefused(port.get))  // and so was the listener
    }

    @Test("Listing 3.2 — reading two bytes at a time until CRLF assembles the whole message")
    func listing3_2() async throws {
        // Book: recv(2) in a loop assembles the message; CRLF ends it; an empty read means the client left.
        // Swift: recv through Glibc; every send uses MSG_NOSIGNAL, or writing to a closed peer would kill the process (SIGPIPE).
        let log = EventLog()
        let port = Locked(0)
        let writeError = Locked<SocketError?>(nil)
        let server = spawnThread(name: "listing3_2", stackSize: 1 << 20) {
            do {
                let listener = try TCPListener(port: 0)
                port.set(listener.port)
                log.record("listening")
                for _ in 0..<2 {
                    let connection = try listener.accept()
                    let message = try connection.socket.readUntil(Array("\r\n".utf8), chunkSize: 2) { chunk in
                        log.record("chunk(\(String(decoding: chunk, as: UTF8.self)))")
                    }
                    log.record("message(\(String(decoding: message, as: UTF8.self)))")
                    do {
                        for _ in 0..<20 { try connection.socket.sendAll(message) }  // the seed's sendall
                    } catch let error as SocketError {
                        writeError.set(error)  // the second client is gone: an error, not SIGPIPE
                    }
                }
            } catch {
                log.record("error(\(error))")
            }
        }
        try await log.waitFor("listening")

        // A client sends "testing\r\n" in three writes, and gets it echoed.
        let client = try await TestClient.connect(port.get)
        for part in ["tes", "ti", "ng\r\n"] { try await client.send(part) }
        #expect(try await client.read(9) == Array("testing\r\n".utf8))
        try await log.waitFor(prefix: "message(testing")
        let chunks = log.names.filter { $0.hasPrefix("chunk(") }.map { String($0.dropFirst(6).dropLast()) }
        #expect(chunks.allSatisfy { (1...2).contains($0.utf8.count) })
        #expect(chunks.joined() == "testing\r\n")

        // A client that sends "abc" and closes: the server returns the partial message.
        let partial = try await TestClient.connect(port.get)
        try await partial.send("abc")
        partial.close()
        await server.joined()
        #expect(log.names.contains("message(abc)"))
        #expect(writeError.get == .brokenPipe || writeError.get == .connectionReset)
    }

    @Test("Listing 3.3 — one blocking thread cannot serve several clients")
    func listing3_3() async throws {
        // Book: while the server waits in accept() nobody is served; while it waits in recv() on one client, the others wait.
        // Swift: identical blocking syscalls; only stopping differs: shutdown() wakes the thread, task cancellation cannot.
        let server = try BlockingEchoServer(mode: .naiveMultiClient)
        let log = server.log

        let a = try await TestClient.connect(server.port)
        try await a.send("a1\r\n")
        #expect(try await a.readLine() == "a1\r\n")
        try await a.send("a2\r\n")
        #expect(await a.staysSilent(for: u * 3))  // the server sits in accept()

        let b = try await TestClient.connect(server.port)  // releases accept() ...
        #expect(try await a.readLine() == "a2\r\n")  // ... so A's second line is finally served
        #expect(log.position("accept(\(b.localPort))") < log.position("echo(\(a.localPort): a2)"))
        try await b.send("b1\r\n")
        #expect(try await b.readLine() == "b1\r\n")
        try await b.send("b2\r\n")
        #expect(await b.staysSilent(for: u * 3))  // accept() again

        let c = try await TestClient.connect(server.port)  // the server now blocks in recv(A)
        #expect(await b.staysSilent(for: u * 3))  // B still waits: A says nothing
        try await a.send("a3\r\n")
        #expect(try await a.readLine() == "a3\r\n")
        #expect(try await b.readLine() == "b2\r\n")  // served only after A spoke
        #expect(log.position("accept(\(c.localPort))") < log.position("echo(\(a.localPort): a3)"))
        #expect(log.position("echo(\(a.localPort): a3)") < log.position("echo(\(b.localPort): b2)"))

        await server.stop()  // shutdown() on every socket wakes the blocked recv(C); the thread ends
        #expect(server.serverThread.isFinished)
        #expect(await isRefused(server.port))
    }

    @Test("The blocking server serves the second client only after the first disconnects")
    func blockingServerServesOneClientAtATime() async throws {
        let server = try BlockingEchoServer(mode: .oneClientAtATime)
        let log = server.log
        let first = try await TestClient.connect(server.port)
        try await first.send("one\n")
        #expect(try await first.readLine() == "one\n")

        let second = try await TestClient.connect(server.port)
        try await second.send("two\n")
        #expect(await second.staysSilent(for: Book.second * 3))  // queued behind the first client
        first.close()
        #expect(try await second.readLine() == "two\n")
        #expect(log.position("closed(\(first.localPort))") < log.position("accept(\(second.localPort))"))
        #expect(log.position("accept(\(second.localPort))") < log.position("echo(\(second.localPort): two)"))
        await server.stop()
    }

    // MARK: - Non-blocking sockets

    @Test("Listing 3.5 — a non-blocking accept() with no client raises EAGAIN at once", .bookSecond(.milliseconds(100)))
    func listing3_5() async throws {
        // Book: the naive non-blocking server crashes at once with BlockingIOError ("Resource temporarily unavailable").
        // Swift: accept/recv return -1 with errno EAGAIN (11 on Linux); the wrapper throws SocketError.wouldBlock.
        let server = try NaiveNonBlockingServer()
        let start = ContinuousClock.now
        #expect(throws: SocketError.wouldBlock) { try server.run() }
        #expect(ContinuousClock.now - start < Book.second)
        #expect(EAGAIN == 11 && EWOULDBLOCK == EAGAIN)

        // A connected, non-blocking socket with nothing to read: recv raises too, instead of waiting.
        let client = try Socket.connect(port: server.port)
        try client.setNonBlocking()
        #expect(throws: SocketError.wouldBlock) { try client.recv(maxBytes: 2) }
    }

    @Test("Listing 3.6 — ignoring BlockingIOError serves clients but spins a core while idle", .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing3_6() async throws {
        // Book: catching BlockingIOError makes the server work for several clients, but the loop never waits: 100 % CPU idle.
        // Swift: the same loop on a dedicated thread; its CPU clock (pthread_getcpuclockid) is the evidence.
        let server = try BusyPollingEchoServer()
        let a = try await TestClient.connect(server.port)
        let b = try await TestClient.connect(server.port)
        for round in 1...2 {
            try await a.send("a\(round)\r\n")
            try await b.send("b\(round)\r\n")
            #expect(try await a.readLine() == "a\(round)\r\n")
            #expect(try await b.readLine() == "b\(round)\r\n")
        }

        // Idle: nobody sends anything for 4 book seconds.
        let window = Book.second * 4
        let cpuBefore = server.serverThread.cpuTime
        let passesBefore = server.passes
        let meter = LoadMeter()
        let start = ContinuousClock.now
        try await Task.sleep(for: window)  // the measurement window itself, not a synchronisation
        let wall = ContinuousClock.now - start
        let busy = (server.serverThread.cpuTime - cpuBefore) / wall
        let passes = server.passes - passesBefore
        // What other programs and the hypervisor took meanwhile, in cores.
        let load = meter.read()

        // The flaw the code implies: a line split across two passes loses its first part.
        try await a.send("ab")
        try await server.log.waitFor("discarded(\(a.localPort): ab)")
        try await a.send("c\r\n")
        #expect(try await a.readLine() == "c\r\n")

        await server.stop()
        #expect(await isRefused(server.port))

        // Spinning, counted: a loop that waited would make 3–5 passes in this window (3.7's
        // selector ticks); 1,000 is 200× that, a claim about spinning, not about speed (a
        // --sanitize=thread build makes ~9,000, a debug build far more). Holds on a busy machine.
        #expect(passes >= 1_000, "\(passes) passes of the loop in 4 idle book seconds")
        // Spinning, in CPU: ~100 % of a core while idle (the selector of 3.7 stays under 10 %);
        // the spec's bound is 50 %. Only other programs or the hypervisor taking the cores can push a
        // spinning thread below it: then the claim is inconclusive and the test skips, saying why
        // (under CI=true a failure when other programs took them, see skipForLoad).
        let figures = "the busy loop used \(Int(busy * 100)) % of a core while idle; \(load)"
        if busy < 0.5 && load.total >= 0.5 {
            try skipForLoad(figures, byHypervisor: load.otherPrograms < 0.5)
        } else {
            #expect(busy >= 0.5, "\(figures)")
        }
    }

    // MARK: - Selectors

    @Test("Listing 3.7 — a selector serves many clients on one thread and idles at no CPU cost", .tags(.timing), .bookSecond(.milliseconds(100)))
    func listing3_7() async throws {
        // Book: register sockets with a selector, wait in select(timeout=1), handle only ready sockets: one thread, ~0 % CPU idle.
        // Swift: hand-written epoll loop (what NIO does inside). The book never unregisters a closed client, whose EOF then
        // spins the loop forever; the port unregisters it, and the "registered drops by one" check would fail on a faithful copy.
        let log = EventLog()
        let server = try SelectorEchoServer(selectTimeout: Book.second, log: log)
        var clients: [TestClient] = []
        for _ in 0..<20 { clients.append(try await TestClient.connect(server.port)) }
        for round in 0..<5 {  // interleaved: every client's line 0, then every client's line 1, ...
            for (i, client) in clients.enumerated() { try await client.send("client \(i) line \(round)\n") }
        }
        for (i, client) in clients.enumerated() {
            for round in 0..<5 { #expect(try await client.readLine() == "client \(i) line \(round)\n") }
        }
        #expect(server.stats.handlerThreads == [server.serverThread.threadID])  // one thread handled every event
        #expect(server.registeredCount == 20)

        // A client leaves: the server unregisters and closes it.
        let leaving = clients.removeLast()
        leaving.close()
        try await log.waitFor("closed(\(leaving.localPort))")
        #expect(server.registeredCount == 19)

        // Idle for 4 book seconds: almost no CPU; epoll_wait's 1-book-second timeout ticks 3–5 times.
        let window = Book.second * 4
        let ticksBefore = server.stats.idleTicks
        let cpuBefore = server.serverThread.cpuTime
        let start = ContinuousClock.now
        try await Task.sleep(for: window)  // the measurement window itself
        let busy = (server.serverThread.cpuTime - cpuBefore) / (ContinuousClock.now - start)
        let ticks = server.stats.idleTicks - ticksBefore
        #expect(busy < 0.10, "the selector loop used \(Int(busy * 100)) % of a core while idle")
        #expect((3...5).contains(ticks), "\(ticks) 'no events' ticks in 4 book seconds")

        await server.stop()
        for client in clients { #expect(try await client.readsEOF()) }
        #expect(await isRefused(server.port))
    }

    // MARK: - asyncio (SwiftNIO)

    @Test("Listing 3.8 — the async echo server serves clients concurrently and stops on cancellation")
    func listing3_8() async throws {
        // Book: one listener task plus one echo task per client; many clients on one thread, code that reads like blocking code.
        // Swift: NIOAsyncChannel + a discarding task group, one child task per connection; cancelling the server cancels them all.
        let log = EventLog()
        let server = try await AsyncEchoServer.bind(log: log)
        let serving = Task { try await server.run() }
        defer { serving.cancel() }

        let silent = try await TestClient.connect(server.port)  // A connects and says nothing
        try await log.waitFor("accept(\(silent.localPort))")
        let talker = try await TestClient.connect(server.port)  // B is served while A is still connected
        try await talker.send("hello\n")
        #expect(try await talker.readLine() == "hello\n")

        // 100 concurrent clients, each gets exactly its own bytes back.
        let load = await EchoLoadClient.run(port: server.port, connections: 100, roundTrips: 3, holdAfterFirstEcho: true)
        #expect(load.connected == 100 && load.failed == 0)
        #expect(load.completedRoundTrips == 300 && load.mismatches == 0)
        #expect(server.stats.peakActive >= 102)

        // A client that leaves mid-line disturbs nobody.
        let quitter = try await TestClient.connect(server.port)
        try await quitter.send("half a li")
        try await log.waitFor("accept(\(quitter.localPort))")  // (a reset before accept() is not a connection yet)
        quitter.reset()
        try await log.waitFor("closed(\(quitter.localPort))")
        try await talker.send("still here\n")
        #expect(try await talker.readLine() == "still here\n")

        // Cancel the server: it ends promptly, every client reads EOF, the port is free again.
        let start = ContinuousClock.now
        serving.cancel()
        _ = await serving.result
        #expect(ContinuousClock.now - start < Book.second * 2)
        #expect(try await silent.readsEOF())
        #expect(try await talker.readsEOF())
        #expect(nothingListens(on: server.port))
    }

    @Test("Listing 3.8 — on a one-thread event loop the whole async server is one thread, as asyncio's")
    func listing3_8OneThread() async throws {
        // Book: the event loop runs every echo task on the one thread that also waits for the sockets.
        // Swift: tasks normally run on the cooperative pool, away from NIO's I/O thread; the server gives each
        // connection's task its channel's event loop as task executor, so a one-thread group is the whole server.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loopThread = try await group.next().submit { currentThreadID() }.get()
        let server = try await AsyncEchoServer.bind(group: group)
        let serving = Task { try await server.run() }

        let load = await EchoLoadClient.run(port: server.port, connections: 20, roundTrips: 5, holdAfterFirstEcho: true)
        #expect(load.completedRoundTrips == 100 && load.mismatches == 0)
        #expect(server.stats.accepted == 20)
        #expect(server.stats.handlerThreads == [loopThread], "every connection's task ran on the loop's thread")

        serving.cancel()
        _ = await serving.result
        try await group.shutdownGracefully()
    }

    // MARK: - Signals and graceful shutdown (child processes)

    @Test("Listing 3.9 — SIGINT cancels every task long before the delay ends", .tags(.processes, .timing), .bookSecond(.milliseconds(100)))
    func listing3_9() async throws {
        // Book: a SIGINT handler cancels asyncio.all_tasks(); the 10 s delay ends at once with CancelledError.
        // Swift: no task registry; all work sits under one root task that the signal cancels. In a child process, so the
        // test runner keeps its own Ctrl-C.
        let child = try EchoServerChild(["signal-demo", "--delay", "10", "--tasks", "3"])
        defer { child.kill() }
        try await child.events.waitFor("out: ready")  // the handler is installed
        let start = ContinuousClock.now
        child.send(SIGINT)
        let status = try await child.waitForExit()
        // Timed to the child's exit, as the claim is. (Under --sanitize=thread, CLinux tells
        // sanitized children to skip the runtime's 1 s pause at exit, so this holds there too.)
        let elapsed = ContinuousClock.now - start

        let out = child.lines("out")
        #expect(out.prefix(3) == ["ready", "got SIGINT", "cancelling 3 tasks"])
        #expect(out.filter { $0 == "delay cancelled" }.count == 3)
        #expect(!out.contains("delay finished"))
        #expect(status == 130)  // 128 + SIGINT
        #expect(elapsed < Book.second * 3, "exited \(elapsed) after SIGINT; the delay was 10 s")
    }

    @Test("Listing 3.10 — graceful shutdown: the listener closes, open connections get a grace period", .tags(.processes, .timing), .bookSecond(.milliseconds(100)))
    func listing3_10() async throws {
        // Book: on SIGINT/SIGTERM, every echo task gets up to 2 s to finish; a failing handler closes only its connection.
        // Swift: a ServiceGroup; the listener closes first (the book's keeps accepting), one shared deadline (the book
        // waits for each task in turn: N idle clients delay exit by N × 2 s).
        let grace = Book.second * 5
        let (child, port) = try await EchoServerChild.startServer(
            ["--mode", "async", "--port", "0", "--grace-ms", "\(grace.milliseconds)"])
        defer { child.kill() }

        let a = try await TestClient.connect(port)
        let b = try await TestClient.connect(port)
        let c = try await TestClient.connect(port)
        for client in [b, c] {
            try await client.send("hi\n")
            #expect(try await client.readLine() == "hi\n")
        }
        try await a.send("boom\n")  // A's handler fails ...
        #expect(try await a.readsEOF())  // ... only A's connection closes
        try await child.events.waitFor(prefix: "err: ")
        try await child.events.waitUntil { $0.contains { $0.name.contains("connection handler failed") && $0.name.contains("boom") } }
        try await b.send("still served\n")
        #expect(try await b.readLine() == "still served\n")

        let start = ContinuousClock.now
        child.send(SIGTERM)
        try await child.events.waitUntil { $0.contains { $0.name.contains("listener closed") } }
        #expect(await isRefused(port))  // late clients are refused
        try await b.send("in the grace period\n")
        #expect(try await b.readLine() == "in the grace period\n")
        #expect(try await c.readsEOF())  // idle C is cut off when the grace period ends
        let cutOff = ContinuousClock.now - start
        let status = try await child.waitForExit()
        let exited = ContinuousClock.now - start  // the claim: the process exits within [grace, 2 × grace)
        #expect(status == 0)
        #expect(cutOff >= grace, "idle client cut off \(cutOff) after SIGTERM, before the grace \(grace) ended")
        #expect(exited >= grace && exited < grace * 2, "exited \(exited) after SIGTERM, grace \(grace)")
        #expect(nothingListens(on: port))
    }

    @Test("Graceful shutdown uses one deadline for all idle connections", .tags(.processes, .timing), .bookSecond(.milliseconds(100)))
    func gracefulShutdownSharesOneDeadline() async throws {
        let grace = Book.second * 5
        let (child, port) = try await EchoServerChild.startServer(
            ["--mode", "async", "--port", "0", "--grace-ms", "\(grace.milliseconds)"])
        defer { child.kill() }
        var idle: [TestClient] = []
        for _ in 0..<3 {
            let client = try await TestClient.connect(port)
            try await client.send("hello\n")
            #expect(try await client.readLine() == "hello\n")
            idle.append(client)
        }
        let start = ContinuousClock.now
        child.send(SIGINT)
        for client in idle { #expect(try await client.readsEOF()) }
        let status = try await child.waitForExit()
        let elapsed = ContinuousClock.now - start  // to the exit: one shared deadline, not 3 × grace
        #expect(status == 0)
        #expect(elapsed >= grace && elapsed < grace * 2, "3 idle clients: exited after \(elapsed), grace \(grace)")
        #expect(nothingListens(on: port))
    }

    @Test("The selector and blocking apps stop cleanly on SIGTERM", .tags(.processes),
          arguments: ["selector", "blocking"])
    func threadServersStopOnSignal(mode: String) async throws {
        let (child, port) = try await EchoServerChild.startServer(["--mode", mode, "--port", "0"])
        defer { child.kill() }
        let client = try await TestClient.connect(port)
        try await client.send("ping\n")
        #expect(try await client.readLine() == "ping\n")
        child.send(SIGTERM)
        #expect(try await child.waitForExit() == 0)
        #expect(try await client.readsEOF())
        #expect(nothingListens(on: port))
    }

    // MARK: - Reliability and bad input (async and selector servers)

    @Test("A last line without a newline is echoed at end of input; a line over the limit closes only its connection")
    func framingAtTheEdges() async throws {
        // Book: the asyncio server reads with sock_recv and echoes whatever arrived; it has no notion of a line limit.
        // Swift: LineFrameDecoder delivers an unterminated tail at EOF and fails a connection whose line outgrows the limit.
        let log = EventLog()
        try await withAsyncEchoServer(.init(maxLineLength: 1024), log: log) { server in
            let tail = try await TestClient.connect(server.port)
            try await tail.send("no newline")
            tail.finishSending()  // half-close: the server reads EOF, this client can still read
            #expect(try await tail.readLine() == "no newline")  // the tail, then EOF
            #expect(try await tail.readsEOF())

            let long = try await TestClient.connect(server.port)
            let good = try await TestClient.connect(server.port)
            try await long.send(Array(repeating: UInt8(ascii: "x"), count: 4096))  // no newline, 4× the limit
            #expect(try await long.readsEOF())
            try await log.waitFor(prefix: "error(\(long.localPort): line too long")
            try await good.send("still served\n")
            #expect(try await good.readLine() == "still served\n")
        }
    }

    @Test("A failing handler closes only its own connection", arguments: ServerKind.allCases)
    func failingHandlerClosesOnlyItsConnection(kind: ServerKind) async throws {
        try await withEchoServer(kind) { port, log in
            let good = try await TestClient.connect(port)
            let bad = try await TestClient.connect(port)
            try await good.send("first\n")
            #expect(try await good.readLine() == "first\n")
            try await bad.send("bo")
            try await bad.send("om\r\n")  // split by TCP: framing still sees the line "boom"
            #expect(try await bad.readsEOF())
            try await log.waitFor(prefix: "error(\(bad.localPort)")
            try await good.send("second\n")
            #expect(try await good.readLine() == "second\n")
            let another = try await TestClient.connect(port)
            try await another.send("new\n")
            #expect(try await another.readLine() == "new\n")
        }
    }

    @Test("A client that disconnects mid-message disturbs nobody", arguments: ServerKind.allCases)
    func midMessageDisconnect(kind: ServerKind) async throws {
        try await withEchoServer(kind) { port, log in
            let steady = try await TestClient.connect(port)
            let polite = try await TestClient.connect(port)
            let rude = try await TestClient.connect(port)
            try await polite.send("no newline yet")
            try await rude.send(Array(repeating: UInt8(ascii: "x"), count: 100_000))
            try await log.waitFor("accept(\(polite.localPort))")
            try await log.waitFor("accept(\(rude.localPort))")
            polite.close()
            rude.reset()
            try await log.waitFor("closed(\(polite.localPort))")
            try await log.waitFor("closed(\(rude.localPort))")
            try await steady.send("fine\n")
            #expect(try await steady.readLine() == "fine\n")
        }
    }

    @Test("Lines of 1 MiB and arbitrary binary bytes come back exactly", arguments: ServerKind.allCases)
    func bigAndBinaryLines(kind: ServerKind) async throws {
        try await withEchoServer(kind) { port, _ in
            let client = try await TestClient.connect(port)
            var generator = SystemRandomNumberGenerator()
            // 1 MiB of random bytes other than "\n", then "\n".
            var big = (0..<(1 << 20) - 1).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for i in big.indices where big[i] == 10 { big[i] = 0 }
            big.append(10)
            // Every byte value, NUL and CR included.
            let binary = (0...255).map(UInt8.init).filter { $0 != 10 } + [13, 0, 13, 10]
            try await client.send(big + binary)
            #expect(try await client.read(big.count) == big)
            #expect(try await client.read(binary.count) == binary)
        }
    }

    @Test("A client that never reads cannot make the server buffer without bound", arguments: ServerKind.allCases)
    func clientThatNeverReads(kind: ServerKind) async throws {
        try await withEchoServer(kind) { port, log in
            let hog = try await TestClient.connect(port)
            try hog.socket.setOption(SOL_SOCKET, SO_RCVBUF, 64 * 1024)
            try hog.socket.setNonBlocking()
            let line = Array(repeating: UInt8(ascii: "z"), count: 64 * 1024 - 1) + [10]
            let limit = 256 << 20
            let stall = Book.second * 2  // task-locals don't reach the blocking pool's threads
            // Push lines without ever reading, until the connection stays full for 2 book seconds.
            let sent = try await toThread { () -> Int in
                var total = 0
                var offset = 0
                while total < limit {
                    do {
                        let n = try hog.socket.send(line[offset...])
                        total += n
                        offset = (offset + n) % line.count
                    } catch SocketError.wouldBlock {
                        if !hog.socket.waitWritable(timeout: stall) { break }
                    }
                }
                return total
            }
            #expect(sent < 96 << 20, "the server took \(sent >> 20) MiB from a client that never reads")
            // Meanwhile the server serves others.
            let other = try await TestClient.connect(port)
            try await other.send("served\n")
            #expect(try await other.readLine() == "served\n")
            hog.reset()
            try await log.waitFor("closed(\(hog.localPort))")
        }
    }

    @Test("1,000 concurrent connections are all served", arguments: ServerKind.allCases)
    func thousandConnections(kind: ServerKind) async throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        try #require(limit.rlim_cur >= 2_500, "needs ulimit -n ≥ 2500 (client and server ends of 1,000 sockets)")
        try await withEchoServer(kind) { port, _ in
            let load = await EchoLoadClient.run(port: port, connections: 1_000, roundTrips: 2, holdAfterFirstEcho: true)
            #expect(load.connected == 1_000 && load.failed == 0)
            #expect(load.completedRoundTrips == 2_000 && load.mismatches == 0)
        }
    }
}
