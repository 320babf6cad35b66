import AsyncPrimitives

/// An outcome that carries the progress of its phase when it was delivered:
/// the seed's `len(done)` and `len(pending)`.
protocol PhaseProgress: Sendable {
    /// Finished so far, this one included.
    var done: Int { get set }
    /// Not finished yet (queued or in flight).
    var pending: Int { get set }
}

/// Runs ``forEachConcurrently(_:maxConcurrent:isolation:operation:onResult:)``
/// in a task and exposes the outputs as an `AsyncStream` in completion order,
/// each stamped with the phase's progress at the moment it is delivered.
///
/// The task is a child-like unstructured `Task` (it inherits priority and
/// task-locals); the stream owns it: when the consumer stops iterating (or
/// its task is cancelled), `onTermination` cancels the work, so nothing runs
/// on after the consumer is gone.
func streamConcurrently<Input: Sendable, Output: PhaseProgress>(
    _ inputs: [Input],
    maxConcurrent: Int,
    operation: @escaping @Sendable (Int, Input) async -> Output
) -> AsyncStream<Output> {
    let (stream, continuation) = AsyncStream.makeStream(of: Output.self, bufferingPolicy: .unbounded)
    let task = Task {
        await forEachConcurrently(inputs, maxConcurrent: maxConcurrent, operation: operation) { output, done in
            var output = output
            output.done = done
            output.pending = inputs.count - done
            continuation.yield(output)
        }
        continuation.finish()
    }
    continuation.onTermination = { _ in task.cancel() }
    return stream
}
