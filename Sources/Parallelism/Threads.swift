#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncPrimitives
import Dispatch

/// The kernel id (tid) of the calling OS thread: `threading.get_ident()` /
/// `threading.get_native_id()` in Python.
///
/// Read as the last component of `readlink("/proc/thread-self")`, which the
/// kernel resolves to `"<pid>/task/<tid>"`: Swift's Glibc module does not
/// import `gettid`, and `syscall` is variadic, so Swift cannot call it. On
/// Linux the main thread's tid equals the process id.
///
/// Synchronous and thread-safe. From async code it reports the thread the
/// task happens to run on at that moment (which may change at every `await`).
/// Returns -1 where `/proc` is unavailable.
public func currentThreadID() -> pid_t {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
    guard count > 0 else { return -1 }
    let link = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let last = link.split(separator: "/").last, let tid = pid_t(last) else { return -1 }
    return tid
}

/// Starts a new OS thread running `body`: `threading.Thread(target:…).start()`.
///
/// A thin wrapper over `pthread_create`: the thread is a real kernel thread,
/// not a task on the cooperative pool, so `body` may block (sleep, blocking
/// I/O, a semaphore) without starving Swift concurrency. `name` (at most 15
/// bytes are kept) is set with `pthread_setname_np` from inside the thread,
/// where Linux tools (`top -H`, `/proc/<pid>/task/<tid>/comm`) show it.
///
/// The call returns once the thread is running and has published its kernel
/// id, so ``JoinHandle/threadID`` is valid at once (the caller blocks for
/// that short moment). Swift task-locals are not inherited by the thread.
///
/// - Parameters:
///   - name: the thread's name, or `nil` to keep the inherited one.
///   - body: the thread's work; its return value (or error) is what
///     ``JoinHandle/join()`` gives back.
/// - Returns: the handle to wait for the thread (`Thread.join()`).
/// - Precondition: `pthread_create` succeeds (it fails only when the system
///   is out of threads or memory).
public func spawnThread<Value: Sendable>(
    name: String? = nil,
    body: @escaping @Sendable () throws -> Value
) -> JoinHandle<Value> {
    let completion = ThreadCompletion<Value>()
    let started = DispatchSemaphore(value: 0)
    let start = ThreadStart {
        if let name {
            setCurrentThreadName(name)
        }
        completion.threadID = currentThreadID()
        started.signal()
        completion.finish(Result { try body() })
    }
    let context = Unmanaged.passRetained(start).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let start = Unmanaged<ThreadStart>.fromOpaque(raw).takeRetainedValue()
        start.run()
        return nil
    }, context)
    guard status == 0 else {
        Unmanaged<ThreadStart>.fromOpaque(context).release()
        preconditionFailure("pthread_create failed with error \(status)")
    }
    started.wait()
    return JoinHandle(pthread: thread, threadID: completion.threadID, name: name, completion: completion)
}

/// The handle of a thread started by ``spawnThread(name:body:)``.
///
/// `join()` blocks the calling thread until the thread has ended and returns
/// its result, like Python's `Thread.join()`; ``value`` waits for the same
/// result from async code without blocking a pool thread. Both may be called
/// any number of times from any thread; the underlying `pthread_join` happens
/// exactly once. A handle dropped without joining detaches its thread, which
/// then cleans up after itself.
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

    fileprivate init(pthread: pthread_t, threadID: pid_t, name: String?, completion: ThreadCompletion<Value>) {
        self.pthread = pthread
        self.threadID = threadID
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
    /// No pool thread is blocked while the body runs: the thread resumes the
    /// waiting task itself as its last act. Not cancellable — a running OS
    /// thread cannot be interrupted — so cancelling the waiting task does
    /// not end the wait.
    public var value: Value {
        get async throws {
            await completion.wait()
            return try join()
        }
    }
}

/// Names the calling thread with `pthread_setname_np` (at most 15 bytes).
///
/// Glibc declares `pthread_setname_np` only under `_GNU_SOURCE`, which Swift's
/// Glibc module does not define, so the symbol is looked up at run time.
private func setCurrentThreadName(_ name: String) {
    let short = String(decoding: name.utf8.prefix(15), as: UTF8.self)
    if let setName = pthreadSetName {
        _ = setName(pthread_self(), short)
    }
}

/// `pthread_setname_np`, resolved once from the C library (nil if absent).
private let pthreadSetName: (@convention(c) (pthread_t, UnsafePointer<CChar>?) -> Int32)? = {
    guard let library = dlopen(nil, RTLD_NOW), let symbol = dlsym(library, "pthread_setname_np") else {
        return nil
    }
    return unsafeBitCast(symbol, to: (@convention(c) (pthread_t, UnsafePointer<CChar>?) -> Int32).self)
}()

/// The type-erased start routine handed to `pthread_create`.
private final class ThreadStart: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// A thread's result plus the tasks waiting for it.
private final class ThreadCompletion<Value: Sendable>: Sendable {
    private struct State {
        var threadID: pid_t = -1
        var result: Result<Value, any Error>?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Locked(State())

    var result: Result<Value, any Error>? { state.withLock { $0.result } }

    var threadID: pid_t {
        get { state.withLock { $0.threadID } }
        set { state.withLock { $0.threadID = newValue } }
    }

    func finish(_ result: Result<Value, any Error>) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.result = result
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.result != nil { return true }
                s.waiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }
}
