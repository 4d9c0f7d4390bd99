internal import CLoopCore
import Glibc
import Synchronization

// One tick, in order (docs/design.md, "anatomy of a tick"):
//   1. read the tick anchor and compute the tick time
//   2. run expired timers                                     then microtasks
//   3. run the internal lane, bounded to what was queued at the start of the phase, then microtasks
//   4. run up to externalBatchBudget external tasks           then microtasks
//   5. poll: without blocking if work remains, else idle (spin, then park in the poller); dispatch I/O
//   6. microtasks
extension EventLoop {
    func tick() {
        let now = clock.nanoseconds()
        tickStartNanoseconds.store(now, ordering: .relaxed) // currentTickTime combines it with the anchor
        if metricsEnabled { counters.ticks &+= 1 }

        runDueTimers(now: now)
        drainMicrotasks()
        runInternalLane()
        drainMicrotasks()
        runExternalLane()
        drainMicrotasks()

        if hasPendingWork() {
            if registeredCount > 0 { pollIO(timeoutNanoseconds: 0) }
        } else {
            idle()
        }
        drainMicrotasks()
        if metricsEnabled { publishMetrics() }
    }

    // MARK: Running tasks

    @inline(__always)
    func runJob(_ job: Job) {
        job()
        if configuration.strictMicrotaskOrdering { drainMicrotasks() }
    }

    func runDueTimers(now: Int64) {
        // The hint mirrors the heap's earliest deadline: no lock on ticks when no timer is due. A timer
        // scheduled concurrently is seen next tick (its scheduler also wakes a sleeping loop).
        guard earliestDeadline.load(ordering: .relaxed) <= now else { return }
        timerState.withLock { state in
            while let entry = state.heap.popDue(now: now) { dueTimers.append(StoredJob(run: entry.job)) }
            earliestDeadline.store(state.heap.earliestDeadline ?? .max, ordering: .relaxed)
        }
        guard !dueTimers.isEmpty else { return }
        var index = 0
        while index < dueTimers.count {
            let job = dueTimers[index].run
            index += 1
            batchRemaining = dueTimers.count - index
            if closeRequested.load(ordering: .relaxed) { break }
            runJob(job)
            if metricsEnabled { counters.timersFired &+= 1 }
        }
        batchRemaining = 0
        dueTimers.removeAll(keepingCapacity: true)
    }

    /// Internal lane: everything queued when the phase starts, no more. A marker pushed behind the
    /// cross-thread tasks ends the snapshot; the loop thread's own internal tasks are counted. When no node
    /// can be allocated for the marker, a count bounds the phase instead (what is ready, up to the external
    /// batch budget), so the lane keeps running while memory is short.
    @discardableResult
    func runInternalLane() -> Int {
        var ran = 0
        if !lk_mpsc_is_empty(internalIngress) {
            var marker = lk_task.marker
            let hasMarker = lk_mpsc_push(internalIngress, &marker) >= 0
            var limit = hasMarker ? Int.max : configuration.externalBatchBudget
            var task = lk_task()
            while limit > 0 {
                let status = lk_mpsc_pop(internalIngress, &task)
                if status == LK_POP_BUSY {
                    if hasMarker { lk_thread_spin_pause(); continue } // the marker is behind it
                    break // hasPendingWork() keeps the loop from blocking until it lands
                }
                guard status == LK_POP_OK, !task.isMarker else { break }
                limit -= 1
                if closeRequested.load(ordering: .relaxed) { // released, not run
                    releaseJob(from: &task)
                    continue
                }
                let job = takeJob(from: &task)
                recordLatency(of: task, lane: .internal)
                runJob(job)
                ran += 1
            }
        }
        var local = localInternal.count
        while local > 0, let job = localInternal.removeFirst() {
            local -= 1
            if closeRequested.load(ordering: .relaxed) { continue }
            runJob(job)
            ran += 1
        }
        if metricsEnabled { counters.internalTasksRun &+= UInt64(ran) }
        return ran
    }

    /// External lane: up to externalBatchBudget tasks, cross-thread ones first, then the loop thread's own.
    @discardableResult
    func runExternalLane() -> Int {
        let budget = configuration.externalBatchBudget
        // A push caught mid-flight (BUSY) is not waited for: hasPendingWork() keeps the next poll from blocking.
        let n = lk_ingress_pop_batch(ingress, externalBatch, budget, nil)
        var ran = 0
        for i in 0..<n {
            batchRemaining = n - i - 1
            if closeRequested.load(ordering: .relaxed) {
                releaseJob(from: externalBatch + i)
                continue
            }
            let job = takeJob(from: externalBatch + i)
            recordLatency(of: externalBatch[i], lane: .external)
            runJob(job)
            ran += 1
        }
        batchRemaining = 0
        var local = Swift.min(localExternal.count, budget - n)
        while local > 0, let job = localExternal.removeFirst() {
            local -= 1
            if closeRequested.load(ordering: .relaxed) { continue }
            runJob(job)
            ran += 1
        }
        if metricsEnabled { counters.externalTasksRun &+= UInt64(ran) }
        return ran
    }

    /// Runs up to microtaskBudget microtasks. Returns how many ran.
    /// A drain can be re-entered (strict mode drains after every task, and a microtask may run an internal
    /// task inline); the nested call returns at once and the outer drain, which loops until the ring is empty
    /// or its budget is spent, runs what was queued meanwhile. Re-entering would reuse `microtaskBatch` while
    /// the outer drain still holds untaken tasks in it.
    @discardableResult
    func drainMicrotasks() -> Int {
        guard !isDrainingMicrotasks else { return 0 }
        isDrainingMicrotasks = true
        defer { isDrainingMicrotasks = false }
        var remaining = configuration.microtaskBudget
        var ran = 0
        while remaining > 0 {
            let n = lk_ring_pop_batch(microtaskRing, microtaskBatch, Swift.min(remaining, microtaskBatchCapacity), nil)
            if n == 0 { break }
            for i in 0..<n {
                if closeRequested.load(ordering: .relaxed) {
                    releaseJob(from: microtaskBatch + i)
                    continue
                }
                takeJob(from: microtaskBatch + i)()
            }
            remaining -= n
            ran += n
        }
        if metricsEnabled { counters.microtasksRun &+= UInt64(ran) }
        return ran
    }

    /// True when any lane has a task queued (or a push in flight): then the loop must not block.
    func hasPendingWork() -> Bool {
        !lk_ingress_is_empty(ingress) || !localExternal.isEmpty || !localInternal.isEmpty
            || !lk_mpsc_is_empty(internalIngress) || !lk_ring_is_empty(microtaskRing)
    }

    // MARK: Idle: spin, then park

    func idle() {
        if spinBudget > 0, spin() { return }
        park()
    }

    /// Polls for work for up to the spin budget while staying RUNNING (producers then skip the wake
    /// syscall). True when work, a due timer, I/O or a state change ended the spin.
    ///
    /// Every `spinYieldInterval` the loop yields its CPU: when the scheduler has put a producer on the same
    /// CPU (it does, on small machines), a pure spin would keep that producer from running until the spin
    /// ends, turning a sub-microsecond hand-off into a full spin plus a wakeup. With no other runnable thread
    /// the yield returns at once.
    func spin() -> Bool {
        let start = lk_clock_now_ns()
        var lastIOPoll = start
        var lastYield = start
        var iteration = 0
        while true {
            if hasPendingWork() || lk_wake_state_load(wake) != LK_STATE_RUNNING { return true }
            iteration &+= 1
            if iteration & 15 == 0 {
                let now = lk_clock_now_ns()
                if now - start >= spinBudget { return false }
                let deadline = earliestDeadline.load(ordering: .relaxed)
                if deadline != .max && clock.nanoseconds() >= deadline { return true }
                if registeredCount > 0 && now - lastIOPoll >= 5_000 {
                    lastIOPoll = now
                    if pollIO(timeoutNanoseconds: 0) > 0 { return true }
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
    func park() {
        if metricsEnabled { publishMetrics() } // a sleeping loop's metrics must be current
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
            return
        }
        let timeout: Int64 = timerState.withLock { state in
            guard let deadline = state.heap.earliestDeadline else { return -1 }
            return Swift.max(0, deadline - clock.nanoseconds())
        }
        let before = lk_clock_now_ns()
        var woken = false
        let n = waitForIO(timeoutNanoseconds: timeout, woken: &woken)
        lk_wake_finish_park(wake)
        lk_ingress_finish_park(ingress)
        adaptSpin(slept: lk_clock_now_ns() - before, woken: woken || n > 0)
        if n > 0 { dispatchIO(count: n) }
    }

    /// After Linux haltpoll: grow the spin when work arrived soon after the loop parked (a longer spin would
    /// have caught it), shrink it when the loop stayed parked long (the spin was wasted). "Soon" allows for
    /// the wake-up latency itself, which the measured sleep includes and which is tens of microseconds on a
    /// VM (comparable to the maximum spin): without the allowance every wakeup would look "long" and the spin
    /// would collapse to its minimum exactly when it is needed.
    func adaptSpin(slept: Int64, woken: Bool) {
        guard case .spinThenPark(let maximum, true) = configuration.idleStrategy else { return }
        let maxNs = Self.nanoseconds(maximum)
        let soon = maxNs + Self.wakeLatencyAllowance
        if woken && slept < soon {
            spinBudget = Swift.min(maxNs, spinBudget * 2)
        } else if slept >= soon {
            spinBudget = Swift.max(1_000, spinBudget / 2)
        }
    }

    /// How often a spinning loop yields its CPU (see `spin()`).
    static let spinYieldInterval: Int64 = 2_000

    /// Upper bound assumed for the time a parked thread takes to run again after its wakeup (VMs: ~25–50 µs).
    static let wakeLatencyAllowance: Int64 = 100_000

    // MARK: I/O

    /// One poll; returns the number of events it dispatched.
    @discardableResult
    func pollIO(timeoutNanoseconds: Int64) -> Int {
        var woken = false
        let n = waitForIO(timeoutNanoseconds: timeoutNanoseconds, woken: &woken)
        if n > 0 { dispatchIO(count: n) }
        return n
    }

    func waitForIO(timeoutNanoseconds: Int64, woken: inout Bool) -> Int {
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
