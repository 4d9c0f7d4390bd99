internal import CLoopCore
import Synchronization

// Termination (docs/design.md, "shutdown"):
//   graceful: cancel timers; drain every lane until empty (submissions still accepted); close the admission
//             gate, which waits out submitters caught mid-push; drain again; unregister fds; cancel socket
//             operations and close the loop's sockets; TERMINATED.
//   close:    cancel timers; close the gate; release every queued task without running it; the rest as above.
// The final drain runs on the loop thread. Only a loop that never ran is drained by the thread that shuts
// it down, which then acts as its loop thread.
extension EventLoop {
    /// Graceful shutdown: the loop stops accepting work once everything accepted has run, then terminates.
    /// Blocks until the loop has terminated, except on the loop thread (from inside a task), where it only
    /// requests termination and returns. Idempotent; safe from any thread, concurrently.
    ///
    /// Timers still pending are cancelled; registered fds are unregistered (owned ones closed). A loop that
    /// never ran is drained by the calling thread, acting as its loop thread.
    @available(*, noasync, message: "blocks the calling thread until the loop terminates: use `await shutdown()`")
    public func shutdown() {
        requestTermination(close: false)
        waitForTermination()
    }

    /// Graceful shutdown, awaiting termination instead of blocking a thread. See `shutdown()`.
    public func shutdown() async {
        await terminate(close: false)
    }

    /// Immediate shutdown, awaiting termination instead of blocking a thread. See `close()`.
    public func close() async {
        await terminate(close: true)
    }

    private func terminate(close: Bool) async {
        let woken = requestTermination(close: close)
        guard mustWaitForTermination() else { return }
        if !woken {
            // The wakeup failed (reported to the error handler): signal again until the loop has woken. Only
            // then: unlike the blocking wait's timed wait, this sleep would delay every shutdown.
            while !terminatedLatch.hasOpened {
                resignalIfTerminating()
                try? await Task.sleep(nanoseconds: UInt64(Self.terminationResignalInterval))
            }
        }
        await terminatedLatch.wait()
    }

    /// Immediate shutdown: the loop finishes the task it is running, releases every queued task and timer
    /// without running them, and terminates. Blocks until then, except on the loop thread. Idempotent; safe
    /// from any thread, concurrently.
    @available(*, noasync, message: "blocks the calling thread until the loop terminates: use `await close()`")
    public func close() {
        requestTermination(close: true)
        waitForTermination()
    }

    /// Blocks until the loop has terminated (without requesting it). Not on the loop thread.
    @available(*, noasync, message: "blocks the calling thread: use `await waitUntilTerminated()`")
    public func waitUntilTerminated() {
        precondition(!inEventLoop, "EventLoop.waitUntilTerminated() called on the loop thread would wait forever")
        terminatedLatch.wait()
    }

    /// Suspends until the loop has terminated (without requesting it). Not from code isolated to the loop
    /// (a task or an actor pinned to it), which could never resume on a terminated loop.
    public func waitUntilTerminated() async {
        precondition(!inEventLoop, "EventLoop.waitUntilTerminated() awaited on the loop thread: code isolated to the loop cannot resume once it has terminated")
        await terminatedLatch.wait()
    }

    /// Blocks until the loop has terminated. While it waits it signals a loop still TERMINATING again now and
    /// then: should the wakeup of a sleeping loop have failed (reported to the error handler), the loop would
    /// otherwise sleep on. A signal is deduplicated, so when the first one worked the others cost nothing.
    func waitForTermination() {
        guard mustWaitForTermination() else { return }
        while !terminatedLatch.wait(nanoseconds: Self.terminationResignalInterval) {
            resignalIfTerminating()
        }
    }

    /// False on the loop thread (a loop cannot wait for itself), and when the caller has just finished a loop
    /// that never ran itself (`claimNeverRunLoop()`).
    private func mustWaitForTermination() -> Bool { !inEventLoop && !claimNeverRunLoop() }

    /// How often a thread waiting for termination signals the loop again (see `waitForTermination()`).
    static let terminationResignalInterval: Int64 = 100_000_000

    /// Moves the state to TERMINATING (from created, running or sleeping) and wakes a sleeping loop. Called
    /// again on a terminating loop, it repeats the wakeup (a no-op unless an earlier one failed). False when
    /// the wakeup failed (it was reported to the error handler).
    @discardableResult
    func requestTermination(close: Bool) -> Bool {
        if close { lifecycle.requestClose() }
        while true {
            let current = lk_wake_state_load(wake)
            switch current {
            case LK_STATE_AWAKE, LK_STATE_RUNNING:
                if lk_wake_state_cas(wake, current, LK_STATE_TERMINATING) { return true }
            case LK_STATE_SLEEPING:
                if lk_wake_state_cas(wake, current, LK_STATE_TERMINATING) { return signalLoop() }
            case LK_STATE_TERMINATING:
                return signalLoop()
            default:
                return true // terminated
            }
        }
    }

    /// Signals the loop if it is still TERMINATING (see `waitForTermination()`).
    func resignalIfTerminating() {
        if lk_wake_state_load(wake) == LK_STATE_TERMINATING { signalLoop() }
    }

    /// One deduplicated wakeup; false (and reported) when it failed.
    @discardableResult
    private func signalLoop() -> Bool {
        let rc = lk_wake_signal(wake)
        reportWakeFailure(rc)
        return rc >= 0
    }

    /// If no thread ever ran the loop, claims it and runs the termination here. True when it did.
    func claimNeverRunLoop() -> Bool {
        guard lifecycle.claim() else {
            return false
        }
        let previous = lk_thread_set_loop_id(id)
        defer { lk_thread_set_loop_id(previous) }
        finish()
        return true
    }

    /// The loop's last act: drain (or discard), close, release, and store TERMINATED.
    func finish() {
        assert(inEventLoop, "EventLoop.finish() runs on the loop thread (or the thread that claimed a never-run loop) only")
        phase = .finishing
        // Cancel the timers; their closures are released after the lock is dropped, so a deinit that calls
        // back into the timer API cannot deadlock on it.
        var cancelled: TimerHeap = timerState.withLock { state in
            lifecycle.closeTimers()
            earliestDeadline.store(.max, ordering: .relaxed)
            let heap = state.heap
            state.heap = TimerHeap()
            return heap
        }
        _ = cancelled.removeAll()
        if !lifecycle.isCloseRequested {
            drainUntilEmpty()
        }
        lk_gate_close(gate) // no submission from another thread succeeds after this returns
        if !lifecycle.isCloseRequested {
            drainUntilEmpty()
        }
        // Socket operations end (cancelled, their fds closed) before the last drain: their handlers resume
        // awaiting tasks, whose jobs may come back to this loop (an actor pinned to it) and must still run.
        finishCompletions()
        // After close(), or what a close() racing the drain left behind: closures are released, executor
        // jobs run (an awaiting task must not hang), and what those jobs queue is handled the same way.
        repeat { discardQueued(runningExecutorJobs: true) } while hasPendingWork()
        phase = .finished // nothing submitted from here on would ever run
        unregisterAll()
        if let poller {
            runningBackend.store(0, ordering: .releasing)
            lk_poller_destroy(poller)
            self.poller = nil
        }
        if metricsEnabled { publishMetrics() }
        // The queues' consumer side passes to whichever thread runs deinit (debug builds check the hand-over).
        externalLane.queue.handOverConsumer()
        internalLane.queue.handOverConsumer()
        microtaskLane.queue.handOverConsumer()
        lk_wake_state_store(wake, LK_STATE_TERMINATED)
        terminatedLatch.open()
    }

    /// Runs every lane until all are empty (in-flight pushes included), unless close() intervenes.
    func drainUntilEmpty() {
        while !lifecycle.isCloseRequestedPrompt {
            var ran = internalLane.drain(on: self)
            ran += externalLane.drain(on: self)
            ran += microtaskLane.drain(on: self)
            if ran == 0 {
                if !hasPendingWork() { return }
                lk_thread_spin_pause() // a producer is mid-push: its task is about to appear
            }
        }
    }

    /// Releases every queued closure without running it; runs the executor jobs when `runningExecutorJobs`
    /// (the loop thread), else stops the process if one is queued (deinit, when no thread uses the loop).
    func discardQueued(runningExecutorJobs: Bool) {
        let loop = runningExecutorJobs ? self : nil
        externalLane.discardAll(runningExecutorJobsOn: loop)
        internalLane.discardAll(runningExecutorJobsOn: loop)
        microtaskLane.discardAll(runningExecutorJobsOn: loop)
    }
}
