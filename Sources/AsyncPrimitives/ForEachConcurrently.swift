/// Runs `operation` over `inputs` with at most `maxConcurrent` children of a
/// task group in flight, and hands each output to `onResult` **as it
/// completes** (not in input order): a new child is added each time one
/// finishes, so the window stays full until the inputs run out.
///
/// This is the shape of the seed's loop — `asyncio.wait(pending,
/// return_when=FIRST_COMPLETED)`, inspect `done`, go on with `pending` —
/// written the Swift way (the RSS reader's feed and link windows use it).
/// With ``wait(_:returnWhen:)`` it would read:
///
/// ```swift
/// var pending = inputs.map { input in createTask { await operation(input) } }
/// while !pending.isEmpty {
///     let (done, rest) = await wait(pending, returnWhen: .firstCompleted)
///     for handle in done { handle(result) }        // log failures, go on
///     pending = rest
/// }
/// ```
///
/// A task group yields in completion order by itself (`for await` /
/// `next()`), so the done/pending bookkeeping becomes two counters, and the
/// window bounds concurrency, which the seed only got from aiohttp's
/// 100-connection pool.
///
/// Concurrency: structured. Every child has finished when this returns; if
/// the calling task is cancelled, the children are cancelled (they see
/// `Task.isCancelled`/`CancellationError` in their HTTP calls) and no new
/// ones start. `onResult` runs on the caller's isolation, one call at a time.
public func forEachConcurrently<Input: Sendable, Output: Sendable>(
    _ inputs: [Input],
    maxConcurrent: Int,
    isolation: isolated (any Actor)? = #isolation,
    operation: @escaping @Sendable (Int, Input) async -> Output,
    onResult: (Output, _ done: Int) async -> Void
) async {
    let window = max(1, maxConcurrent)
    await withTaskGroup(of: Output.self) { group in
        var next = 0
        var done = 0
        while next < inputs.count && next < window {
            let (i, input) = (next, inputs[next])
            group.addTask { await operation(i, input) }
            next += 1
        }
        while let output = await group.next() {
            if next < inputs.count && !Task.isCancelled {
                let (i, input) = (next, inputs[next])
                group.addTask { await operation(i, input) }
                next += 1
            }
            done += 1
            await onResult(output, done)
        }
    }
}
