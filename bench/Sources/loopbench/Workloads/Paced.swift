import CBenchSupport
import CLoopCore
import Glibc
import Histogram
import LoopKit

/// One producer at a fixed rate for a fixed count: task i is submitted at start + i / rate, and the
/// producer waits for it to signal back (the round trip, the only timed region: p50/p99/p99.9). Between
/// tasks the producer sleeps through the gap when more than 200 µs remain (timer slack 1 ns) and spins
/// through the rest. The figure per run is the CPU the entrant used per task: the process CPU clock
/// minus the producer thread's CPU clock over the run, i.e. the loop's thread (and any helper thread
/// the entrant runs) on thread CPU clocks, not wall time.
struct Paced: Workload {
    let info = WorkloadInfo(
        name: "Paced",
        about: "One producer at a fixed arrival rate, each task a round trip; the CPU the entrant spent per task.",
        metric: "entrant CPU ns per task", fields: Field.latency + [.wakeSyscallsPerOp, .achievedRate], latency: true,
        sweep: Sweep(parameter: "rate", label: "arrival rate (tasks/s)", figures: ["ns_per_op"]))

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let sizes: [(rate: Int, tasks: Int)]
        switch plan.suite {
        case .quick: sizes = [(1_000, 500), (10_000, 3_000), (50_000, 10_000)]
        case .full, .expanded: sizes = [(1_000, 1_000), (10_000, 10_000), (50_000, 25_000)]
        case .micro, .scaling: return []
        }
        return sizes.map { size in
            plan.everyEntrant([("rate", "\(size.rate)"), ("tasks", "\(size.tasks)")]) {
                Self.run($0, rate: size.rate, tasks: size.tasks)
            }
        }
    }

    static func run(_ entrant: any Entrant, rate: Int, tasks: Int) -> RunResult {
        lkb_set_timer_slack_ns(1)
        let sink = RoundTripSink.shared
        let task = RoundTripSink.task
        let period = 1_000_000_000 / Int64(rate)
        func pace(_ count: Int, _ histogram: inout Histogram<UInt64>?) {
            let start = now()
            for i in 0..<count {
                let due = start + Int64(i) * period
                waitUntil(due)
                let expected = sink.count + 1
                let t0 = now()
                entrant.submit(task)
                sink.waitUntil(reached: expected)
                histogram?.record(UInt64(now() - t0))
            }
        }
        var none: Histogram<UInt64>? = nil
        pace(Swift.min(tasks, 200), &none) // warm-up at the same pace: adaptive idle strategies settle
        // As in roundTrips: the producer on CPU 0, the entrant's threads on the others; pinned after the
        // warm-up so that no thread the entrant starts on demand inherits the producer's pin.
        _ = lkb_pin_thread_alone(0)
        defer { lkb_unpin_thread() }
        var histogram: Histogram<UInt64>? = makeHistogram()
        let wakes = entrant.wakeSyscalls
        let process0 = cpuNanoseconds(CLOCK_PROCESS_CPUTIME_ID), own0 = cpuNanoseconds(CLOCK_THREAD_CPUTIME_ID)
        let start = now()
        pace(tasks, &histogram)
        let elapsed = now() - start
        let process1 = cpuNanoseconds(CLOCK_PROCESS_CPUTIME_ID), own1 = cpuNanoseconds(CLOCK_THREAD_CPUTIME_ID)
        let loopCPU = Swift.max(0, (process1 - process0) - (own1 - own0))
        var r = RunResult(nsPerOp: Double(loopCPU) / Double(tasks))
        r.record(latency: histogram!)
        r.set(.wakeSyscallsPerOp, wakeDelta(entrant, wakes, ops: tasks))
        r.set(.achievedRate, Double(tasks) * 1e9 / Double(elapsed))
        return r
    }

    /// Sleeps (absolute, CLOCK_MONOTONIC) until 200 µs before `deadline`, then spins until it.
    static func waitUntil(_ deadline: Int64) {
        let sleepUntil = deadline - 200_000
        if sleepUntil > now() {
            var ts = timespec(tv_sec: Int(sleepUntil / 1_000_000_000), tv_nsec: Int(sleepUntil % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
        }
        while now() < deadline { lk_thread_spin_pause() }
    }

    static func cpuNanoseconds(_ clock: clockid_t) -> Int64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
