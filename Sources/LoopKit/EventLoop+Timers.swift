internal import CLoopCore
import Synchronization

extension EventLoop {
    /// Runs `task` on the loop thread once `delay` has passed, measured from now on the loop's monotonic
    /// clock (not from the last tick). Timers with equal deadlines run in the order they were scheduled.
    /// A negative delay means "due now"; a huge one saturates. Any thread. O(log n).
    ///
    /// Timers still pending when the loop begins terminating are cancelled: their closures are released
    /// without running.
    ///
    /// - Returns: an id for `cancelTimer(_:)`.
    /// - Throws: `EventLoopError.terminated` once the loop has begun terminating.
    @discardableResult
    public func scheduleTimer(after delay: Duration, _ task: @escaping @Sendable () throws -> Void) throws -> TimerID {
        try scheduleTimer(after: delay, catching(task))
    }

    /// `scheduleTimer(after:_:)` for a task that does not throw (stored without a wrapper).
    @discardableResult
    public func scheduleTimer(after delay: Duration, _ task: @escaping @Sendable () -> Void) throws -> TimerID {
        let now = clock.nanoseconds()
        let offset = Swift.max(0, Self.nanoseconds(delay))
        // Saturates at Int64.max. The clock may read negative values (`MonotonicClock` fixes no origin), so the
        // headroom `Int64.max - now` could overflow too: the sum's own overflow flag decides.
        let (sum, overflowed) = now.addingReportingOverflow(offset)
        let deadline = overflowed ? Int64.max : sum
        let (id, isEarliest) = try timerState.withLock { state throws(EventLoopError) -> (UInt64, Bool) in
            guard !lifecycle.areTimersClosed else { throw .terminated }
            state.nextID += 1
            let isEarliest = deadline < (state.heap.earliestDeadline ?? .max)
            state.heap.insert(id: state.nextID, deadline: deadline, job: task)
            if isEarliest { earliestDeadline.store(deadline, ordering: .relaxed) }
            return (state.nextID, isEarliest)
        }
        // A sleeping loop computed its timeout from the old earliest deadline: wake it to recompute.
        if isEarliest && !inEventLoop { reportWakeFailure(lk_wake_notify(wake)) }
        return TimerID(loopID: self.id, raw: id)
    }

    /// Cancels a pending timer; its closure is released without running. Any thread. O(log n).
    ///
    /// - Throws: `EventLoopError.timerNotFound` if the timer already fired (or is firing), was cancelled,
    ///   was cancelled by the loop's termination, or was scheduled on another loop.
    public func cancelTimer(_ id: TimerID) throws {
        guard id.loopID == self.id else { throw EventLoopError.timerNotFound } // another loop's numbering
        let cancelled: TimerHeap.Entry? = timerState.withLock { state in
            let entry = state.heap.cancel(id: id.raw)
            earliestDeadline.store(state.heap.earliestDeadline ?? .max, ordering: .relaxed)
            return entry
        }
        guard cancelled != nil else { throw EventLoopError.timerNotFound }
    }

    /// Timers waiting to fire. Any thread; a snapshot.
    public var pendingTimerCount: Int { timerState.withLock { $0.heap.count } }
}

extension EventLoop {
    /// The loop's reference time. `currentTickTime` is this anchor plus the monotonic time elapsed between
    /// `setTickAnchor` and the start of the current tick. Defaults to zero at the loop's creation.
    /// Any thread; reads and writes are serialised with the tick that uses them.
    public var tickAnchor: Duration { anchor.withLock { $0.anchor } }

    /// Sets the reference time (tests, clock injection, or mapping loop time onto wall-clock time). Any thread.
    public func setTickAnchor(_ newAnchor: Duration) {
        let now = clock.nanoseconds()
        anchor.withLock {
            $0.anchor = newAnchor
            $0.anchorNanoseconds = now
        }
    }

    /// The time of the current tick: the anchor plus the time elapsed between `setTickAnchor` and the start
    /// of the tick. Any thread; stable for the whole tick unless the anchor is set during it.
    public var currentTickTime: Duration {
        let tickStart = tickStartNanoseconds.load(ordering: .relaxed)
        return anchor.withLock { $0.anchor + .nanoseconds(tickStart - $0.anchorNanoseconds) }
    }
}
