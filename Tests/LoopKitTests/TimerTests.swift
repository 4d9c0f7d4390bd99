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

    /// A timer fires once its deadline has passed on the loop's clock, not a moment before, and is then no longer
    /// pending.
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

    /// Timers fire earliest deadline first, and in scheduling order among equal deadlines.
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

    /// Cancelled timers never fire and leave the pending count at once; the others fire in order; cancelling twice,
    /// or after the timer fired, throws `.timerNotFound`.
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

    /// A timer's deadline counts from the clock when it is scheduled, not from the start of the tick that schedules
    /// it.
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

    /// A negative delay fires at once; a huge one stays pending (it neither fires nor overflows) and can be
    /// cancelled.
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

    /// Timers pending at shutdown are cancelled without firing: none stays pending, their ids are unknown, and
    /// scheduling after termination throws `.terminated`.
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

    /// Cancelling an id another loop issued throws `.timerNotFound`.
    @Test func cancelTimerOfAnUnknownIdFails() async throws {
        let (loop, _) = try manualLoop()
        let other = try EventLoop(configuration: .testing())
        let foreign = try other.scheduleTimer(after: .seconds(1)) {}
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(foreign) }
        await loop.shutdown()
        await other.shutdown()
    }

    // Real time, bounded by deadlines: a timer with nothing else happening fires on time.

    /// An idle loop (parked, or spinning then parking) wakes for a lone timer: it fires no earlier than its delay
    /// and not long after.
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

    /// A timer scheduled from another thread with an earlier deadline than the one a sleeping loop waits for wakes
    /// the loop, so it fires on time.
    @Test func anEarlierTimerFromAnotherThreadWakesASleepingLoop() throws {
        let loop = try startedLoop(.testing(idle: .park))
        defer { loop.shutdown() }
        try loop.scheduleTimer(after: .seconds(600)) {}
        #expect(waitUntil { loop.state == .sleeping })
        let fired = Counter()
        try loop.scheduleTimer(after: .milliseconds(20)) { fired.increment() }
        #expect(waitUntil(seconds: 10) { fired.count == 1 }, "the loop slept on toward the old, later deadline")
    }

    // MARK: Out-of-range delays and ids

    /// Huge delays saturate (the timer stays pending and never fires), negative and zero delays are due at
    /// once and fire on the next tick in scheduling order; nothing overflows, including on a clock whose
    /// readings are negative (`MonotonicClock` fixes no origin).
    @Test(arguments: [Int64(1_000_000_000), -4_000_000_000_000_000_000])
    func extremeTimerDelaysNeitherTrapNorMisfire(clockStart: Int64) async throws {
        let clock = ManualClock(start: clockStart)
        var configuration = EventLoop.Configuration.testing(idle: .park)
        configuration.clock = clock
        let loop = try startedLoop(configuration)
        defer { loop.shutdownForCleanup() }
        let fired = OrderLog<String>()
        let huge: [Duration] = [
            .seconds(Int64.max), .milliseconds(Int64.max), .microseconds(Int64.max), .nanoseconds(Int64.max),
            Duration(secondsComponent: .max, attosecondsComponent: 999_999_999_999_999_999),
            .seconds(Int64.max / 1_000_000_000), .seconds(Int64.max / 2_000_000_000),
        ]
        let due: [(String, Duration)] = [
            ("zero", .zero), ("-1ns", .nanoseconds(-1)), ("-5s", .seconds(-5)), ("min s", .seconds(Int64.min)),
            ("min ms", .milliseconds(Int64.min)), ("min", Duration(secondsComponent: .min, attosecondsComponent: -999_999_999_999_999_999)),
            ("-1as", Duration(secondsComponent: 0, attosecondsComponent: -1)), ("zero again", .zero),
        ]
        var hugeIDs: [TimerID] = []
        for (i, delay) in huge.enumerated() {
            hugeIDs.append(try loop.scheduleTimer(after: delay) { fired.append("huge \(i)") })
        }
        for (name, delay) in due { try loop.scheduleTimer(after: delay) { fired.append(name) } }
        // The clock has not moved: every due timer has the same deadline, so they fire in scheduling order.
        #expect(waitUntil(seconds: 10) { fired.count == due.count })
        try await nudge(loop)
        #expect(fired.snapshot == due.map(\.0))
        #expect(loop.pendingTimerCount == huge.count)
        // Parking computes its timeout from the earliest (huge) deadline.
        #expect(waitUntil(seconds: 10) { loop.state == .sleeping })
        clock.advance(nanoseconds: 1_000_000_000 * 1_000_000_000) // 31 years
        try await nudge(loop)
        #expect(fired.count == due.count, "a huge delay fired: \(fired.snapshot)")
        for id in hugeIDs { try loop.cancelTimer(id) }
        #expect(loop.pendingTimerCount == 0)
        try await expectStillServes(loop)
    }

    /// Cancelling a timer that has fired, was cancelled already, is firing (from its own callback) or belongs
    /// to another loop throws `.timerNotFound` and cancels nothing else.
    @Test func cancellingAFiredCancelledOrUnknownTimerThrowsTimerNotFound() async throws {
        let loop = try startedLoop()
        let other = try EventLoop(configuration: .testing()) // never runs: its timers stay pending
        defer { loop.shutdownForCleanup(); other.shutdownForCleanup() }
        let fired = OrderLog<String>()

        // Already fired.
        let done = try loop.scheduleTimer(after: .zero) { fired.append("done") }
        #expect(waitUntil(seconds: 10) { fired.count == 1 })
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(done) }

        // Cancelled twice.
        let later = try loop.scheduleTimer(after: .seconds(3600)) { fired.append("later") }
        try loop.cancelTimer(later)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(later) }

        // Cancelled from inside its own callback: it is firing, so it is no longer pending.
        let own = Locked<TimerID?>(nil)
        let ownResult = OrderLog<EventLoopError?>()
        try await loop.perform {
            let id = try loop.scheduleTimer(after: .zero) {
                do {
                    try loop.cancelTimer(own.withLock { $0 }!)
                    ownResult.append(nil)
                } catch {
                    ownResult.append(error as? EventLoopError)
                }
            }
            own.withLock { $0 = id } // before the timer can fire: the loop thread is busy here
        }
        #expect(waitUntil(seconds: 10) { ownResult.count == 1 })
        #expect(ownResult.snapshot == [.timerNotFound])

        // Unknown: an id this loop never issued, although its number is that of a timer pending here.
        let mine = try loop.scheduleTimer(after: .seconds(3600)) { fired.append("mine") }
        var foreign = try other.scheduleTimer(after: .seconds(3600)) {}
        func number(_ id: TimerID) -> Substring { id.description.split(separator: " of loop ")[0] } // "TimerID(n"
        while number(foreign) != number(mine) { foreign = try other.scheduleTimer(after: .seconds(3600)) {} }
        #expect(foreign != mine)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(foreign) }
        #expect(loop.pendingTimerCount == 1, "another loop's id cancelled this loop's timer")
        try loop.cancelTimer(mine)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(mine) }
        #expect(fired.snapshot == ["done"])
        try await expectStillServes(loop)
    }
}
