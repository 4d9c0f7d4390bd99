import CBenchSupport
import CLoopCore
import Histogram
import LoopKit
import Glibc
import Synchronization

/// What one measured run produced. Every field is a measurement of this run; nothing is derived later.
struct RunResult {
    var nsPerOp: Double
    var p50: Double? = nil
    var p99: Double? = nil
    var p999: Double? = nil
    var allocsPerOp: Double? = nil
    var wakeSyscallsPerOp: Double? = nil
    /// Further per-run figures, e.g. submit_ns_per_op (MultiProducer) or probe latencies (BatchBudget).
    var extra: [(String, Double)] = []
}

/// One workload with fixed parameters. `run` builds nothing: the caller starts and stops the entrant.
struct Workload: Sendable {
    let name: String
    let params: [(String, String)]
    let body: @Sendable (any Entrant) -> RunResult
}

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

func wakeDelta(_ entrant: any Entrant, _ before: UInt64?, ops: Int) -> Double? {
    guard let before, let after = entrant.wakeSyscalls else { return nil }
    return Double(after - before) / Double(ops)
}

enum Workloads {
    /// One producer submits `tasks` tasks back to back; time until all ran.
    static func pingPong(tasks: Int) -> Workload {
        Workload(name: "PingPong", params: [("tasks", "\(tasks)")]) { entrant in
            let sink = Sink.shared
            let task = Sink.task
            sink.expect(1_000) // warm-up
            for _ in 0..<1_000 { entrant.submit(task) }
            sink.waitUntilDone()
            let wakes = entrant.wakeSyscalls
            sink.expect(tasks)
            let start = now()
            for _ in 0..<tasks { entrant.submit(task) }
            sink.waitUntilDone()
            let elapsed = now() - start
            var r = RunResult(nsPerOp: Double(elapsed) / Double(tasks))
            r.wakeSyscallsPerOp = wakeDelta(entrant, wakes, ops: tasks)
            r.allocsPerOp = allocationsPerTask(entrant)
            return r
        }
    }

    /// One round trip at a time: submit, the task signals back, the producer (spinning) sees it.
    /// Reports, beside the entrant's percentiles, `floor_p50_ns`: the p50 of a spinning round trip through
    /// two atomics between the same producer and the entrant's own thread, measured in blocks interleaved
    /// with the entrant's round trips (`PingPong`).
    static func pingPongLatency(rounds: Int) -> Workload {
        Workload(name: "PingPongLatency", params: [("rounds", "\(rounds)")]) { entrant in
            roundTrips(entrant, rounds: rounds, gapNanoseconds: 0, floor: true)
        }
    }

    static func roundTrips(_ entrant: any Entrant, rounds: Int, gapNanoseconds: Int64, floor: Bool = false) -> RunResult {
        // One producer waits for each reply. Pin it to CPU 0 for the measurement: left free, the scheduler
        // sometimes places it on the loop thread's CPU, and the round trip then measures time slices.
        _ = lkb_pin_thread(0)
        defer { lkb_unpin_thread() }
        let sink = Sink.shared
        let task = Sink.task
        for _ in 0..<200 { // warm-up
            sink.expect(1)
            entrant.submit(task)
            sink.waitUntilDone()
        }
        var histogram = makeHistogram()
        var floorHistogram = makeHistogram()
        let pingPong = PingPong()
        var total: Int64 = 0
        let wakes = entrant.wakeSyscalls
        // In blocks: the floor (when asked) is measured between the same two threads, right after each
        // block of the entrant's round trips, so a machine that changes speed mid-run shifts both alike.
        let block = floor ? Swift.min(1_000, rounds) : rounds
        var done = 0
        while done < rounds {
            let count = Swift.min(block, rounds - done)
            for _ in 0..<count {
                if gapNanoseconds > 0 { // idle gap, outside the timed region (a spin-wait, not a sleep)
                    let until = now() + gapNanoseconds
                    spin { now() >= until }
                }
                sink.expect(1)
                let start = now()
                entrant.submit(task)
                sink.waitUntilDone()
                let elapsed = now() - start
                total += elapsed
                histogram.record(UInt64(elapsed))
            }
            done += count
            if floor { pingPong.measure(on: entrant, rounds: count, into: &floorHistogram) }
        }
        var r = RunResult(nsPerOp: Double(total) / Double(rounds))
        r.p50 = Double(histogram.valueAtPercentile(50))
        r.p99 = Double(histogram.valueAtPercentile(99))
        r.p999 = Double(histogram.valueAtPercentile(99.9))
        r.wakeSyscallsPerOp = wakeDelta(entrant, wakes, ops: rounds)
        if floor { r.extra.append(("floor_p50_ns", Double(floorHistogram.valueAtPercentile(50)))) }
        return r
    }

    /// Bursts of `burst` tasks; each burst waits for all of its tasks. ns per task.
    static func burst(burst: Int, bursts: Int) -> Workload {
        Workload(name: "Burst", params: [("burst", "\(burst)"), ("bursts", "\(bursts)")]) { entrant in
            let sink = Sink.shared
            let task = Sink.task
            sink.expect(burst)
            for _ in 0..<burst { entrant.submit(task) }
            sink.waitUntilDone()
            let wakes = entrant.wakeSyscalls
            let start = now()
            for _ in 0..<bursts {
                sink.expect(burst)
                for _ in 0..<burst { entrant.submit(task) }
                sink.waitUntilDone()
            }
            let elapsed = now() - start
            var r = RunResult(nsPerOp: Double(elapsed) / Double(burst * bursts))
            r.wakeSyscallsPerOp = wakeDelta(entrant, wakes, ops: burst * bursts)
            return r
        }
    }

    /// `producers` threads submit `perProducer` tasks each, released together; time until all ran, and the
    /// mean time each producer spent inside its submit loop per task (the contention figure).
    static func multiProducer(producers: Int, perProducer: Int) -> Workload {
        Workload(name: "MultiProducer", params: [("producers", "\(producers)"), ("tasks_per_producer", "\(perProducer)")]) { entrant in
            let sink = Sink.shared
            let task = Sink.task
            let ready = Atomic<Int>(0)
            let go = Atomic<Bool>(false)
            let submitNanoseconds = Atomic<Int>(0)
            sink.expect(producers * perProducer)
            let wakes = entrant.wakeSyscalls
            nonisolated(unsafe) var start: Int64 = 0
            runOnThreads(producers + 1) { index in
                if index == producers {
                    spin { ready.load(ordering: .acquiring) == producers }
                    start = now()
                    go.store(true, ordering: .releasing)
                    sink.waitUntilDone()
                    return
                }
                ready.add(1, ordering: .acquiringAndReleasing)
                spin { go.load(ordering: .acquiring) }
                let begin = now()
                for _ in 0..<perProducer { entrant.submit(task) }
                submitNanoseconds.add(Int(now() - begin), ordering: .relaxed)
            }
            let elapsed = now() - start
            let total = producers * perProducer
            var r = RunResult(nsPerOp: Double(elapsed) / Double(total))
            r.wakeSyscallsPerOp = wakeDelta(entrant, wakes, ops: total)
            r.extra.append(("submit_ns_per_op", Double(submitNanoseconds.load(ordering: .relaxed)) / Double(total)))
            return r
        }
    }

    /// Round trips to a loop that is asleep (an idle gap longer than any spin before each submit) or kept
    /// running (a chain of tasks resubmitting themselves). Reports wake syscalls per task.
    static func wakeup(sleeping: Bool, rounds: Int) -> Workload {
        Workload(name: "Wakeup", params: [("loop", sleeping ? "sleeping" : "running"), ("rounds", "\(rounds)")]) { entrant in
            if sleeping { return roundTrips(entrant, rounds: rounds, gapNanoseconds: 1_000_000) }
            let stop = Atomic<Bool>(false)
            let stopped = Atomic<Bool>(false)
            final class Keeper: @unchecked Sendable {
                var step: (@Sendable () -> Void)?
            }
            let keeper = Keeper()
            keeper.step = { [unowned entrant] in
                if stop.load(ordering: .relaxed) { stopped.store(true, ordering: .releasing); return }
                entrant.submit(keeper.step!)
            }
            entrant.submit(keeper.step!)
            let r = roundTrips(entrant, rounds: rounds, gapNanoseconds: 0)
            stop.store(true, ordering: .relaxed)
            spin { stopped.load(ordering: .acquiring) }
            keeper.step = nil
            return r
        }
    }

    /// One producer at a fixed rate for a fixed count: task i is submitted at start + i / rate, and the
    /// producer waits for it to signal back (the round trip, the only timed region: p50/p99/p99.9). Between
    /// tasks the producer sleeps through the gap when more than 200 µs remain (timer slack 1 ns) and spins
    /// through the rest. The figure per run is the CPU the entrant used per task: the process CPU clock
    /// minus the producer thread's CPU clock over the run, i.e. the loop's thread (and any helper thread
    /// the entrant runs) on thread CPU clocks, not wall time.
    static func paced(rate: Int, tasks: Int) -> Workload {
        Workload(name: "Paced", params: [("rate", "\(rate)"), ("tasks", "\(tasks)")]) { entrant in
            lkb_set_timer_slack_ns(1)
            _ = lkb_pin_thread(0) // as in roundTrips: keeps the producer off the loop thread's CPU
            defer { lkb_unpin_thread() }
            let sink = Sink.shared
            let task = Sink.task
            let period = 1_000_000_000 / Int64(rate)
            func run(_ count: Int, _ histogram: inout Histogram<UInt64>?) {
                let start = now()
                for i in 0..<count {
                    let due = start + Int64(i) * period
                    waitUntil(due)
                    sink.expect(1)
                    let t0 = now()
                    entrant.submit(task)
                    sink.waitUntilDone()
                    histogram?.record(UInt64(now() - t0))
                }
            }
            var none: Histogram<UInt64>? = nil
            run(Swift.min(tasks, 200), &none) // warm-up at the same pace: adaptive idle strategies settle
            var histogram: Histogram<UInt64>? = makeHistogram()
            let wakes = entrant.wakeSyscalls
            let process0 = cpuNanoseconds(CLOCK_PROCESS_CPUTIME_ID), own0 = cpuNanoseconds(CLOCK_THREAD_CPUTIME_ID)
            let start = now()
            run(tasks, &histogram)
            let elapsed = now() - start
            let process1 = cpuNanoseconds(CLOCK_PROCESS_CPUTIME_ID), own1 = cpuNanoseconds(CLOCK_THREAD_CPUTIME_ID)
            let loopCPU = Swift.max(0, (process1 - process0) - (own1 - own0))
            var r = RunResult(nsPerOp: Double(loopCPU) / Double(tasks))
            r.p50 = Double(histogram!.valueAtPercentile(50))
            r.p99 = Double(histogram!.valueAtPercentile(99))
            r.p999 = Double(histogram!.valueAtPercentile(99.9))
            r.wakeSyscallsPerOp = wakeDelta(entrant, wakes, ops: tasks)
            r.extra.append(("achieved_rate", Double(tasks) * 1e9 / Double(elapsed)))
            return r
        }
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

    /// LoopKit only: a saturating producer against the loop's external batch budget, with a probe on the
    /// internal lane measuring how long other work waits behind a tick.
    static func batchBudget(budget: Int, tasks: Int) -> Workload {
        Workload(name: "BatchBudget", params: [("budget", "\(budget)"), ("tasks", "\(tasks)")]) { entrant in
            guard let loopKit = entrant as? LoopKitEntrant else { fatalError("BatchBudget runs LoopKit entrants only") }
            let sink = Sink.shared
            let task = Sink.task
            let probeDone = Atomic<Int>(0)
            let producerDone = Atomic<Bool>(false)
            nonisolated(unsafe) var histogram = makeHistogram()
            nonisolated(unsafe) var elapsed: Int64 = 0
            sink.expect(tasks)
            runOnThreads(2) { index in
                if index == 0 {
                    let start = now()
                    for _ in 0..<tasks { loopKit.submit(task) }
                    sink.waitUntilDone()
                    elapsed = now() - start
                    producerDone.store(true, ordering: .releasing)
                } else {
                    var round = 0
                    while !producerDone.load(ordering: .acquiring) {
                        round += 1
                        let mark = round
                        let start = now()
                        loopKit.submitInternal { probeDone.store(mark, ordering: .releasing) }
                        spin { probeDone.load(ordering: .acquiring) == mark }
                        histogram.record(UInt64(now() - start))
                    }
                }
            }
            var r = RunResult(nsPerOp: Double(elapsed) / Double(tasks))
            r.p50 = Double(histogram.valueAtPercentile(50))
            r.p99 = Double(histogram.valueAtPercentile(99))
            r.p999 = Double(histogram.valueAtPercentile(99.9))
            r.extra.append(("probes", Double(histogram.totalCount)))
            return r
        }
    }
}

/// The spinning round-trip floor between the producer and an entrant's own thread: a task turns that thread
/// into an echo for a block of pings through two atomics (lkb_pingpong), and the producer times each.
final class PingPong: @unchecked Sendable {
    private let shared: OpaquePointer
    private var next: UInt64 = 1

    init() { shared = lkb_pingpong_create() }
    deinit { lkb_pingpong_destroy(shared) }

    func measure(on entrant: any Entrant, rounds: Int, into histogram: inout Histogram<UInt64>) {
        let first = next, shared = SharedPointer(self.shared)
        // One more ping than measured: the first only waits for the echo task to start.
        entrant.submit { lkb_pingpong_echo(shared.pointer, first, UInt64(rounds + 1)) }
        _ = lkb_pingpong_round_trip(self.shared, first)
        for i in 1...UInt64(rounds) {
            histogram.record(UInt64(Swift.max(0, lkb_pingpong_round_trip(self.shared, first + i))))
        }
        next = first + UInt64(rounds) + 1
    }

    private struct SharedPointer: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
    }
}

/// The C-level microbenchmarks of the core; each run calls the C function once.
enum CoreMicro {
    static let operations: [(String, @Sendable () -> Double)] = [
        ("floor_handoff", { lkb_floor_handoff_ns() }),
        ("floor_round_trip", { lkb_floor_round_trip_ns() }),
        ("ingress_per_producer_handoff", { lkb_ingress_handoff_ns(Int32(LK_INGRESS_PER_PRODUCER.rawValue)) }),
        ("ingress_per_producer_fenced_handoff", { lkb_ingress_handoff_fenced_ns() }),
        ("ingress_per_producer_notify_each_handoff", { lkb_ingress_handoff_notify_each_ns() }),
        ("submit_handoff", { lkb_submit_handoff_ns() }),
        ("ingress_lock_free_handoff", { lkb_ingress_handoff_ns(Int32(LK_INGRESS_LOCK_FREE.rawValue)) }),
        ("ingress_chunked_handoff", { lkb_ingress_handoff_ns(Int32(LK_INGRESS_CHUNKED.rawValue)) }),
        ("mpsc_push_pop", { lkb_mpsc_push_pop_ns() }),
        ("chunkq_push_pop", { lkb_chunkq_push_pop_ns(1) }),
        ("chunkq_push_pop_batch64", { lkb_chunkq_push_pop_ns(64) }),
        ("ring_push_pop", { lkb_ring_push_pop_ns() }),
        ("ingress_lock_free_push_pop", { lkb_ingress_push_pop_ns(1) }),
        ("ingress_chunked_push_pop", { lkb_ingress_push_pop_ns(0) }),
        ("wake_syscall_epoll", { lkb_wake_syscall_ns(0) }),
        ("wake_syscall_io_uring", { lkb_wake_syscall_ns(1) }),
        ("wake_round_trip_epoll", { lkb_wake_round_trip_ns(0) }),
        ("wake_round_trip_io_uring", { lkb_wake_round_trip_ns(1) }),
    ]
}
