import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Timers with an injected clock: nothing here sleeps. Time moves when the test advances the clock; the
/// loop notices when a task wakes it (a `perform` round trip).
@Suite struct TimerTests {
    func manualLoop() throws -> (EventLoop, ManualClock) {
        let clock = ManualClock()
        var configuration = EventLoop.Configuration.testing()
        configuration.clock = clock
        return (try startedLoop(configuration), clock)
    }

    @Test func firesOnceItsDeadlineHasPassed() async throws {
        let (loop, clock) = try manualLoop()
        let fired = Counter()
        try loop.scheduleTimer(after: .seconds(10)) { fired.increment() }
        clock.advance(by: .seconds(9))
        try await nudge(loop)
        #expect(fired.count == 0)
        clock.advance(by: .seconds(1))
        try await nudge(loop)
        #expect(waitUntil { fired.count == 1 })
        #expect(loop.pendingTimerCount == 0)
        await loop.shutdown()
    }

    @Test func equalDeadlinesFireInSchedulingOrder() async throws {
        let (loop, clock) = try manualLoop()
        let log = OrderLog<Int>()
        for i in 0..<200 { try loop.scheduleTimer(after: .seconds(i % 2 == 0 ? 5 : 3)) { log.append(i) } }
        clock.advance(by: .seconds(5))
        try await nudge(loop)
        #expect(waitUntil { log.count == 200 })
        let odd = Array(stride(from: 1, to: 200, by: 2)), even = Array(stride(from: 0, to: 200, by: 2))
        #expect(log.snapshot == odd + even, "earlier deadline first; FIFO among equal deadlines")
        await loop.shutdown()
    }

    @Test func cancelledTimersNeverFire() async throws {
        let (loop, clock) = try manualLoop()
        let fired = OrderLog<Int>()
        var ids: [TimerID] = []
        for i in 0..<1000 { ids.append(try loop.scheduleTimer(after: .milliseconds(i + 1)) { fired.append(i) }) }
        for (i, id) in ids.enumerated() where i % 3 == 0 { try loop.cancelTimer(id) }
        #expect(loop.pendingTimerCount == 1000 - 334)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(ids[0]) } // cancelled twice
        clock.advance(by: .seconds(1))
        try await nudge(loop)
        #expect(waitUntil { fired.count == 666 })
        #expect(fired.snapshot == (0..<1000).filter { $0 % 3 != 0 })
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(ids[1]) } // already fired
        await loop.shutdown()
    }

    /// A timer that is due but has not run yet can still be cancelled, by an earlier timer of the same tick:
    /// the cancel succeeds and the timer never runs (JavaScript's `clearTimeout` promises the same).
    @Test func aDueTimerCancelledByAnEarlierOneOfTheSameTickNeverRuns() async throws {
        let (loop, clock) = try manualLoop()
        let log = OrderLog<String>()
        let outcome = Locked<String>("not run")
        let victim = Locked<TimerID?>(nil)
        try loop.scheduleTimer(after: .seconds(1)) {
            do {
                try loop.cancelTimer(victim.withLock { $0! })
                outcome.withLock { $0 = "cancelled" }
            } catch {
                outcome.withLock { $0 = "\(error)" }
            }
            log.append("first")
        }
        let id = try loop.scheduleTimer(after: .seconds(1)) { log.append("second") }
        victim.withLock { $0 = id }
        clock.advance(by: .seconds(1)) // both are due in the same tick
        try await nudge(loop)
        #expect(waitUntil { log.count >= 1 })
        try await nudge(loop) // a later tick: the second would have run by now
        #expect(log.snapshot == ["first"])
        #expect(outcome.withLock { $0 } == "cancelled")
        #expect(loop.pendingTimerCount == 0)
        await loop.shutdown()
    }

    /// A timer that schedules another already-due timer does not run it in the same phase (the phase takes
    /// only the timers scheduled before it began), so a zero-delay timer chain cannot starve other work: the
    /// task the first timer submits runs in this tick's external phase, before the second timer.
    @Test func aTimerScheduledDuringTheTimerPhaseWaitsForTheNextTick() async throws {
        let (loop, clock) = try manualLoop()
        let log = OrderLog<String>()
        try loop.scheduleTimer(after: .seconds(1)) {
            log.append("first")
            _ = try? loop.scheduleTimer(after: .zero) { log.append("second") }
            try? loop.submit { log.append("task") }
        }
        clock.advance(by: .seconds(1))
        try await nudge(loop)
        #expect(waitUntil { log.count == 3 })
        #expect(log.snapshot == ["first", "task", "second"])
        await loop.shutdown()
    }

    @Test func deadlinesComeFromAFreshClockNotTheTickTime() async throws {
        let (loop, clock) = try manualLoop()
        let fired = Counter()
        // A long task: time passes inside it, then it schedules a 1 s timer. The deadline is 1 s after the
        // moment of scheduling, not 1 s after the (stale) start of the tick.
        try await loop.perform {
            clock.advance(by: .seconds(10))
            try loop.scheduleTimer(after: .seconds(1)) { fired.increment() }
        }
        clock.advance(by: .milliseconds(500))
        try await nudge(loop)
        #expect(fired.count == 0, "fired early: its deadline was computed from the tick's start")
        clock.advance(by: .milliseconds(500))
        try await nudge(loop)
        #expect(waitUntil { fired.count == 1 })
        await loop.shutdown()
    }

    @Test func negativeAndHugeDelays() async throws {
        let (loop, clock) = try manualLoop()
        let fired = OrderLog<String>()
        try loop.scheduleTimer(after: .seconds(-5)) { fired.append("negative") }
        let huge = try loop.scheduleTimer(after: .seconds(Int64.max)) { fired.append("huge") }
        try await nudge(loop)
        #expect(waitUntil { fired.count == 1 })
        clock.advance(by: .seconds(1_000_000_000))
        try await nudge(loop)
        #expect(fired.snapshot == ["negative"])
        try loop.cancelTimer(huge)
        await loop.shutdown()
    }

    @Test func timersPendingAtShutdownAreCancelled() async throws {
        let (loop, _) = try manualLoop()
        let fired = Counter()
        let id = try loop.scheduleTimer(after: .seconds(1)) { fired.increment() }
        #expect(loop.pendingTimerCount == 1)
        await loop.shutdown()
        #expect(loop.pendingTimerCount == 0)
        #expect(fired.count == 0)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(id) }
        #expect(throws: EventLoopError.terminated) { try loop.scheduleTimer(after: .zero) {} }
    }

    @Test func cancelTimerOfAnUnknownIdFails() async throws {
        let (loop, _) = try manualLoop()
        let other = try EventLoop(configuration: .testing())
        let foreign = try other.scheduleTimer(after: .seconds(1)) {}
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(foreign) }
        await loop.shutdown()
        await other.shutdown()
    }

    // Real time, bounded by deadlines: a timer with nothing else happening fires on time.

    @Test(arguments: [IdleStrategy.park, .default])
    func aLoneTimerFiresOnTimeOnAnIdleLoop(idle: IdleStrategy) throws {
        let loop = try startedLoop(.testing(idle: idle))
        defer { loop.shutdown() }
        let firedAt = Atomic<Int64>(0)
        let start = monotonicNanoseconds()
        try loop.scheduleTimer(after: .milliseconds(200)) { firedAt.store(monotonicNanoseconds(), ordering: .releasing) }
        #expect(waitUntil(seconds: 10) { firedAt.load(ordering: .acquiring) != 0 })
        let elapsed = firedAt.load(ordering: .acquiring) - start
        #expect(elapsed >= 200_000_000, "fired early")
        #expect(elapsed < 5_000_000_000, "fired far too late")
    }

    @Test func anEarlierTimerFromAnotherThreadWakesASleepingLoop() throws {
        let loop = try startedLoop(.testing(idle: .park))
        defer { loop.shutdown() }
        try loop.scheduleTimer(after: .seconds(600)) {}
        #expect(waitUntil { loop.state == .sleeping })
        let fired = Counter()
        try loop.scheduleTimer(after: .milliseconds(20)) { fired.increment() }
        #expect(waitUntil(seconds: 10) { fired.count == 1 }, "the loop slept on toward the old, later deadline")
    }
}
