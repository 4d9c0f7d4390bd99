import CLoopCore
import Glibc
import Synchronization

/// A loop under test. `submit` may be called from any thread between `start()` and `shutdown()`; the
/// entrant runs each task exactly once, serially (one task at a time, each completing before the next
/// starts), in submission order per submitting thread.
protocol Entrant: AnyObject, Sendable {
    /// Readable, unique name used in every report ("LoopKit lock-free/epoll/spin", "SwiftNIO", ...).
    var name: String { get }
    func start() throws
    func submit(_ task: @escaping @Sendable () -> Void)
    /// Graceful: returns after every submitted task has run and the loop has stopped.
    func shutdown()
    /// Eventfd writes (or equivalent wake syscalls) made so far, where the entrant can count them.
    var wakeSyscalls: UInt64? { get }
}

extension Entrant {
    var wakeSyscalls: UInt64? { nil }
}

/// How to make a fresh entrant of one kind (each run gets a new loop).
struct EntrantKind: Sendable {
    let name: String
    /// The family, for the report's "best peer" and "Baseline" columns: loopkit, baseline, peer.
    let family: Family
    let make: @Sendable () throws -> any Entrant

    enum Family: String, Sendable { case loopkit, baseline, peer }
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC via the vDSO).
@inline(__always) func now() -> Int64 { lk_clock_now_ns() }

/// Spins until `condition` holds, pausing the CPU between checks and yielding it every 64 checks (a few
/// microseconds): the scheduler may have put the thread we wait for on this same CPU, and a pure spin would
/// keep it from running. Never sleeps. Every entrant is waited for this same way.
@inline(__always) func spin(until condition: () -> Bool) {
    var spins = 0
    while !condition() {
        spins &+= 1
        if spins & 63 == 0 { sched_yield() } else { lk_thread_spin_pause() }
    }
}

/// Counts tasks on the loop thread (plain stores: entrants run tasks serially) and raises a flag when the
/// expected number has run. Workloads use the one `shared` sink, so a task is a closure that captures
/// nothing (`Sink.task`): submitting it costs no reference counting, and the benchmark measures the loop,
/// not ARC traffic on a shared closure context bouncing between the producer's and the loop's cores.
final class Sink: @unchecked Sendable {
    static let shared = Sink()
    /// The task every throughput and latency workload submits.
    static let task: @Sendable () -> Void = { Sink.shared.hit() }

    private var ran = 0 // only touched by tasks, which the entrant runs one at a time
    private var target = 0
    private let finished = Atomic<Int>(0)

    /// Arms the sink for `count` more tasks. Call before submitting them.
    func expect(_ count: Int) {
        ran = 0
        target = count
        finished.store(0, ordering: .releasing)
    }

    /// The task body used by every workload: count, and signal the last one.
    @inline(__always) func hit() {
        ran &+= 1
        if ran == target { finished.store(1, ordering: .releasing) }
    }

    func waitUntilDone() { spin { finished.load(ordering: .acquiring) == 1 } }
}
