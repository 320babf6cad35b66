#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLinux
import CurriculumCore

/// The kernel id (tid) of the calling OS thread: `threading.get_native_id()`
/// in Python (`gettid(2)`). On Linux the main thread's tid equals the process id.
///
/// Synchronous and thread-safe. From async code it reports the thread the
/// task happens to run on at that moment (which may change at every `await`).
public func currentThreadID() -> pid_t { CLinux_gettid() }

/// Names the calling thread (`pthread_setname_np`; at most 15 bytes are
/// kept), where Linux tools (`top -H`, `/proc/<pid>/task/<tid>/comm`) show it.
public func setCurrentThreadName(_ name: String) {
    _ = CLinux_set_current_thread_name(name)
}

/// Starts a new OS thread running `body`: `threading.Thread(target:…).start()`.
///
/// The package's one way to make an OS thread. A thin wrapper over
/// `pthread_create`: the thread is a real kernel thread, not a task on the
/// cooperative pool, so `body` may block (sleep, blocking I/O, a semaphore)
/// without starving Swift concurrency. `name` (at most 15 bytes are kept) is
/// set from inside the thread.
///
/// The call returns once the thread runs and has published its kernel id and
/// CPU clock, so ``JoinHandle/threadID`` and ``JoinHandle/cpuTime`` are valid
/// at once (the caller waits for that short moment on a condition variable).
/// Swift task-locals are not inherited by the thread.
///
/// - Parameters:
///   - name: the thread's name, or `nil` to keep the inherited one.
///   - stackSize: the thread's stack in bytes, or `nil` for the system default.
///   - body: the thread's work; its return value (or error) is what
///     ``JoinHandle/join()`` and ``JoinHandle/value`` give back.
/// - Returns: the handle to wait for the thread (`Thread.join()`).
/// - Precondition: `pthread_create` succeeds (it fails only when the system
///   is out of threads or memory).
public func spawnThread<Value: Sendable>(
    name: String? = nil,
    stackSize: Int? = nil,
    body: @escaping @Sendable () throws -> Value
) -> JoinHandle<Value> {
    let completion = ThreadCompletion<Value>()
    let start = ThreadStart {
        if let name { setCurrentThreadName(name) }
        var clock = clockid_t()
        let haveClock = pthread_getcpuclockid(pthread_self(), &clock) == 0
        completion.started(threadID: currentThreadID(), clock: haveClock ? clock : nil)
        let result = Result { try body() }
        completion.finish(result, finalCPU: CPUTime.thread())
    }
    let context = Unmanaged.passRetained(start).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
    var thread = pthread_t()
    let status = pthread_create(&thread, &attributes, { raw in
        guard let raw else { return nil }
        let start = Unmanaged<ThreadStart>.fromOpaque(raw).takeRetainedValue()
        start.run()
        return nil
    }, context)
    guard status == 0 else {
        Unmanaged<ThreadStart>.fromOpaque(context).release()
        preconditionFailure("pthread_create failed with error \(status)")
    }
    completion.waitUntilStarted()
    return JoinHandle(pthread: thread, name: name, completion: completion)
}

/// The handle of a thread started by ``spawnThread(name:stackSize:body:)``.
///
/// `join()` blocks the calling thread until the thread has ended and returns
/// its result, like Python's `Thread.join()`; ``value`` and ``joined()`` wait
/// for the same from async code without blocking any other thread: the
/// thread resumes the waiting tasks itself as its last act. Both may be
/// called any number of times from any thread; the underlying `pthread_join`
/// happens exactly once. A handle dropped without joining detaches its
/// thread, which then cleans up after itself.
public final class JoinHandle<Value: Sendable>: Sendable {
    /// The thread's kernel id (tid), as listed in `/proc/self/task`.
    public let threadID: pid_t
    /// The name the thread gave itself, if any.
    public let name: String?

    private let pthread: pthread_t
    private let completion: ThreadCompletion<Value>
    /// Whether `pthread_join` (or `pthread_detach`) has been called. Held
    /// while joining, so concurrent joiners wait for the first one.
    private let reaped = Locked<Bool>(false)

    fileprivate init(pthread: pthread_t, name: String?, completion: ThreadCompletion<Value>) {
        self.pthread = pthread
        self.threadID = completion.threadID
        self.name = name
        self.completion = completion
    }

    deinit {
        reaped.withLock { done in
            if !done { pthread_detach(pthread) }
        }
    }

    /// Blocks the calling thread until the thread has ended (`pthread_join`),
    /// then returns what its body returned or rethrows what it threw.
    ///
    /// Never call it on the cooperative pool for a thread that may run long:
    /// use ``value`` from async code.
    @discardableResult
    public func join() throws -> Value {
        reaped.withLock { done in
            if !done {
                _ = pthread_join(pthread, nil)
                done = true
            }
        }
        // The body's result is stored before the thread returns, so it is
        // there once pthread_join has returned.
        return try completion.result!.get()
    }

    /// Whether the thread's body has returned (the thread may still be
    /// exiting; `join()` then returns almost at once).
    public var isFinished: Bool { completion.result != nil }

    /// Suspends until the thread's body has returned, then joins it and
    /// returns the body's result (or rethrows its error).
    ///
    /// Not cancellable — a running OS thread cannot be interrupted — so
    /// cancelling the waiting task does not end the wait. Under a
    /// ``CurriculumCore/WaitLimit`` (the test suites set one) it throws
    /// `WaitLimitExceeded` when the thread runs longer, leaving it running.
    public var value: Value {
        get async throws {
            try await completion.wait()
            return try join()
        }
    }

    /// Suspends until the thread has ended, ignoring its result.
    public func joined() async {
        guard (try? await completion.wait()) != nil else { return }
        _ = try? join()
    }

    /// CPU time the thread has used so far (its kernel clock,
    /// `pthread_getcpuclockid`), or its final total once its body returned.
    /// Safe from any thread.
    public var cpuTime: Duration { completion.cpuTime }
}

/// The type-erased start routine handed to `pthread_create`.
private final class ThreadStart: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// A thread's identity, result and CPU clock, plus whoever waits for them.
private final class ThreadCompletion<Value: Sendable>: Sendable {
    private struct State {
        var threadID: pid_t = -1
        var clock: clockid_t?
        var finalCPU: Duration?
        var result: Result<Value, any Error>?
    }
    private let state = Watched(State())

    var result: Result<Value, any Error>? { state.value.result }
    var threadID: pid_t { state.value.threadID }

    func started(threadID: pid_t, clock: clockid_t?) {
        state.update {
            $0.threadID = threadID
            $0.clock = clock
        }
    }

    func waitUntilStarted() {
        state.waitBlocking { $0.threadID != -1 }
    }

    var cpuTime: Duration {
        // Under the lock the thread cannot get past `finish`, so while no
        // final figure is stored it is alive and its clock id valid.
        state.update { s in
            if let final = s.finalCPU { return final }
            guard let clock = s.clock else { return .zero }
            return CPUTime.read(clock)
        }
    }

    func finish(_ result: Result<Value, any Error>, finalCPU: Duration) {
        state.update { s in
            s.result = result
            s.finalCPU = finalCPU
        }
    }

    /// Suspends until the body has returned; not cancellable.
    /// - Throws: `WaitLimitExceeded` only under a ``CurriculumCore/WaitLimit`` (tests).
    func wait() async throws {
        try await state.waitUntil(cancellable: false) { $0.result != nil }
    }
}
