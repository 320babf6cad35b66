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
            let hanging = try RawHTTPClient(port: stub.port, path: "/hang")
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(started: 1) }
            hanging.hangUp()
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(aborted: 1) }

            let slow = try RawHTTPClient(port: stub.port, path: "/delay/5000")
            try await withTimeout(.seconds(10)) { try await stub.waitUntil(started: 2) }
            slow.hangUp()
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

/// A loopback HTTP/1.1 client on a plain socket: sends one GET, then hangs up
/// when told to (a client giving up, at a moment the test chooses).
private struct RawHTTPClient: ~Copyable {
    private let fd: Int32

    init(port: Int, path: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawClientError(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw RawClientError(call: "connect", errno: code)
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            let code = errno
            close(fd)
            throw RawClientError(call: "send", errno: code)
        }
    }

    /// Closes the connection without reading any answer.
    consuming func hangUp() {
        close(fd)
        discard self
    }

    deinit { close(fd) }
}

private struct RawClientError: Error, CustomStringConvertible {
    var call: String
    var errno: Int32
    var description: String { "\(call) failed: \(String(cString: strerror(errno)))" }
}
