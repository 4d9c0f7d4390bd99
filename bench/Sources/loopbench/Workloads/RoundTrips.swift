import CBenchSupport
import Histogram

/// One producer, one round trip at a time (PingPongLatency, Wakeup): submit, the task signals back, the
/// producer (spinning) sees it; `gapNanoseconds` of idle spin before each submit, outside the timed region.
/// With `floor`, the spinning round-trip floor between the same two threads is measured after each block
/// of 1000 round trips and reported as `floor_p50_ns`.
func roundTrips(_ entrant: any Entrant, rounds: Int, gapNanoseconds: Int64, floor: Bool = false) -> RunResult {
    let sink = RoundTripSink.shared
    let task = RoundTripSink.task
    var expected = sink.count
    for _ in 0..<200 { // warm-up
        expected += 1
        entrant.submit(task)
        sink.waitUntil(reached: expected)
    }
    // One producer waits for each reply. Pin it to CPU 0 for the measurement and keep every other thread off
    // CPU 0: left free, the scheduler sometimes places the loop thread on the producer's CPU, and the round
    // trip then measures time slices (a spinning loop takes turns with the producer at each yield). Pinned
    // after the warm-up: a thread the entrant starts from the submitting thread (Dispatch's workers, started
    // on demand) inherits its CPU mask, and would be held on the producer's CPU.
    _ = lkb_pin_thread_alone(0)
    defer { lkb_unpin_thread() }
    var histogram = makeHistogram()
    var floorHistogram = makeHistogram()
    let floorProbe = RoundTripFloor()
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
            expected += 1
            let start = now()
            entrant.submit(task)
            sink.waitUntil(reached: expected)
            let elapsed = now() - start
            total += elapsed
            histogram.record(UInt64(elapsed))
        }
        done += count
        if floor { floorProbe.measure(on: entrant, rounds: count, into: &floorHistogram) }
    }
    var r = RunResult(nsPerOp: Double(total) / Double(rounds))
    r.record(latency: histogram)
    r.set(.wakeSyscallsPerOp, wakeDelta(entrant, wakes, ops: rounds))
    if floor { r.set(.floorP50, Double(floorHistogram.valueAtPercentile(50))) }
    return r
}

/// The spinning round-trip floor between the producer and an entrant's own thread: a task turns that thread
/// into an echo for a block of pings through two atomics (lkb_pingpong), and the producer times each.
final class RoundTripFloor: @unchecked Sendable {
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
