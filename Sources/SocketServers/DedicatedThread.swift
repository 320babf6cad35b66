import Dispatch
import Foundation
import Glibc
import AsyncPrimitives
import Parallelism

/// A plain OS thread for blocking work, outside Swift's cooperative pool.
///
/// The blocking and selector servers of chapter 3 park their thread in
/// `accept`, `recv` or `epoll_wait`; doing that on the cooperative pool (one
/// thread per core) would stall every task. `DedicatedThread` is
/// `threading.Thread` for them, plus what tests need as evidence: the thread's
/// identity and the thread's CPU time.
///
/// Sendable: all state is behind a `Locked`.
public final class DedicatedThread: Sendable {
    private struct State {
        var tid: UInt = 0
        var kernelID: Int32 = 0
        var clock: clockid_t?
        var finished = false
        var finalCPU: Duration = .zero
    }

    private let state = Locked(State())
    private let started = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    /// Starts `body` on a new thread named `name` and returns once it runs.
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            var clock = clockid_t()
            let haveClock = pthread_getcpuclockid(pthread_self(), &clock) == 0
            self.state.withLock {
                $0.tid = UInt(pthread_self())
                $0.kernelID = currentThreadID()
                $0.clock = haveClock ? clock : nil
            }
            self.started.signal()
            body()
            self.state.withLock {
                $0.finalCPU = Self.read(CLOCK_THREAD_CPUTIME_ID)
                $0.finished = true
            }
            self.done.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        started.wait()
    }

    /// The thread's identity (`pthread_self()`), unique among live threads.
    /// (For the kernel's thread id, see ``kernelThreadID``.)
    public var tid: UInt { state.withLock { $0.tid } }

    /// The kernel's id of the thread (Parallelism's `currentThreadID()`), e.g. for
    /// `/proc/self/task/<id>/stat`.
    public var kernelThreadID: Int32 { state.withLock { $0.kernelID } }

    /// Whether the body has returned.
    public var isFinished: Bool { state.withLock { $0.finished } }

    /// CPU time the thread has used so far (`pthread_getcpuclockid` +
    /// `clock_gettime`); its final total once it finished. Safe from any thread.
    public var cpuTime: Duration {
        state.withLock { s in
            // Under the lock the thread cannot get past its own final locked
            // section, so it is alive and its clock id valid.
            if s.finished { return s.finalCPU }
            guard let clock = s.clock else { return .zero }
            return Self.read(clock)
        }
    }

    /// Blocks the calling (non-pool) thread until the body returned.
    public func join() {
        done.wait()
        done.signal()
    }

    /// Suspends until the body returned, without blocking a pool thread.
    public func joined() async {
        if isFinished { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [self] in
                join()
                c.resume()
            }
        }
    }

    private static func read(_ clock: clockid_t) -> Duration {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
    }
}
