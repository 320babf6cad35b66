#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Threads

/// What a process can say about itself: the facts listing 1.2 prints
/// (`os.getpid()`, `threading.active_count()`, `threading.current_thread().name`).
///
/// Read from Linux's `/proc`: the thread list is the directory
/// `/proc/self/task` (one entry per kernel thread, named by its tid).
/// Unlike Python's `active_count`, which counts only threads created through
/// `threading`, this counts every OS thread of the process — in a `swift test`
/// process that includes the cooperative pool, Dispatch and the test runner.
public struct ProcessReport: Sendable, Equatable, CustomStringConvertible {
    /// This process's id (`getpid()`).
    public var pid: pid_t
    /// The parent process's id (`getppid()`).
    public var parentPID: pid_t
    /// The number of OS threads the process is running now.
    public var threadCount: Int
    /// The kernel id of the thread that made the report.
    public var currentThreadID: pid_t
    /// Whether that thread is the process's main thread (on Linux: its tid
    /// equals the pid).
    public var isMainThread: Bool

    /// Reports on the calling process and thread. Synchronous, thread-safe;
    /// from async code the "current thread" is whichever pool thread runs
    /// the task at that moment.
    public static func current() -> ProcessReport {
        let pid = getpid()
        let tid = Threads.currentThreadID()
        return ProcessReport(
            pid: pid,
            parentPID: getppid(),
            threadCount: threadIDs().count,
            currentThreadID: tid,
            isMainThread: tid == pid
        )
    }

    /// The kernel ids of every thread of this process now (the entries of
    /// `/proc/self/task`), sorted. Empty where `/proc` is unavailable.
    public static func threadIDs() -> [pid_t] {
        guard let dir = opendir("/proc/self/task") else { return [] }
        defer { closedir(dir) }
        var ids: [pid_t] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let id = pid_t(name) { ids.append(id) }
        }
        return ids.sorted()
    }

    public var description: String {
        "pid=\(pid) ppid=\(parentPID) threads=\(threadCount) tid=\(currentThreadID) main=\(isMainThread)"
    }
}
