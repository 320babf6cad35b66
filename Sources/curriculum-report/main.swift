// curriculum-report: what this toolchain does with the concurrency behaviours
// the `Toolchain` tests pin. Run it on any toolchain the package builds with:
//
//   swift run curriculum-report
//
// Each line names the behaviour, its Swift Evolution proposal, and the variant
// observed here, e.g. "generic executor (SE-0338)" or "caller's actor (SE-0461)".

import ToolchainProbes
import ToolchainProbesNonsending

func placement(_ o: ToolchainProbes.NonisolatedPlacement.Observation) -> String {
    placement(o.plainRanOnCaller, o.plainSawCallerIsolation, o.concurrentRanOnCaller)
}

func placement(_ o: ToolchainProbesNonsending.NonisolatedPlacement.Observation) -> String {
    placement(o.plainRanOnCaller, o.plainSawCallerIsolation, o.concurrentRanOnCaller)
}

func placement(_ plain: Bool, _ isolation: Bool, _ concurrent: Bool) -> String {
    let where_ = plain ? "on the caller's actor (SE-0461 nonisolated(nonsending))" : "on the generic executor (SE-0338)"
    return "\(where_); #isolation \(isolation ? "= the caller" : "= nil"); @concurrent: \(concurrent ? "caller's actor (!)" : "generic executor")"
}

func features(_ list: [String]) -> String { list.isEmpty ? "none" : list.joined(separator: ", ") }

print("Swift toolchain report (asyncio-curriculum)")
print("compiler: Swift \(Probes.compiler)")
print("")
print("targets:")
print("  every library, app and test target (Package.swift's `strict`): \(ToolchainProbes.NonisolatedPlacement.languageMode) language mode, complete concurrency checking; upcoming features on (explicit or implied by the language mode): \(features(ToolchainProbes.NonisolatedPlacement.upcomingFeatures))")
print("  ToolchainProbesNonsending (the same probe file, SE-0461 on): \(ToolchainProbesNonsending.NonisolatedPlacement.languageMode); upcoming features: \(features(ToolchainProbesNonsending.NonisolatedPlacement.upcomingFeatures))")
print("")
print("behaviours observed:")
print("  nonisolated async called from an actor, default target:     \(placement(await ToolchainProbes.NonisolatedPlacement.observe()))")
print("  nonisolated async called from an actor, SE-0461 target:      \(placement(await ToolchainProbesNonsending.NonisolatedPlacement.observe()))")
print("  Task {} in an actor method (SE-0304):                        \(await Probes.taskStartOrder().joined(separator: " → "))")
if let order = await Probes.immediateTaskStartOrder() {
    print("  Task.immediate in an actor method (SE-0472, 6.2):            \(order.joined(separator: " → "))")
} else {
    print("  Task.immediate (SE-0472, 6.2):                               absent")
}
do {
    let p = try await Probes.executorPreference()
    let yes = { (b: Bool) in b ? "loop" : "pool" }
    print("  task executor preference (SE-0417, 6.0), where each runs:    body \(yes(p.body)), async let \(yes(p.asyncLet)), group child \(yes(p.groupChild)), Task {} \(yes(p.unstructuredTask)), Task(executorPreference:) \(yes(p.taskWithPreference)), detached \(yes(p.detached))")
} catch {
    print("  task executor preference (SE-0417): not observed (\(error))")
}
let locals = await Probes.taskLocalInheritance()
let seen = { (v: String?) in v == nil ? "unbound" : "inherited" }
print("  task-local values (SE-0311):                                 async let \(seen(locals.asyncLet)), group child \(seen(locals.groupChild)), Task {} \(seen(locals.unstructuredTask)), detached \(seen(locals.detached))")
let finished = await Probes.cancelFinishedTask()
print("  cancel() on a finished task (SE-0304):                       isCancelled \(finished.isCancelled), value unchanged \(finished.value == 42)")
print("  withTaskCancellationHandler, already cancelled (SE-0304):    \(await Probes.cancellationHandlerWhenAlreadyCancelled().joined(separator: " → "))")
if Probes.hasCancellationShields {
    print("  withTaskCancellationShield (SE-0504):                        present (see the Toolchain tests)")
} else {
    print("  withTaskCancellationShield (SE-0504):                        absent (expected from Swift 6.4)")
}
print("  a standard-library timeout/deadline (withDeadline, pitched):  absent; the package's own: AsyncPrimitives.withTimeout")
