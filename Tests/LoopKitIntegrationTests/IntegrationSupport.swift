import Logging
import LoopKit
import Synchronization
import Testing
import TestSupport

/// A clock that moves only when a test advances it, so that the metrics reporter's timer fires on cue.
final class SteppedClock: MonotonicClock, Sendable {
    private let current = Atomic<Int64>(1_000_000_000)
    func nanoseconds() -> Int64 { current.load(ordering: .acquiring) }
    func step(_ duration: Duration) {
        current.add(Int64(duration / .nanoseconds(1)), ordering: .releasing)
    }
}

/// A count any thread may bump.
final class Tally: Sendable {
    private let value = Atomic<Int>(0)
    func add() { value.add(1, ordering: .relaxed) }
    var total: Int { value.load(ordering: .relaxed) }
}

extension EventLoop {
    /// Returns once the loop has run a full tick that began after the call: work due or queued before the
    /// call has been run, and the metrics it produced have been published.
    func settle() async throws {
        try await perform {}
        try await perform {}
    }
}

extension EventLoopGroup {
    /// Holds every loop inside a task and queues `perLoop` tasks behind it on each. Returns the count of those
    /// tasks that ran and a function that lets the loops go. A hold ends by itself after
    /// `heldLoopLimitSeconds` (longer than the test's own bounded waits); one that did is an issue of the
    /// test when it releases the loops.
    func queueBehindHeldLoops(perLoop: Int) throws -> (ran: Tally, release: @Sendable () -> Void) {
        let ran = Tally()
        let held = Atomic<Int>(0)
        let hold = Atomic<Bool>(true)
        let expired = Atomic<Bool>(false)
        for loop in self {
            try loop.submit {
                held.add(1, ordering: .releasing)
                if !waitUntil(seconds: heldLoopLimitSeconds, { !hold.load(ordering: .acquiring) }) {
                    expired.store(true, ordering: .releasing)
                }
            }
            for _ in 0..<perLoop { try loop.submit { ran.add() } }
        }
        precondition(waitUntil { held.load(ordering: .acquiring) == count }, "a loop never ran its holding task")
        return (ran, {
            hold.store(false, ordering: .releasing)
            if expired.load(ordering: .acquiring) {
                Issue.record("a loop's hold ended by itself after \(heldLoopLimitSeconds) s, before the test released it")
            }
        })
    }
}

/// A swift-log handler that keeps its entries in memory, for tests that watch them while loops log.
///
/// Not swift-log's InMemoryLogHandler: its `entries` hands out the array it appends to, and a test that
/// reads that copy while another thread appends shares the array's buffer without any synchronisation
/// ThreadSanitizer can see (the uniqueness check runs in the uninstrumented standard library), which it
/// reports as a race. Here `count` and `contains` read under the lock, and `entries` is for when the logging
/// is over.
struct TestLogHandler: LogHandler {
    struct Entry {
        let level: Logger.Level
        let message: String
        let error: (any Error)?
        let metadata: Logger.Metadata
    }

    private final class Store: Sendable {
        let entries = Locked<[Entry]>([])
    }

    private let store = Store()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let entry = Entry(level: event.level, message: event.message.description, error: event.error,
                          metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        store.entries.withLock { $0.append(entry) }
    }

    var count: Int { store.entries.withLock { $0.count } }

    func contains(message: String) -> Bool { store.entries.withLock { $0.contains { $0.message == message } } }

    /// A copy of the entries; take it once nothing logs any more.
    var entries: [Entry] { store.entries.withLock { $0 } }

    /// A logger whose entries go to this handler.
    var logger: Logger { Logger(label: "test") { _ in self } }
}
