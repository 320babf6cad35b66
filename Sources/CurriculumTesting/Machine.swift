import Foundation

/// Facts about this machine that decide whether a claim can be shown.
public enum Machine {
    /// Cores available to this process.
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }
    /// True when two things can truly run at once (parallelism claims).
    public static var isMulticore: Bool { cores >= 2 }
}
