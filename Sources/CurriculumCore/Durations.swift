#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The package's one set of `Duration` conversions, for the C and NIO calls
/// that want numbers (`poll`, `SO_RCVTIMEO`, libcurl, semaphores).
/// SwiftNIO's own `TimeAmount(_: Duration)` (NIOCore) converts to NIO's type.
/// Negative durations convert to zero; huge ones saturate instead of overflowing.
extension Duration {
    /// The duration as a floating-point number of seconds.
    public var seconds: Double {
        let (s, attos) = components
        return Double(s) + Double(attos) / 1e18
    }

    /// Whole milliseconds, rounded down (0 for negative durations; saturating).
    public var milliseconds: Int {
        let (s, attos) = components
        guard s >= 0 else { return 0 }
        let (ms, overflow) = Int(s).multipliedReportingOverflow(by: 1000)
        return overflow ? .max : ms &+ Int(attos / 1_000_000_000_000_000)
    }

    /// Whole nanoseconds, rounded down (0 for negative durations; saturating).
    public var nanoseconds: Int64 {
        let (s, attos) = components
        guard s >= 0 else { return 0 }
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : ns &+ attos / 1_000_000_000
    }

    /// As a `timeval` (`SO_RCVTIMEO`, `select`): whole microseconds.
    public var timeval: timeval {
        let (s, attos) = components
        guard s >= 0 else { return Glibc.timeval(tv_sec: 0, tv_usec: 0) }
        return Glibc.timeval(tv_sec: Int(s), tv_usec: Int(attos / 1_000_000_000_000))
    }
}
