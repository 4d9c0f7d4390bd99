import LoopKitConcurrencyHelpers
import Synchronization

/// Starts a set of threads together, after each has done its setup (allocations, thread start-up), so that
/// a timed region begins when all of them can work: `run` starts the threads, waits until each has called
/// `arriveAndWait`, reads the clock, lets them go, and returns that time once every thread has returned.
final class StartGate: Sendable {
    private let threads: Int
    private let arrived = Atomic<Int>(0)
    private let open = Atomic<Bool>(false)

    init(threads: Int) { self.threads = threads }

    /// A thread: its setup is done; waits (spinning, yielding) until all have arrived and the gate opens.
    func arriveAndWait() {
        arrived.add(1, ordering: .acquiringAndReleasing)
        spin { open.load(ordering: .acquiring) }
    }

    /// Runs `body(i)` on `threads` threads, each of which must call `arriveAndWait` once; returns the time
    /// (`now()`) at which the gate opened.
    func run(_ body: @escaping @Sendable (Int) -> Void) -> Int64 {
        let group = ThreadGroup(threads, body)
        spin { arrived.load(ordering: .acquiring) == threads }
        let start = now()
        open.store(true, ordering: .releasing)
        group.join()
        return start
    }
}
