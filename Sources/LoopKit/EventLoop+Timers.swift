internal import CLoopCore
internal import LoopKitConcurrencyHelpers
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

    /// Suspends the calling task for `duration`, measured by one of the loop's timers (its clock, its
    /// ordering with other timers). Any thread or task; inside an actor pinned to the loop, the actor is free
    /// for other work meanwhile.
    ///
    /// - Throws: `CancellationError` when the task is cancelled first (the timer is removed at once);
    ///   `EventLoopError.terminated` when the loop terminates first (its timers are cancelled) or no longer
    ///   accepts timers.
    public func sleep(for duration: Duration) async throws {
        let sleep = Sleep()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let reply = Reply(continuation)
                guard sleep.install(reply) else {
                    reply.resume(with: .failure(CancellationError()))
                    return
                }
                // The timer's closure owns the alarm: run, it resumes the sleeper; released unrun (the loop
                // terminated), the alarm's deinit resumes it with `.terminated`.
                let alarm = Alarm(reply)
                do {
                    let id = try scheduleTimer(after: duration) { alarm.ring() }
                    if sleep.record(id) { try? cancelTimer(id) } // cancelled meanwhile
                } catch {
                    reply.resume(with: .failure(error))
                }
            }
        } onCancel: {
            let (reply, id) = sleep.cancel()
            reply?.resume(with: .failure(CancellationError()))
            if let id { try? cancelTimer(id) }
        }
    }
}

/// The state one `sleep(for:)` shares with its cancellation handler.
private final class Sleep: Sendable {
    private struct State {
        var reply: Reply<Void>?
        var timer: TimerID?
        var cancelled = false
    }

    private let state = Locked(State())

    /// Installs the reply; false when the task was cancelled already.
    func install(_ reply: Reply<Void>) -> Bool {
        state.withLock { state in
            state.reply = reply
            return !state.cancelled
        }
    }

    /// Records the scheduled timer; true when the task was cancelled meanwhile (the caller removes it).
    func record(_ timer: TimerID) -> Bool {
        state.withLock { state in
            state.timer = timer
            return state.cancelled
        }
    }

    /// Marks the sleep cancelled; returns what the handler must resume and remove.
    func cancel() -> (Reply<Void>?, TimerID?) {
        state.withLock { state in
            state.cancelled = true
            return (state.reply, state.timer)
        }
    }
}

/// Owned by a sleep's timer closure: resumes the sleeper when the timer fires, or with `.terminated` when the
/// closure is released without running (a `Reply` resumes once; later resumptions do nothing).
private final class Alarm: Sendable {
    private let reply: Reply<Void>

    init(_ reply: Reply<Void>) { self.reply = reply }

    func ring() { reply.resume(with: .success(())) }

    deinit { reply.resume(with: .failure(EventLoopError.terminated)) }
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
