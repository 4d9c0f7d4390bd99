import Synchronization

/// The signal of the round-trip workloads (PingPongLatency, Wakeup, Paced): a task that counts its runs and
/// publishes the count, which the producer waits to reach. Unlike `Sink`, whose producer arms it before each
/// round, the producer writes nothing the task reads, so a round trip moves two cache lines between the
/// CPUs (the task to the entrant, the count back), as the spinning floor's two atomics do: the harness adds
/// no transfer of its own to what it measures.
final class RoundTripSink: @unchecked Sendable {
    static let shared = RoundTripSink()
    /// The task the round-trip workloads submit (it captures nothing: no reference counting per submit).
    static let task: @Sendable () -> Void = { RoundTripSink.shared.hit() }

    private var ran = 0 // only touched by tasks, which the entrant runs one at a time
    private let published = Atomic<Int>(0)

    @inline(__always) func hit() {
        ran &+= 1
        published.store(ran, ordering: .releasing)
    }

    /// Tasks run so far.
    var count: Int { published.load(ordering: .acquiring) }

    /// Waits (spinning) until `total` tasks have run.
    func waitUntil(reached total: Int) { spin { published.load(ordering: .acquiring) >= total } }
}
