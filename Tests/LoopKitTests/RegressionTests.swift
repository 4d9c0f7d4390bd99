import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// One test per defect the loop must never show again: the internal lane's inline fast path running a task
/// off the loop thread, the microtask ring reading non-empty after its overflow was drained, and the tick
/// reading the anchor without its lock. Each test fails when its defect is put back.
@Suite struct RegressionTests {
    /// The inline fast path of submitInternal runs a task inline only on the loop thread: tasks submitted from
    /// other threads while the loop is busy (running, not asleep) all run on the loop thread.
    @Test func submitInternalFromForeignThreadsRunsOnTheLoopThread() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let total = stressCount(20_000, minimum: 2_000)
        let ran = Counter()
        let offLoop = Counter()
        // Keep the loop busy (running, not sleeping) while the foreign threads submit.
        let stopBusy = Atomic<Bool>(false)
        @Sendable func busy() {
            guard !stopBusy.load(ordering: .relaxed) else { return }
            try? loop.submit { busy() }
        }
        try loop.submit { busy() }
        runOnThreads(2) { _ in
            for _ in 0..<(total / 2) {
                try! loop.submitInternal {
                    if !loop.inEventLoop { offLoop.increment() }
                    ran.increment()
                }
            }
        }
        #expect(waitUntil { ran.count == total })
        stopBusy.store(true, ordering: .relaxed)
        #expect(offLoop.count == 0, "tasks ran off the loop thread")
    }

    /// The ring reads empty once its overflow is drained, even when the drain took several budgets: after more
    /// microtasks than the ring holds have run, the loop goes to sleep and stops ticking (a ring that still
    /// looked non-empty would keep it spinning).
    @Test func loopSleepsAfterMicrotasksOverflowedTheRing() throws {
        var configuration = EventLoop.Configuration.testing(idle: .park)
        configuration.microtaskBudget = 1000
        configuration.metricsEnabled = true
        let loop = try startedLoop(configuration)
        // close(), not shutdown(): should the ring never look empty, a graceful drain would wait for it forever.
        defer { loop.close() }
        let total = 4096 + 2500 // LK_RING_CAPACITY + a partly drained overflow
        let ran = Counter()
        try loop.submit {
            for _ in 0..<total { try! loop.queueMicrotask { ran.increment() } }
        }
        #expect(waitUntil { ran.count == total })
        #expect(waitUntil(seconds: 10) { loop.state == .sleeping }, "the loop never went to sleep after draining")
        let ticks = loop.metrics()!.ticks
        // Asleep means no more ticks. (A loop that believed work remained would tick continuously.)
        let asleep = waitUntil(seconds: 2) { loop.state == .sleeping && loop.metrics()!.ticks == ticks }
        #expect(asleep)
    }

    /// The tick reads the anchor under the lock setTickAnchor writes it under: writers on other threads race
    /// the loop's ticks without a data race (ThreadSanitizer, `make test-tsan`, fails the run on one), and a
    /// tick that starts after an anchor was set reports that anchor plus the time since.
    @Test func tickAnchorWritersRaceTicksWithoutADataRace() async throws {
        let loop = try startedLoop()
        defer { loop.shutdownForCleanup() }
        let stop = Atomic<Bool>(false)
        let ticks = Counter()
        @Sendable func ticker() {
            guard !stop.load(ordering: .relaxed) else { return }
            _ = loop.currentTickTime
            ticks.increment()
            try? loop.submit { ticker() }
        }
        try loop.submit { ticker() }
        #expect(waitUntil { ticks.count > 0 }, "the loop never ran the ticker")
        let ticksBefore = ticks.count
        runOnThreads(2) { index in
            for i in 0..<stressCount(20_000, minimum: 2_000) {
                loop.setTickAnchor(.seconds(index * 1_000_000 + i))
                _ = loop.tickAnchor
                _ = loop.currentTickTime
                // The anchor's mutex is not fair: two writers re-taking it back to back can keep the loop's
                // reader waiting for the whole run (under ThreadSanitizer they do). A yield now and then lets
                // the ticks interleave with the writes, which is the race this test is about.
                if i & 63 == 0 { sched_yield() }
            }
        }
        stop.store(true, ordering: .relaxed)
        #expect(ticks.count > ticksBefore, "no tick ran while the writers wrote")
        let before = monotonicNanoseconds()
        loop.setTickAnchor(.seconds(42))
        #expect(loop.tickAnchor == .seconds(42))
        // A tick that starts after the new anchor reports it plus the (small) time elapsed since it was set.
        // The first round trip may land in a tick already under way; the second runs in a later tick.
        _ = try await loop.perform { loop.currentTickTime }
        let seen = try await loop.perform { loop.currentTickTime }
        let elapsed = Duration.nanoseconds(monotonicNanoseconds() - before)
        #expect(seen >= .seconds(42))
        #expect(seen <= .seconds(42) + elapsed, "tick time is the anchor plus the time since it was set")
    }
}
