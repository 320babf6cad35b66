import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time split into user and kernel (system) time, read from Linux's
/// `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` (clock ticks, 10 ms).
///
/// What a benchmark needs to say *where* a server's time goes: an echo costs
/// the same system calls in every language, so the kernel time per message
/// is a floor no server on this machine can go below.
struct CPUSplit: Sendable {
    var user: Duration
    var system: Duration
    var total: Duration { user + system }

    static func - (a: CPUSplit, b: CPUSplit) -> CPUSplit {
        CPUSplit(user: a.user - b.user, system: a.system - b.system)
    }

    static func + (a: CPUSplit, b: CPUSplit) -> CPUSplit {
        CPUSplit(user: a.user + b.user, system: a.system + b.system)
    }

    /// A whole process (all its threads).
    static func process(_ pid: Int32) -> CPUSplit? { read("/proc/\(pid)/stat") }

    /// One thread of this process, by kernel id (Parallelism's `currentThreadID()`).
    static func thread(_ tid: Int32) -> CPUSplit? { read("/proc/self/task/\(tid)/stat") }

    /// A process and all its descendants alive now (gunicorn's arbiter and
    /// its workers), found through the parent pid field of `/proc/*/stat`.
    static func tree(_ root: Int32) -> CPUSplit? {
        guard let own = process(root) else { return nil }
        var parents: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let parent = parentPID(pid) else { continue }
            parents[parent, default: []].append(pid)
        }
        var total = own
        var queue = parents[root] ?? []
        while let pid = queue.popLast() {
            if let cpu = process(pid) { total = total + cpu }
            queue += parents[pid] ?? []
        }
        return total
    }

    /// Several processes (e.g. Postgres backends); those gone count as zero.
    static func sum(_ pids: [Int32]) -> CPUSplit {
        pids.compactMap(process).reduce(CPUSplit(user: .zero, system: .zero), +)
    }

    /// The fields of a `stat` file after "pid (comm)": field 3 (state) is index 0.
    private static func statFields(_ path: String) -> [Substring]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    private static func parentPID(_ pid: Int32) -> Int32? {
        guard let fields = statFields("/proc/\(pid)/stat"), fields.count > 1 else { return nil }
        return Int32(fields[1])  // ppid, field 4
    }

    private static func read(_ path: String) -> CPUSplit? {
        // utime (field 14) is index 11, stime (15) is 12.
        guard let fields = statFields(path), fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        return CPUSplit(user: .seconds(user / tick), system: .seconds(system / tick))
    }
}
