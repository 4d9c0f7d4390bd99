import CBenchSupport
import Histogram

/// Latency histogram: 1 ns … 60 s at 3 significant digits (HdrHistogram).
func makeHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
}

/// Counts allocations per task over `tasks` submissions of one reused closure, outside any timed region.
func allocationsPerTask(_ entrant: any Entrant, tasks: Int = 10_000) -> Double {
    let sink = Sink.shared
    let task = Sink.task
    sink.expect(tasks)
    lkb_alloc_enable(1)
    let before = lkb_alloc_count()
    for _ in 0..<tasks { entrant.submit(task) }
    sink.waitUntilDone()
    let after = lkb_alloc_count()
    lkb_alloc_enable(0)
    return Double(after - before) / Double(tasks)
}

/// Wake syscalls per operation since `before` (nil when the entrant does not count them).
func wakeDelta(_ entrant: any Entrant, _ before: UInt64?, ops: Int) -> Double? {
    guard let before, let after = entrant.wakeSyscalls else { return nil }
    return Double(after - before) / Double(ops)
}
