import CurriculumTesting
import Processes
import Testing
import ToolchainProbes
import ToolchainProbesNonsending

/// Not a chapter of the book: the concurrency behaviours that Swift has
/// changed or is changing, each pinned to what this toolchain does, with the
/// Swift Evolution proposal and the first toolchain that has it. Run on a new
/// toolchain, a red test here names the behaviour that moved; `swift run
/// curriculum-report` prints the variant each one showed.
///
/// Version-specific code is behind `#if compiler(>=X.Y)`, so this file
/// compiles on every supported toolchain (6.2 and 6.3) and asserts what
/// *that* toolchain does.
@Suite("Toolchain · behaviours that change with Swift", .curriculum, .timeLimit(.minutes(3)))
struct Toolchain {
    @Test("SE-0338 (Swift 5.7): a nonisolated async function called from an actor runs on the generic executor")
    func nonisolatedAsyncLeavesTheActor() async {
        // The package's targets (Swift 6 language mode, no NonisolatedNonsendingByDefault): the call hops off
        // the caller's event-loop thread, and the function has no isolation. Python has no analogue: a coroutine
        // always runs on the loop that awaits it — which is what SE-0461 below gives Swift.
        let seen = await ToolchainProbes.NonisolatedPlacement.observe()
        #expect(!ToolchainProbes.NonisolatedPlacement.upcomingFeatures.contains("NonisolatedNonsendingByDefault"))
        #expect(!seen.plainRanOnCaller, "ran off the calling actor's thread")
        #expect(!seen.plainSawCallerIsolation, "#isolation is nil inside it")
        #expect(!seen.concurrentRanOnCaller)
    }

    @Test("SE-0461 (Swift 6.2): with NonisolatedNonsendingByDefault it runs on the caller's actor; @concurrent opts out")
    func nonisolatedNonsendingStaysOnTheActor() async {
        // The same source file compiled with the upcoming feature (ToolchainProbesNonsending): the function runs
        // on the caller's executor and sees the caller as its isolation, like an asyncio coroutine on its loop.
        // Swap the feature flag between the two probe targets in Package.swift and this test and the one above fail.
        let seen = await ToolchainProbesNonsending.NonisolatedPlacement.observe()
        #expect(ToolchainProbesNonsending.NonisolatedPlacement.upcomingFeatures.contains("NonisolatedNonsendingByDefault"))
        #expect(seen.plainRanOnCaller, "ran on the calling actor's event-loop thread")
        #expect(seen.plainSawCallerIsolation, "#isolation is the calling actor")
        #expect(!seen.concurrentRanOnCaller, "@concurrent still leaves for the generic executor")
    }

    @Test("SE-0304 and SE-0472 (Swift 6.2): Task {} starts after the current job, Task.immediate before the next line")
    func taskStartOrder() async {
        // Listing 2.8: asyncio's create_task only schedules; the coroutine starts at the next await. Task {} in an
        // actor method is the same: the actor is busy with the caller, so the line after runs first.
        #expect(await Probes.taskStartOrder() == ["line after", "task body"])
        #if compiler(>=6.2)
        // Task.immediate runs the body synchronously on the caller until its first suspension (asyncio 3.12's
        // eager_task_factory is the closest Python has).
        #expect(await Probes.immediateTaskStartOrder() == ["task body", "line after"])
        #else
        #expect(await Probes.immediateTaskStartOrder() == nil)
        #endif
    }

    @Test("SE-0417 (Swift 6.0): structured children inherit a task executor preference; unstructured tasks do not")
    func taskExecutorPreference() async throws {
        // LoopExecutor (chapter 2's explicit event loop) runs its body with withTaskExecutorPreference: async let
        // and group children run on its thread too; Task {} goes to the global pool unless created with
        // Task(executorPreference:); Task.detached never inherits.
        let p = try await Probes.executorPreference()
        #expect(p.body && p.asyncLet && p.groupChild, "structured work on the loop: \(p)")
        #expect(!p.unstructuredTask && !p.detached, "unstructured tasks on the global pool: \(p)")
        #expect(p.taskWithPreference, "Task(executorPreference:) on the loop: \(p)")
    }

    @Test("SE-0311 (Swift 5.5): task-local values reach async let, group children and Task {}, not Task.detached")
    func taskLocalInheritance() async {
        // Python's contextvars behave alike: create_task copies the context; a thread started by hand does not.
        let seen = await Probes.taskLocalInheritance()
        #expect(seen.asyncLet == "bound" && seen.groupChild == "bound" && seen.unstructuredTask == "bound", "\(seen)")
        #expect(seen.detached == nil, "\(seen)")
    }

    @Test("SE-0304: cancel() on a finished task sets its flag and leaves its value")
    func cancelFinishedTask() async {
        // asyncio's Task.cancel() on a done task returns False and changes nothing (task.cancelled() stays False);
        // Swift records the request (isCancelled becomes true) but the value is the one already produced.
        let seen = await Probes.cancelFinishedTask()
        #expect(seen.isCancelled)
        #expect(seen.value == 42)
    }

    @Test("SE-0304: withTaskCancellationHandler in an already-cancelled task runs the handler first, then the operation")
    func cancellationHandlerAlreadyCancelled() async {
        // The handler runs at once, synchronously, before the operation starts; the operation still runs (it must
        // check cancellation itself), unlike asyncio, where a cancelled task gets CancelledError at its next await.
        #expect(await Probes.cancellationHandlerWhenAlreadyCancelled() == ["onCancel", "operation"])
    }

    @Test("SE-0504 (Swift 6.4): a cancellation shield hides cancellation inside it", .enabled(if: Probes.hasCancellationShields, "withTaskCancellationShield is not in this toolchain (6.4+)"))
    func cancellationShield() async {
        // asyncio.shield protects an inner task from the outer cancellation; Swift's shield hides the flag from
        // the code inside (cleanup that checks cancellation still runs). The package's `shield` (AsyncPrimitives)
        // is the asyncio one.
        #if compiler(>=6.4)
        let seen = await Probes.cancellationShield()
        #expect(!seen.insideShield && seen.hasActiveShield && seen.afterShield, "\(seen)")
        #endif
    }

    @Test("curriculum-report prints the variant of each behaviour this toolchain showed")
    func report() async throws {
        let run = try await runProgram(try SiblingExecutable.locate("curriculum-report")).output
        #expect(run.termination.succeeded, "\(run.standardErrorText)")
        let lines = run.standardOutputText.split(separator: "\n").map(String.init)
        func line(_ prefix: String) -> String { lines.first { $0.contains(prefix) } ?? "(no line with \(prefix))" }
        #expect(line("compiler:").contains("Swift \(Probes.compiler)"))
        #expect(line("default target:").contains("generic executor (SE-0338)"))
        #expect(line("SE-0461 target:").contains("caller's actor (SE-0461"))
        #expect(line("Task {} in an actor").hasSuffix("line after → task body"))
        #expect(line("NonisolatedNonsendingByDefault").contains("ToolchainProbesNonsending"))
    }
}
