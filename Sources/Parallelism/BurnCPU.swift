import CurriculumCore

/// Spins on the calling thread until it has used `cpu` of CPU time.
///
/// The honest stand-in for the book's counting loops: it cannot be folded into
/// a constant by the optimiser, and it is fair on slow or busy machines because
/// it measures the thread's own CPU clock, not the wall clock. It never
/// suspends, so it holds whatever executor it runs on for the whole time — the
/// point of listings 2.18–2.19 and 2.23.
///
/// - Returns: the number of iterations it spun (so the work is observable).
@discardableResult
public func burnCPU(for cpu: Duration) -> Int {
    let end = CPUTime.thread() + cpu
    var iterations = 0
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    while CPUTime.thread() < end {
        for _ in 0..<1_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
        }
        iterations &+= 1
    }
    return iterations &+ Int(truncatingIfNeeded: x & 1)
}
