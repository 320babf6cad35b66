// One file, compiled twice: into `ToolchainProbes` with the package's usual
// settings, and (a symlink) into `ToolchainProbesNonsending` with SE-0461's
// upcoming feature `NonisolatedNonsendingByDefault` on. The same source then
// shows both placements of a `nonisolated async` function on one toolchain.

import NIOCore
import NIOPosix

/// Where a `nonisolated async` function runs when an actor calls it, as
/// this module was compiled.
///
/// - SE-0338 (Swift 5.7, still the default in Swift 6 language mode on 6.2
///   and 6.3): it hops to the generic (global concurrent) executor, off the
///   caller's actor.
/// - SE-0461 (Swift 6.2, `NonisolatedNonsendingByDefault`; planned as the
///   default of a future language mode): it runs on the caller's actor, as a
///   synchronous function would; `@concurrent` asks for the old behaviour.
///
/// The caller is an actor whose executor is one SwiftNIO event-loop thread,
/// so "on the caller's actor" is visible as `loop.inEventLoop`, and the
/// function's `#isolation` says the same from the language's side.
public enum NonisolatedPlacement {
    public struct Observation: Sendable, Equatable {
        /// The plain `nonisolated async` function ran on the caller's thread (its executor).
        public var plainRanOnCaller: Bool
        /// Its `#isolation` was the calling actor.
        public var plainSawCallerIsolation: Bool
        /// The `@concurrent` one ran on the caller's thread.
        public var concurrentRanOnCaller: Bool
    }

    /// Calls both functions from an actor on an event loop and reports where they ran.
    public static func observe() async -> Observation {
        await Caller(loop: MultiThreadedEventLoopGroup.singleton.next()).observe()
    }

    /// The upcoming features this module was compiled with (of those that
    /// change concurrency behaviour), for the toolchain report.
    public static var upcomingFeatures: [String] {
        var on: [String] = []
        #if hasFeature(NonisolatedNonsendingByDefault)
        on.append("NonisolatedNonsendingByDefault")
        #endif
        #if hasFeature(InferIsolatedConformances)
        on.append("InferIsolatedConformances")
        #endif
        #if hasFeature(ExistentialAny)
        on.append("ExistentialAny")
        #endif
        #if hasFeature(GlobalActorIsolatedTypesUsability)
        on.append("GlobalActorIsolatedTypesUsability")
        #endif
        return on
    }

    /// The language mode this module was compiled in.
    public static var languageMode: String {
        #if swift(>=7)
        "Swift 7 (or later)"
        #elseif swift(>=6)
        "Swift 6"
        #else
        "Swift 5"
        #endif
    }
}

private actor Caller {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    func observe() async -> NonisolatedPlacement.Observation {
        precondition(loop.inEventLoop, "the actor runs on its event loop")
        let plain = await plainProbe(loop)
        let isolation = await isolationProbe()
        let concurrent = await concurrentProbe(loop)
        return .init(plainRanOnCaller: plain, plainSawCallerIsolation: isolation === self, concurrentRanOnCaller: concurrent)
    }
}

/// The function under test: nothing but where it runs.
nonisolated func plainProbe(_ loop: any EventLoop) async -> Bool { loop.inEventLoop }

/// The same function's isolation, as the language sees it.
nonisolated func isolationProbe() async -> (any Actor)? { #isolation }

/// SE-0461's explicit opt-out: always on the generic executor.
@concurrent nonisolated func concurrentProbe(_ loop: any EventLoop) async -> Bool { loop.inEventLoop }
