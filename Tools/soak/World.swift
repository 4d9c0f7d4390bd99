import Glibc
import LoopKit
import LoopKitConcurrencyHelpers
import Synchronization

/// What the controller publishes to the producers: the current epoch's loop, whether its shutdown has
/// begun, and whether the soak is over. Producers read the epoch number (acquiring) on their slow paths
/// only, and the loop under a mutex only when the epoch changed.
final class World: Sendable {
    private let before = CacheLinePadding()
    /// The newest published epoch (1, 2, ...). Stored releasing after the previous loop has terminated.
    let epoch = Atomic<Int>(0)
    /// The epoch whose shutdown has begun. A hint for producers (relaxed).
    let closing = Atomic<Int>(0)
    /// Set when every producer has finished and the last loop has terminated.
    let finished = Atomic<Bool>(false)
    /// Producers that have had all their tasks accepted.
    let producersDone = Atomic<Int>(0)
    /// What the controller is doing (a `Phase`), for the watchdog.
    let phase = Atomic<Int>(0)
    private let after = CacheLinePadding()
    private let current = Mutex<(epoch: Int, loop: EventLoop?)>((0, nil))

    enum Phase: Int {
        case starting, creatingLoop, running, shuttingDown, verifying
        var name: String { ["starting", "creating a loop", "running an epoch", "shutting a loop down", "verifying"][rawValue] }
    }

    func publish(_ loop: EventLoop, epoch n: Int) {
        current.withLock { $0 = (n, loop) }
        epoch.store(n, ordering: .releasing)
    }

    /// Drops the last loop (the soak is over).
    func unpublish() {
        current.withLock { $0.loop = nil }
    }

    /// The loop now published (for the watchdog).
    var currentLoop: (epoch: Int, loop: EventLoop?) { current.withLock { $0 } }

    /// Blocks until an epoch newer than `epoch` is published; nil when the soak finished instead.
    func waitForEpoch(after epoch: Int) -> (loop: EventLoop, epoch: Int)? {
        var backoff = Backoff()
        while self.epoch.load(ordering: .acquiring) <= epoch {
            if finished.load(ordering: .acquiring) { return nil }
            backoff.pause()
        }
        let c = current.withLock { $0 }
        return (c.loop!, c.epoch)
    }
}

/// What one producer publishes about itself: progress for the controller (which ends an epoch after enough
/// tasks were accepted) and for the watchdog. Written only by its producer (relaxed).
final class ProducerSlot: Sendable {
    private let before = CacheLinePadding()
    let accepted = Atomic<Int>(0)
    let rejected = Atomic<Int>(0)
    /// Submits a loop accepted after it had refused one from this producer (must stay 0).
    let acceptedAfterRefusal = Atomic<Int>(0)
    let acceptedAfterShutdownBegan = Atomic<Int>(0)
    let overrunReached = Atomic<Int>(0)
    /// Accepted tasks that had not run when their loop terminated, found at epoch switches (0 unless lost).
    let unrunAtTermination = Atomic<Int>(0)
    /// Submits refused with `.outOfMemory` (nothing queued; retried on the same loop after a pause), by
    /// `RefusalChannel`. Expected only under SOAK_FAULTS=on.
    let refusedOutOfMemory = RefusalChannel.allCases.map { _ in PaddedCounter() }
    var refusedOutOfMemoryTotal: Int { refusedOutOfMemory.reduce(0) { $0 + $1.value.load(ordering: .relaxed) } }
    /// Submits refused with any other `EventLoopError` but `.terminated` (each one FAILs).
    let refusedOther = Atomic<Int>(0)
    /// Submits that threw something not an `EventLoopError` (each one FAILs: every refusal must be typed).
    let refusedUntyped = Atomic<Int>(0)
    let epoch = Atomic<Int>(0)
    let state = Atomic<Int>(0)
    private let after = CacheLinePadding()

    enum State: Int {
        case submitting, windowFull, waitingForEpoch, done
        var name: String { ["submitting", "waiting: window full", "waiting for the next loop", "done"][rawValue] }
    }
}

/// Yield a few times, then sleep, doubling up to a millisecond: on a 2-core machine spinning waiters would
/// take the CPU the loop needs.
struct Backoff {
    private var round = 0
    mutating func pause() {
        round += 1
        if round <= 4 {
            sched_yield()
        } else {
            usleep(UInt32(Swift.min(1_000, 10 << Swift.min(round - 5, 7))))
        }
    }
}
