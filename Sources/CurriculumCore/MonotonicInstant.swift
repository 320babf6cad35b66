#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An instant of the system-wide `CLOCK_MONOTONIC` clock, in nanoseconds.
///
/// Unlike `ContinuousClock.Instant`, its raw value can cross a process
/// boundary: on Linux every process reads the same monotonic clock, so the
/// instants a `curriculum-worker` child prints compare directly with the
/// parent's and with other children's (listing 1.6a's interval overlap).
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's (unspecified, boot-related) epoch.
    public var nanoseconds: Int64

    /// Wraps a raw reading, e.g. one parsed from a child's output.
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// Reads `CLOCK_MONOTONIC` now. Thread-safe; never suspends.
    public static func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// The time from `rhs` to `lhs`.
    public static func - (lhs: Self, rhs: Self) -> Duration {
        .nanoseconds(lhs.nanoseconds - rhs.nanoseconds)
    }

    public var description: String { "\(nanoseconds)ns" }
}
