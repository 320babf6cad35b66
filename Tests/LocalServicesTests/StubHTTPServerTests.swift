import Foundation
import Glibc
import BlockingHTTP
import CurriculumTesting
import LocalServices
import Parallelism
import Testing
import AsyncPrimitives
import CurriculumCore
import Threads

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
            // A raw client that hangs up once the stub has the request: no client
            // timeout that could expire before the request arrives. Every wait is
            // bounded, so a miss fails this test instead of holding the others.
            let hanging = try await rawRequest(stub.port, "/hang")
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(started: 1) }
            hanging.close()
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(aborted: 1) }

            let slow = try await rawRequest(stub.port, "/delay/5000")
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(started: 2) }
            slow.close()
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(aborted: 2) }
            #expect(stub.counters.completed == 0 && stub.counters.inFlight == 0)
            #expect(stub.counters.bodiesCutOff == 0, "no head was sent: nothing was cut off")
        }
    }

    @Test("Redirects answer the status asked for, with a Location")
    func redirects() async throws {
        try await withStubServer { stub in
            for (target, code) in [("/redirect?to=/about/", 302), ("/redirect/301?to=/about/", 301),
                                   ("/redirect/307?to=/about/", 307), ("/redirect/308?to=/about/", 308)] {
                let client = try await rawRequest(stub.port, target)
                let head = try await readHead(client)
                #expect(head.status == code, "\(target)")
                #expect(head.headers["location"] == "/about/", "\(target)")
                client.close()
            }
            let bad = try await rawRequest(stub.port, "/redirect/200?to=/")
            #expect(try await readHead(bad).status == 400)
            bad.close()
        }
    }

    @Test("/stall-body sends the head and half the body, then nothing; leaving cuts the body off")
    func stallBody() async throws {
        try await withStubServer { stub in
            let client = try await rawRequest(stub.port, "/stall-body?bytes=1000")
            let head = try await readHead(client)
            #expect(head.status == 200 && head.headers["content-length"] == "1000")
            #expect(try await client.read(500).count == 500)
            // A bounded negative check (poll with a timeout): the other half never comes.
            #expect(await client.staysSilent(for: .milliseconds(200)))
            #expect(stub.counters.inFlight == 1 && stub.counters.completed == 0)
            client.close()
            try await withTimeout(.seconds(10)) { try await stub.waitUntil { $0.inFlight == 0 } }
            #expect(stub.counters.aborted == 1 && stub.counters.bodiesCutOff == 1)

            // HEAD gets the whole (empty-bodied) answer.
            let probe = try await rawRequest(stub.port, "/stall-body?bytes=1000", method: "HEAD")
            #expect(try await readHead(probe).headers["content-length"] == "1000")
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(completed: 1) }
            probe.close()
            #expect(stub.counters.bodiesCutOff == 1)
        }
    }

    @Test("A body the client does not read to the end is counted cut off; a read one completed")
    func bodiesCutOff() async throws {
        try await withStubServer { stub in
            // Read in full: completed, nothing cut off.
            let whole = try await rawRequest(stub.port, "/bytes/100000")
            let head = try await readHead(whole)
            #expect(try await whole.read(Int(head.headers["content-length"] ?? "") ?? -1).count == 100_000)
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(completed: 1) }
            whole.close()
            // 16 MB cannot sit in the loopback socket buffers: after the head, the
            // client hangs up, the stub's write fails, and the body counts cut off.
            let dropped = try await rawRequest(stub.port, "/bytes/16000000")
            #expect(try await readHead(dropped).status == 200)
            dropped.close()
            try await withTimeout(.seconds(10)) { try await stub.waitUntil { $0.bodiesCutOff >= 1 } }
            let c = stub.counters
            #expect(c.completed == 2 && c.aborted == 0 && c.bodiesCutOff == 1, "answered, but not taken in full")
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

/// Sends one raw HTTP/1.1 request on a ``TestClient`` (no HTTP library in
/// between, so the test sees exactly what the stub sends, and hangs up when
/// it chooses).
private func rawRequest(_ port: Int, _ target: String, method: String = "GET") async throws -> TestClient {
    let client = try await TestClient.connect(port)
    try await client.send("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return client
}

/// Reads a response head: the status line and the headers (names lowercased).
private func readHead(_ client: TestClient) async throws -> (status: Int, headers: [String: String]) {
    let statusLine = try await client.readLine()
    let code = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? -1
    var headers: [String: String] = [:]
    while true {
        let line = try await client.readLine().trimmingCharacters(in: .whitespacesAndNewlines)
        if line.isEmpty { break }
        let kv = line.split(separator: ":", maxSplits: 1)
        if kv.count == 2 { headers[kv[0].lowercased()] = kv[1].trimmingCharacters(in: .whitespaces) }
    }
    return (code, headers)
}
