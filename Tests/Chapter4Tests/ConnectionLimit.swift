import CurriculumTesting
import LocalServices
import Testing
import WebClients
import AsyncPrimitives
import CurriculumCore

/// The connection limit (aiohttp's `TCPConnector(limit=…)`): requests beyond
/// it wait in `WebClients`' own queue, not in AsyncHTTPClient's pool, because
/// AHC's pool arms a timer per queued request and SwiftNIO cancels timers by
/// a linear search — quadratic work for 1,000 queued requests. These tests
/// hold the queue to the semantics a caller relies on: the limit holds, a
/// queued request's total timeout counts its time in the queue, a cancelled
/// one leaves at once, and no failure leaks a connection slot.
extension Chapter4 {
    @Test("A connection limit queues the rest: exactly the limit in flight at the server, never more")
    func connectionLimitHolds() async throws {
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 10)) { client in
                // `/barrier/10` answers only once 10 requests wait in it at once: 200
                // of them complete only if the client keeps exactly 10 in flight
                // (one fewer and every barrier times out with 504). Bounded: a client that
                // serialised its requests would wait out 200 barrier timeouts.
                let statuses = try await eventually(within: .seconds(20)) {
                    try await gather((0..<200).map { i in
                        { @Sendable in
                            try await fetchStatus(client: client, url: stub.url("/barrier/10?key=limit&timeout_ms=2000&id=\(i)"))
                        }
                    })
                }
                #expect(statuses == Array(repeating: 200, count: 200))
                #expect(stub.counters.peakInFlight == 10)
            }
        }
    }

    @Test("A request waiting for a connection times out on its own total timeout, never reaching the server")
    func queuedRequestTimesOut() async throws {
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 1)) { client in
                // The only connection is taken by a request that never gets an answer.
                let holder = Task { try await fetchStatus(client: client, url: stub.url("/hang")) }
                try await eventually { try await stub.waitUntil(started: 1) }

                let queued = stub.url("/?id=queued")
                let start = ContinuousClock.now
                let error = await #expect(throws: WebClientError.self) {
                    _ = try await fetchStatus(client: client, url: queued, timeout: u * 2)
                }
                #expect(error == .timedOut(queued))
                #expect(ContinuousClock.now - start >= u * 2)
                #expect(stub.counters.started == 1, "the queued request never reached the server")

                // Its slot was never taken; the holder's is returned on cancellation.
                holder.cancel()
                await #expect(throws: CancellationError.self) { _ = try await holder.value }
                #expect(try await fetchStatus(client: client, url: stub.url("/?id=after")) == 200)
            }
        }
    }

    @Test("Cancelling a request that waits for a connection ends it at once and frees nothing it did not hold")
    func queuedRequestCancelled() async throws {
        try await withStubServer { stub in
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 1)) { client in
                let holder = Task { try await fetchStatus(client: client, url: stub.url("/hang")) }
                try await eventually { try await stub.waitUntil(started: 1) }

                // A short total timeout: a waiter that cancellation failed to reach would end at it, with the wrong error.
                let waiter = Task { try await fetchStatus(client: client, url: stub.url("/?id=queued"), timeout: u * 20) }
                try await client.waitUntil(queuedRequests: 1)  // it waits in the queue now
                let cancelledAt = ContinuousClock.now
                waiter.cancel()
                await #expect(throws: CancellationError.self) { _ = try await waiter.value }
                #expect(ContinuousClock.now - cancelledAt < u * 10, "it left the queue at once")
                #expect(client.queuedRequests == 0)
                #expect(stub.counters.started == 1, "the cancelled request never reached the server")

                // The holder still owns the one slot: a new request must wait
                // behind it (it times out), until the holder is cancelled.
                let blocked = stub.url("/?id=blocked")
                await #expect(throws: WebClientError.timedOut(blocked)) {
                    _ = try await fetchStatus(client: client, url: blocked, timeout: Book.second * 2)
                }
                holder.cancel()
                _ = await holder.result
                #expect(try await fetchStatus(client: client, url: stub.url("/?id=after")) == 200)
            }
        }
    }

    @Test("A connection limit below 1 is a clear error, before any client exists")
    func invalidConnectionLimit() async throws {
        let error = await #expect(throws: WebClientConfigurationError.self) {
            try await withHTTPClient(configuration: .init(maxConnectionsPerHost: 0)) { _ in }
        }
        #expect(error?.description.contains("maxConnectionsPerHost") == true)
    }
}
