internal import CLoopCore
import Glibc
import Synchronization

// One tick, in order (docs/design.md, "anatomy of a tick"):
//   1. read the tick anchor and compute the tick time
//   2. run expired timers                                     then microtasks
//   3. run the internal lane, bounded to what was queued at the start of the phase, then microtasks
//   4. run up to externalBatchBudget external tasks           then microtasks
// Each lane (Lane.swift) drains its cross-thread queue, then the loop thread's own tasks.
//   5. poll: without blocking if work remains, else idle (spin, then park in the poller); dispatch I/O
//   6. microtasks
extension EventLoop {
    func tick() {
        assert(inEventLoop, "EventLoop.tick() runs on the loop thread only")
        let now = usesSystemClock ? lk_clock_now_ns() : clock.nanoseconds()
        tickStartNanoseconds.store(now, ordering: .relaxed) // currentTickTime combines it with the anchor
        if metricsEnabled { counters.ticks &+= 1 }

        runDueTimers(now: now)
        // A lane with nothing queued is not entered: its drain's bookkeeping would sit between a task
        // submitted from another thread and its run.
        if microtaskLane.hasWork { microtaskLane.drain(on: self) }
        if internalLane.hasWork { internalLane.drain(on: self) }
        if microtaskLane.hasWork { microtaskLane.drain(on: self) }
        externalLane.drain(on: self)
        microtaskLane.drain(on: self)

        if hasPendingWork() {
            if hasIOInterest { pollIO(timeoutNanoseconds: 0) }
        } else {
            idle()
        }
        microtaskLane.drain(on: self)
        if metricsEnabled { publishMetrics() }
    }

    // MARK: Running tasks

    @inline(__always)
    func runJob(_ job: Job) {
        job()
        if configuration.strictMicrotaskOrdering { drainMicrotasks() }
    }

    /// Runs the timers that are due at `now` and were scheduled before this phase began, one at a time:
    /// each leaves the heap only when its turn comes, so a task of this phase that cancels a later due timer
    /// keeps it from running (and its `cancelTimer` succeeds, as JavaScript's `clearTimeout` promises).
    /// Timers scheduled during the phase wait for the next tick: a timer that reschedules itself with no
    /// delay cannot hold the loop in this phase.
    func runDueTimers(now: Int64) {
        assert(inEventLoop, "EventLoop.runDueTimers runs on the loop thread only")
        // The hint mirrors the heap's earliest deadline: no lock on ticks when no timer is due. A timer
        // scheduled concurrently is seen next tick (its scheduler also wakes a sleeping loop).
        guard earliestDeadline.load(ordering: .relaxed) <= now else { return }
        var limit: UInt64?
        while !lifecycle.isCloseRequestedPrompt {
            let next: (job: Job, more: Bool)? = timerState.withLock { state in
                let before = limit ?? state.heap.nextSequenceNumber
                limit = before
                guard let entry = state.heap.popDue(now: now, insertedBefore: before) else { return nil }
                earliestDeadline.store(state.heap.earliestDeadline ?? .max, ordering: .relaxed)
                return (entry.job, state.heap.hasDue(now: now, insertedBefore: before))
            }
            guard let next else { break }
            batchRemaining = next.more ? 1 : 0 // a due timer waits: the inline fast path must not overtake it
            runJob(next.job)
            if metricsEnabled { counters.timersFired &+= 1 }
        }
        batchRemaining = 0
    }

    /// Runs up to microtaskBudget microtasks (after a task in strict ordering, after an fd's handler).
    @discardableResult
    func drainMicrotasks() -> Int { microtaskLane.drain(on: self) }

    /// True when any lane has a task queued (or a push in flight): then the loop must not block.
    func hasPendingWork() -> Bool {
        externalLane.hasWork || internalLane.hasWork || microtaskLane.hasWork
    }

    // MARK: Idle: spin, then park

    /// The current spin budget, ns.
    var spinBudget: Int64 { adaptiveSpin?.budget ?? fixedSpinBudget }

    func idle() {
        let idleStart = lk_clock_now_ns()
        if spinBudget > 0, let foundBy = spin(from: idleStart, budget: spinBudget) {
            adaptiveSpin?.caught(after: foundBy - idleStart)
            return
        }
        park(idleStart: idleStart)
    }

    /// Polls for work for up to `budget` ns from `start` while staying RUNNING (producers then skip the wake
    /// syscall). Returns nil when it expired, else a time by which work, a due timer, I/O or a state change
    /// ended it: the latest clock reading, taken every 16 polls. Reading the clock when work arrives would
    /// put a clock read (tens of ns on a VM) between the task and its run. The external lane, where other
    /// threads' tasks arrive, is polled every iteration, the other lanes and the loop's state every fourth:
    /// a shorter poll picks a submitted task up sooner.
    ///
    /// Every `spinYieldInterval` the loop yields its CPU: when the scheduler has put a producer on the same
    /// CPU (it does, on small machines), a pure spin would keep that producer from running until the spin
    /// ends, turning a sub-microsecond hand-off into a full spin plus a wakeup. With no other runnable thread
    /// the yield returns at once.
    func spin(from start: Int64, budget: Int64) -> Int64? {
        var lastIOPoll = start
        var lastYield = start
        var latest = start
        var iteration = 0
        while true {
            if externalLane.hasWork { return latest }
            iteration &+= 1
            if iteration & 3 == 0 {
                if internalLane.hasWork || microtaskLane.hasWork || lk_wake_state_load(wake) != LK_STATE_RUNNING {
                    return latest
                }
            }
            if iteration & 15 == 0 {
                let now = lk_clock_now_ns()
                latest = now
                if now - start >= budget { return nil }
                let deadline = earliestDeadline.load(ordering: .relaxed)
                if deadline != .max && clock.nanoseconds() >= deadline { return now }
                if hasIOInterest && now - lastIOPoll >= 5_000 {
                    lastIOPoll = now
                    if pollIO(timeoutNanoseconds: 0) > 0 { return now }
                }
                if now - lastYield >= Self.spinYieldInterval {
                    lastYield = now
                    sched_yield()
                }
            }
            lk_thread_spin_pause()
        }
    }

    /// Blocks in the poller until I/O, a wakeup or the next timer. The Dekker half on the loop's side:
    /// announce SLEEPING (with a fence), re-check every lane, and only then block.
    func park(idleStart: Int64) {
        if metricsEnabled { publishMetrics() } // a sleeping loop's metrics must be current
        let sampleCost = adaptiveSpin != nil && parksSinceCostSample >= Self.parkCostSampleInterval
        let cpuBefore = sampleCost ? lk_clock_thread_cpu_ns() : 0
        // The ingress may give up the producer queues it holds (lk_ingress.h); the wake handshake's fence
        // orders that before the re-check. finish_park pairs with it on every path.
        lk_ingress_prepare_park(ingress)
        guard lk_wake_prepare_park(wake) else { // the state moved on (terminating)
            lk_ingress_finish_park(ingress)
            return
        }
        if hasPendingWork() {
            lk_wake_finish_park(wake)
            lk_ingress_finish_park(ingress)
            adaptiveSpin?.parked(gap: lk_clock_now_ns() - idleStart, slept: false) // it arrived by now
            return
        }
        let timeout: Int64 = timerState.withLock { state in
            guard let deadline = state.heap.earliestDeadline else { return -1 }
            return Swift.max(0, deadline - clock.nanoseconds())
        }
        var woken = false
        let n = waitForIO(timeoutNanoseconds: timeout, woken: &woken)
        lk_wake_finish_park(wake)
        lk_ingress_finish_park(ingress)
        if adaptiveSpin != nil {
            // The gap is known when a producer's signal ended the sleep: it stamped the time it published.
            adaptiveSpin!.parked(gap: woken ? Swift.max(0, lk_wake_last_signal_ns(wake) - idleStart) : nil)
            parksSinceCostSample += 1
            if sampleCost {
                adaptiveSpin!.recordParkCost(lk_clock_thread_cpu_ns() - cpuBefore)
                parksSinceCostSample = 0
            }
        }
        if n > 0 { dispatchIO(count: n) }
        dispatchCompletions()
    }

    /// How often a spinning loop yields its CPU (see `spin(from:budget:)`).
    static let spinYieldInterval: Int64 = 2_000

    /// The adaptive spin measures the CPU cost of one park in this many (a thread CPU clock read is a
    /// system call: sampling keeps it off most parks).
    static let parkCostSampleInterval = 16

    // MARK: I/O

    /// One poll; returns the number of events and completions it dispatched.
    @discardableResult
    func pollIO(timeoutNanoseconds: Int64) -> Int {
        var woken = false
        let n = waitForIO(timeoutNanoseconds: timeoutNanoseconds, woken: &woken)
        if n > 0 { dispatchIO(count: n) }
        return n + dispatchCompletions()
    }

    func waitForIO(timeoutNanoseconds: Int64, woken: inout Bool) -> Int {
        assert(inEventLoop, "EventLoop.waitForIO runs on the loop thread only")
        guard let poller else { return 0 }
        pollEpoch &+= 1
        let n = lk_poller_wait(poller, timeoutNanoseconds, pollEvents, Int32(pollEventsCapacity), &woken)
        if n < 0 {
            configuration.errorHandler(EventLoopError.system(operation: "poll", errno: -n))
            return 0
        }
        return Int(n)
    }

    /// Runs the handler of each ready fd. An fd registered after the poll (its epoch is this poll's) or
    /// unregistered by an earlier handler in the same batch gets nothing.
    func dispatchIO(count: Int) {
        for i in 0..<count {
            let event = pollEvents[i]
            let fd = Int(event.fd)
            guard fd < registrations.count, let registration = registrations[fd],
                  registration.epoch < pollEpoch else { continue }
            registration.handler(IOEvents(rawValue: event.events))
            if metricsEnabled { counters.ioEventsDispatched &+= 1 }
            if configuration.strictMicrotaskOrdering { drainMicrotasks() }
        }
    }
}
