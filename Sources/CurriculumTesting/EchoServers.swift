import CurriculumCore
import ServiceLifecycle
import SocketServers
import Streams
import Testing

// The chapter 3, 7 and 8 servers in scoped helpers: started, handed to the test, and
// always stopped, whatever the test body does.

/// The two multi-client servers the reliability tests run against.
public enum ServerKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case async, selector
    public var testDescription: String { rawValue }
}

/// Runs `body` with a started server of `kind` and always stops it.
public func withEchoServer<T: Sendable>(
    _ kind: ServerKind, log: EventLog = EventLog(),
    _ body: @Sendable (_ port: Int, _ log: EventLog) async throws -> T
) async throws -> T {
    switch kind {
    case .selector:
        let server = try SelectorEchoServer(log: log)
        return try await runThenStop({ try await body(server.port, log) }, stop: { await server.stop() })
    case .async:
        return try await withAsyncEchoServer(log: log) { server in try await body(server.port, log) }
    }
}

/// Runs `body` with a bound, serving ``AsyncEchoServer``; cancels it afterwards.
public func withAsyncEchoServer<T: Sendable>(
    _ configuration: AsyncEchoServer.Configuration = .init(),
    log: EventLog = EventLog(),
    _ body: @Sendable (AsyncEchoServer) async throws -> T
) async throws -> T {
    try await withRunning(try await AsyncEchoServer.bind(configuration, log: log), body)
}

/// Runs `service` in a child task while `body` uses it, then cancels it and
/// waits for it to end, whether `body` returned or threw (the chapter 3 and
/// 8 servers: bound first, so `body` can connect at once).
public func withRunning<S: Service, T: Sendable>(
    _ service: S, _ body: @Sendable (S) async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await service.run() }
        do {
            let result = try await body(service)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// Runs `body` with a started ``ThreadedEchoServer`` (listings 7.1–7.2) and
/// always stops it (joining every thread it started).
public func withThreadedEchoServer<T: Sendable>(
    log: EventLog = EventLog(),
    _ body: @Sendable (ThreadedEchoServer) async throws -> T
) async throws -> T {
    let server = try ThreadedEchoServer(log: log)
    return try await runThenStop({ try await body(server) }, stop: { await server.stop() })
}

/// Runs `body`, then `stop`, whether `body` returned or threw.
private func runThenStop<T: Sendable>(
    _ body: () async throws -> T, stop: () async -> Void
) async throws -> T {
    do {
        let result = try await body()
        await stop()
        return result
    } catch {
        await stop()
        throw error
    }
}
