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
    /// core, kernel included, the hypervisor's steal too), from the first
    /// line of `/proc/stat`. Resolution is one clock tick
    /// (`sysconf(_SC_CLK_TCK)`, usually 10 ms). Returns `.zero` where
    /// `/proc/stat` is unavailable. To tell other programs' CPU from steal,
    /// use ``LoadMeter``.
    public static func machine() -> Duration { machineTime().busy }

    /// The machine's busy time (as ``machine()``) and, within it, its steal:
    /// time the hypervisor gave to someone else while this machine's cores
    /// wanted to run (the 8th field of `/proc/stat`'s `cpu` line), which no
    /// program here used. Both from one read, so they describe the same
    /// moment. Zeros where `/proc/stat` is unavailable.
    public static func machineTime() -> (busy: Duration, stolen: Duration) {
        guard let file = fopen("/proc/stat", "r") else { return (.zero, .zero) }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        guard fgets(&line, Int32(line.count), file) != nil else { return (.zero, .zero) }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let f = text.split(separator: " ").dropFirst().compactMap { Int($0) }
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        guard f.count >= 8 else { return (.zero, .zero) }
        return (ticks(f[0] + f[1] + f[2] + f[5] + f[6] + f[7]), ticks(f[7]))
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

/// What else took this machine's cores over an interval, in cores: other
/// programs (the machine's busy time from `/proc/stat`, minus this process's
/// and its reaped children's, minus steal) and the hypervisor (steal: on a
/// shared virtual machine another guest ran on "our" cores, which no program
/// here can prevent; up to a whole core for a second on the development VM).
/// Start it before a measurement, ``read()`` after: how a parallelism test
/// tells "no parallelism" from "the other core was taken", and by whom.
public struct LoadMeter: Sendable {
    private let start: ContinuousClock.Instant
    private let machine: (busy: Duration, stolen: Duration)
    private let own: Duration

    public init() {
        start = .now
        machine = CPUTime.machineTime()
        own = CPUTime.process() + CPUTime.children()
    }

    public struct Load: Sendable, CustomStringConvertible {
        /// Cores other programs on this machine used.
        public var otherPrograms: Double
        /// Cores the hypervisor gave to someone else.
        public var stolen: Double
        public var total: Double { otherPrograms + stolen }
        public var description: String {
            "other programs used \((otherPrograms * 100).rounded() / 100) cores, the hypervisor took \((stolen * 100).rounded() / 100)"
        }
    }

    public func read() -> Load {
        let wall = start.duration(to: .now)
        let now = CPUTime.machineTime()
        let own = CPUTime.process() + CPUTime.children() - self.own
        let stolen = max(.zero, now.stolen - machine.stolen)
        let others = max(.zero, now.busy - machine.busy - own - stolen)
        return Load(otherPrograms: others / wall, stolen: stolen / wall)
    }
}
