#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time consumed, read from the kernel's per-thread and per-process clocks.
///
/// Wall-clock time says how long something took; CPU time says how much
/// processor it used. Their ratio is the evidence of parallelism: two threads
/// that each used 1 s of CPU within 1 s of wall time ran on two cores at once.
///
/// All readers are thread-safe system calls; none suspends.
public enum CPUTime {
    /// CPU time used so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
    public static func thread() -> Duration { read(CLOCK_THREAD_CPUTIME_ID) }

    /// CPU time used so far by the whole process (`CLOCK_PROCESS_CPUTIME_ID`).
    public static func process() -> Duration { read(CLOCK_PROCESS_CPUTIME_ID) }

    /// CPU time (user + system) used by this process's children that have
    /// terminated and been waited for (`getrusage(RUSAGE_CHILDREN)`): the
    /// CPU that `spawnWorker` children consumed.
    public static func children() -> Duration {
        var usage = rusage()
        _ = getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        return duration(usage.ru_utime) + duration(usage.ru_stime)
    }

    /// CPU time the whole machine has spent busy (every process, every
    /// core, kernel included), from the first line of `/proc/stat`.
    ///
    /// Its growth minus this process's over the same interval is the CPU
    /// that *other* programs took meanwhile: how a parallelism test tells
    /// "no parallelism" from "the other core was busy". Resolution is one
    /// clock tick (`sysconf(_SC_CLK_TCK)`, usually 10 ms). Returns `.zero`
    /// where `/proc/stat` is unavailable.
    public static func machine() -> Duration {
        guard let f = procStatCPU() else { return .zero }
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        return ticks(f[0] + f[1] + f[2] + f[5] + f[6] + f[7])
    }

    /// CPU time the hypervisor gave to someone else while this machine's
    /// cores wanted to run (`steal`, the 8th field of `/proc/stat`'s first
    /// line): part of ``machine()``, but no program on this machine used it.
    ///
    /// On a shared virtual machine it can reach a whole core for a second at
    /// a time; a parallelism test counts it apart from other programs' CPU, so
    /// that it can say which of the two hid its result. `.zero` where
    /// `/proc/stat` is unavailable or has no steal field.
    public static func stolen() -> Duration {
        guard let f = procStatCPU() else { return .zero }
        return ticks(f[7])
    }

    /// The first eight tick counters of `/proc/stat`'s `cpu` line.
    private static func procStatCPU() -> [Int]? {
        guard let file = fopen("/proc/stat", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = text.split(separator: " ").dropFirst().compactMap { Int($0) }
        return fields.count >= 8 ? fields : nil
    }

    private static func ticks(_ n: Int) -> Duration {
        let ticksPerSecond = max(1, sysconf(Int32(_SC_CLK_TCK)))
        return .seconds(n / ticksPerSecond) + .seconds(Double(n % ticksPerSecond) / Double(ticksPerSecond))
    }

    private static func duration(_ tv: timeval) -> Duration {
        .seconds(tv.tv_sec) + .microseconds(tv.tv_usec)
    }

    /// The CPU time on `clock` (a thread or process CPU clock id).
    public static func read(_ clock: clockid_t) -> Duration {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
    }
}
