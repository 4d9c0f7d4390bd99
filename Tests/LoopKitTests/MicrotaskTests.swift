import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Microtasks run after each phase (or each task in strict mode), within their budget, in order.
/// Serialized: some tests queue a million microtasks, and on a small machine running them side by side
/// starves the rest of the test run.
@Suite(.serialized) struct MicrotaskTests {
    /// A microtask queued by a task runs after the tasks of the current phase, before the next phase.
    @Test func microtasksRunAfterTheCurrentPhaseBeforeTheNextTask() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let log = OrderLog<String>()
        let release = try holdLoop(loop) // t1 and t2 are both queued, then taken in one batch
        try loop.submit {
            try? loop.queueMicrotask { log.append("m1") }
            log.append("t1")
        }
        try loop.submit { log.append("t2") }
        release()
        #expect(waitUntil { log.count == 3 })
        #expect(log.snapshot == ["t1", "t2", "m1"], "phase mode: after the external phase")
    }

    /// With strict microtask ordering, a microtask queued by a task runs right after that task, before the next
    /// one.
    @Test func strictModeRunsMicrotasksAfterEachTask() throws {
        var configuration = EventLoop.Configuration.testing()
        configuration.strictMicrotaskOrdering = true
        let loop = try startedLoop(configuration)
        defer { loop.shutdown() }
        let log = OrderLog<String>()
        let release = try holdLoop(loop) // t1 and t2 are both queued, then taken in one batch
        try loop.submit {
            try? loop.queueMicrotask { log.append("m1") }
            log.append("t1")
        }
        try loop.submit { log.append("t2") }
        release()
        #expect(waitUntil { log.count == 3 })
        #expect(log.snapshot == ["t1", "m1", "t2"], "strict mode: right after t1, within the batch")
    }

    /// Strict mode drains after every task; a microtask that runs an internal task inline re-enters the
    /// drain. The nested drain must not disturb the batch the outer one is still working through.
    @Test func nestedStrictDrainKeepsEveryMicrotaskExactlyOnce() throws {
        var configuration = EventLoop.Configuration.testing()
        configuration.strictMicrotaskOrdering = true
        let loop = try startedLoop(configuration)
        defer { loop.shutdown() }
        let log = OrderLog<String>()
        try loop.submit {
            try? loop.queueMicrotask {
                log.append("A")
                try? loop.queueMicrotask { log.append("C1") }
                try? loop.queueMicrotask { log.append("C2") }
                try? loop.submitInternal { log.append("D") } // nothing queued ahead: runs inline
            }
            try? loop.queueMicrotask { log.append("B") }
        }
        #expect(waitUntil { log.count >= 5 })
        // Only now (a task queued earlier would sit in the same batch and keep D from running inline): a later
        // tick's task, so every drain of the first tick is over when it has run.
        let marker = Counter()
        try loop.submit { marker.increment() }
        #expect(waitUntil { marker.count == 1 })
        #expect(log.snapshot.sorted() == ["A", "B", "C1", "C2", "D"], "each microtask exactly once")
    }

    /// Microtasks queued by microtasks (a chain of 10,000) all run before the loop sleeps.
    @Test func microtasksQueuedByMicrotasksAllRunBeforeSleep() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let ran = Counter()
        @Sendable func chain(_ n: Int) {
            ran.increment()
            if n > 0 { try? loop.queueMicrotask { chain(n - 1) } }
        }
        try loop.submit { chain(10_000) }
        #expect(waitUntil { ran.count == 10_001 })
    }

    /// A million microtasks queued by one task all run, through the ring's overflow, a budget at a time.
    @Test func aMillionMicrotasksFromOneTask() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let ran = Counter()
        let total = stressCount(1_000_000, minimum: 100_000)
        try loop.submit { for _ in 0..<total { try! loop.queueMicrotask { ran.increment() } } }
        #expect(waitUntil(seconds: 120) { ran.count == total })
    }

    /// A million microtasks queued by one task all run, in order, while an external task, a timer and another
    /// thread's task are served between budgets; the loop then sleeps and still serves.
    @Test func aMillionMicrotasksFromOneTaskAllRunInOrderAndTheLoopStaysResponsive() throws {
        let loop = try startedLoop(.testing(idle: .park))
        defer { loop.shutdown() }
        let total = 1_000_000
        let next = Atomic<Int>(0) // the index the next microtask must have (loop thread only; atomic for Sendable)
        let outOfOrder = Counter(), queueFailures = Counter()
        let externalAt = Atomic<Int>(-1), timerAt = Atomic<Int>(-1), foreignAt = Atomic<Int>(-1)
        let foreignQueued = Atomic<Bool>(false)
        try loop.submit {
            for i in 0..<total {
                do {
                    try loop.queueMicrotask {
                        if next.load(ordering: .relaxed) != i { outOfOrder.increment() }
                        next.store(i + 1, ordering: .relaxed)
                        // Hold until a task from another thread is queued behind ~999,000 microtasks.
                        if i == 1000 { _ = waitUntil(seconds: 10) { foreignQueued.load(ordering: .acquiring) } }
                    }
                } catch {
                    queueFailures.increment()
                }
            }
            _ = try? loop.submit { externalAt.store(next.load(ordering: .relaxed), ordering: .relaxed) }
            _ = try? loop.scheduleTimer(after: .zero) { timerAt.store(next.load(ordering: .relaxed), ordering: .relaxed) }
        }
        #expect(waitUntil(seconds: 30) { next.load(ordering: .relaxed) > 1000 })
        try loop.submit { foreignAt.store(next.load(ordering: .relaxed), ordering: .relaxed) }
        foreignQueued.store(true, ordering: .releasing)
        #expect(waitUntil(seconds: 60) { next.load(ordering: .relaxed) == total })
        #expect(queueFailures.count == 0)
        #expect(outOfOrder.count == 0)
        // Each ran before the last microtask: the overflow is drained a budget at a time, between phases.
        let ranAt = [("external task", externalAt.load(ordering: .relaxed)), ("timer", timerAt.load(ordering: .relaxed)),
                     ("foreign task", foreignAt.load(ordering: .relaxed))]
        for (name, value) in ranAt {
            #expect(value >= 0 && value < total, "\(name) ran after \(value) microtasks")
        }
        #expect(waitUntil(seconds: 10) { loop.state == .sleeping }, "the loop never slept after the microtasks")
        let stillServes = try performBlocking(loop) { 42 }
        #expect(stillServes == 42)
    }
}
