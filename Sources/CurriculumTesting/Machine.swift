import Foundation

/// Facts about this machine that decide whether a claim can be shown.
public enum Machine {
    /// Cores available to this process.
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }
    /// True when two things can truly run at once (parallelism claims).
    public static var isMulticore: Bool { cores >= 2 }

    /// True when `CI=true` (or `CI=1`): the run is CI's, on a machine that
    /// runs nothing else, so a test may not skip for load.
    public static var isCI: Bool {
        let value = ProcessInfo.processInfo.environment["CI"]?.lowercased()
        return value == "true" || value == "1"
    }
}
