import AsyncPrimitives
import BlockingHTTP
import CurriculumTesting
import LocalServices
import Parallelism
import Testing

/// The stub every HTTP listing relies on: if its routes or counters lie, the
/// chapter tests prove nothing. Requests here go through libcurl on threads
/// off the cooperative pool (`toThread`), an HTTP client independent of the
/// AsyncHTTPClient layer the chapters test.
@Suite("Local services · HTTP stub", .curriculum, .tags(.http), .timeLimit(.minutes(3)))
struct StubHTTPServerTests {
    static func get(_ url: String, timeout: Duration = .seconds(10)) async throws -> (status: Int, body: String) {
        let (status, body) = try await toThread { try BlockingHTTP.get(url, timeout: timeout) }
        return (status, String(decoding: body, as: UTF8.self))
    }

    @Test("Pages, status codes, sizes, ids and 404s")
    func routes() async throws {
        try await withStubServer { stub in
            let home = try await Self.get(stub.url("/repos/?id=7"))
            #expect(home.status == 200 && home.body.contains("repos") && home.body.contains("id=7"))
            #expect(try await Self.get(stub.url("/status/418")).status == 418)
            let bytes = try await toThread { try BlockingHTTP.get(stub.url("/bytes/1000")) }
            #expect(bytes.status == 200 && bytes.body.count == 1000)
            #expect(try await Self.get(stub.url("/nowhere")).status == 404)
            #expect(try await Self.get(stub.url("/delay/abc")).status == 400)
            let redirected = try await Self.get(stub.url("/redirect?to=/about/"))
            #expect(redirected.status == 200 && redirected.body.contains("about"))
            stub.register("/custom.xml", contentType: "application/xml", body: "<ok/>")
            #expect(try await Self.get(stub.url("/custom.xml")).body == "<ok/>")
            let c = stub.counters
            #expect(c.started == 8 && c.completed == 8 && c.inFlight == 0 && c.aborted == 0)
            #expect(c.perPath["/repos/"] == 1 && c.perPath["/about/"] == 1)
        }
    }

    @Test("Fixtures are served, and nothing outside Fixtures/")
    func fixtures() async throws {
        try await withStubServer { (stub: StubHTTPServer) async throws in
            let readme = try await Self.get(stub.url("/fixtures/README.md"))
            #expect(readme.status == 200 && readme.body.contains("StubHTTPServer"))
            #expect(try await Self.get(stub.url("/fixtures/does-not-exist.xml")).status == 404)
            #expect(try await Self.get(stub.url("/fixtures/../Package.swift")).status != 200)
            #expect(try await Self.get(stub.url("/fixtures/%2e%2e/Package.swift")).status != 200)
        }
    }

    @Test("The barrier opens only when n requests wait at once")
    func barrier() async throws {
        try await withStubServer { stub in
            let url = stub.url("/barrier/4?key=open&timeout_ms=5000")
            let statuses = try await gather((0..<4).map { _ in { @Sendable in try await Self.get(url).status } })
            #expect(statuses == [200, 200, 200, 200])
            #expect(stub.counters.peakInFlight == 4)

            // One at a time, it never opens: each request times out with 504.
            stub.resetCounters()
            let lonely = stub.url("/barrier/2?key=lonely&timeout_ms=100")
            #expect(try await Self.get(lonely).status == 504)
            #expect(try await Self.get(lonely).status == 504)
            #expect(stub.counters.barrierTimeouts == 2 && stub.counters.peakInFlight == 1)
        }
    }

    @Test("A client that gives up is counted as aborted, without polling")
    func aborted() async throws {
        try await withStubServer { stub in
            // 3 s: ample for the request to reach the stub before the client gives up,
            // even at the start of a full run. The waits are bounded (10 s) so that a
            // miss fails this test instead of holding every other test at the gate.
            await #expect(throws: BlockingHTTPError.self) {
                try await Self.get(stub.url("/hang"), timeout: .seconds(3))
            }
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(aborted: 1) }
            await #expect(throws: BlockingHTTPError.self) {
                try await Self.get(stub.url("/delay/5000"), timeout: .seconds(3))
            }
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(aborted: 2) }
            #expect(stub.counters.completed == 0 && stub.counters.inFlight == 0)
        }
    }

    @Test("Reset, refused and black-holed connections fail as their names say")
    func connectFailures() async throws {
        try await withStubServer { (stub: StubHTTPServer) async throws in
            await #expect(throws: BlockingHTTPError.self) { try await Self.get(stub.url("/reset")) }
        }
        let refusing = try RefusingPort()
        defer { refusing.close() }
        await #expect {
            try await Self.get(refusing.baseURL + "/")
        } throws: { ($0 as? BlockingHTTPError).map { if case .connectionFailed = $0 { true } else { false } } ?? false }

        let blackhole = try BlackholeListener()
        defer { blackhole.close() }
        await #expect {
            try await Self.get(blackhole.baseURL + "/", timeout: .milliseconds(300))
        } throws: { ($0 as? BlockingHTTPError).map { if case .timedOut = $0 { true } else { false } } ?? false }
    }

    @Test("The stub keeps answering while the cooperative pool is saturated", .tags(.timing))
    func answersWhilePoolIsBusy() async throws {
        // Delays run on the stub's own event loop, so CPU tasks holding every pool thread
        // cannot stall it: a plain thread's request finishes long before the burns end.
        try await withStubServer { stub in
            let url = stub.url("/delay/20")
            let log = EventLog()
            let fetcher = spawnThread(name: "fetcher") { () -> Int in
                log.waitBlocking(for: "burning", count: Machine.cores)
                let status = (try? BlockingHTTP.get(url, timeout: .seconds(5)).status) ?? -1
                log.record("fetched")
                return status
            }
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<Machine.cores {
                    group.addTask {
                        log.record("burning")
                        burnCPU(for: .milliseconds(600))
                        log.record("burnt")
                    }
                }
            }
            #expect(try await fetcher.value == 200)
            let fetched = try #require(log.index(of: "fetched"))
            #expect(fetched < (log.index(of: "burnt") ?? .max), "\(log.names)")
        }
    }
}
