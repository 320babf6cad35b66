import UnixSignals

/// Runs `body` and cancels it when one of `signals` arrives: listing 3.9's
/// `loop.add_signal_handler(SIGINT, cancel_tasks)`.
///
/// asyncio's handler looks up every task in a global registry
/// (`asyncio.all_tasks()`) and cancels each. Swift has no such registry:
/// put all the work under `body` (child tasks of a task group, `async let`)
/// and cancelling `body`'s task reaches every structured descendant.
/// Unstructured `Task {}`s are not reached: track those yourself.
///
/// While this runs, the signals are trapped (ignored by the default
/// disposition, delivered to this function instead), so Ctrl-C no longer
/// kills the process. Never call it inside a test runner.
///
/// - Parameters:
///   - signals: the signals that cancel (e.g. `[.sigint]`).
///   - onSignal: called once per caught signal, before cancelling: the
///     place to print "got SIGINT".
///   - body: the work; it sees cancellation at its next cancellation point.
/// - Returns: `body`'s result (after a signal, usually a `CancellationError`
///   thrown by it).
public func withSignalCancellation<T: Sendable>(
    _ signals: [UnixSignal],
    onSignal: @escaping @Sendable (UnixSignal) -> Void = { _ in },
    body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let caught = await UnixSignalsSequence(trapping: signals)
    return try await withThrowingTaskGroup(of: SignalRace<T>.self) { group in
        group.addTask { .finished(try await body()) }
        group.addTask {
            for await signal in caught { return .signal(signal) }
            return .signalsEnded
        }
        while let outcome = try await group.next() {
            switch outcome {
            case .finished(let value):
                group.cancelAll()
                return value
            case .signal(let signal):
                onSignal(signal)
                group.cancelAll()  // cancels `body`, and everything under it
            case .signalsEnded:
                continue
            }
        }
        throw CancellationError()
    }
}

private enum SignalRace<T: Sendable>: Sendable {
    case finished(T)
    case signal(UnixSignal)
    case signalsEnded
}
