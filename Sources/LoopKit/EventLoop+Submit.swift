internal import CLoopCore
internal import LoopKitConcurrencyHelpers
import Glibc
import Synchronization

extension EventLoop {
    /// Queues `task` on the external lane. Any thread.
    ///
    /// From another thread the task goes through the configured ingress (`IngressKind`) and, if the loop is
    /// asleep, one eventfd write wakes it. From the loop thread itself it goes to a local queue: no
    /// atomics, no wakeup. Tasks run in submission order per submitting thread. An error the task throws
    /// goes to `Configuration.errorHandler`.
    ///
    /// Accepted while the loop is created, running or terminating; a task accepted here runs exactly once, on
    /// the loop thread, even when `shutdown()` races this call.
    ///
    /// - Throws: `EventLoopError.terminated` once the loop no longer accepts work: from another thread once
    ///   shutdown has closed its admission gate (its final drain), from the loop thread once that drain has
    ///   ended, and after `close()`; `.outOfMemory` if the queue could not grow. Nothing is queued then.
    public func submit(_ task: @escaping @Sendable () -> Void) throws {
        if inEventLoop {
            try checkAcceptsLocalWork()
            externalLane.local.append(task)
            return
        }
        let words = StoredJob.ownedWords(of: task)
        let rc = pushExternal(words.0, words.1)
        if rc < 0 {
            releaseJob(words: words) // it was not queued
            throw rc == -ESHUTDOWN ? EventLoopError.terminated : EventLoopError.outOfMemory
        }
    }

    /// From another thread: one call with the task in registers — the admission gate and the push of
    /// {w0, w1, timestamp} to the external lane (lk_ingress_submit) — then, when it was queued, the metrics
    /// count and the report of a failed wakeup. Returns lk_ingress_submit's result (< 0: nothing queued).
    @inline(__always)
    func pushExternal(_ w0: UInt, _ w1: UInt) -> Int32 {
        let timestamp = metricsEnabled ? UInt(bitPattern: Int(lk_clock_now_ns())) : 0
        let rc = lk_ingress_submit(ingress, gate, w0, w1, timestamp)
        if rc >= 0 {
            if metricsEnabled { foreignExternalSubmitted.wrappingAdd(1, ordering: .relaxed) }
            if rc >= LK_SUBMIT_WAKE_FAILED { reportWakeFailure(-(rc & ~LK_SUBMIT_WAKE_FAILED)) }
        }
        return rc
    }

    /// Queues `task` on the internal (priority) lane, drained before external tasks every tick. Any thread.
    ///
    /// On the loop thread, when nothing is queued ahead of it (no internal or external task waiting, none
    /// left in the batch being run), the task runs immediately, nested in the caller. On any other thread
    /// it never runs inline: it is queued and runs on the loop thread.
    ///
    /// - Throws: `EventLoopError.terminated`, `.outOfMemory`, as `submit(_:)`.
    public func submitInternal(_ task: @escaping @Sendable () -> Void) throws {
        if inEventLoop {
            try checkAcceptsLocalWork()
            if canRunInline() {
                inlineDepth += 1
                defer { inlineDepth -= 1 }
                runJob(task)
                if metricsEnabled { internalLane.tasksRun &+= 1 }
            } else {
                internalLane.local.append(task)
            }
            return
        }
        try admit(task, lane: .internal) { lk_mpsc_push(internalIngress, $0) }
        reportWakeFailure(lk_wake_notify(wake))
    }

    /// Queues a microtask: it runs after the current phase of the tick (or after the current task in
    /// strict mode), before the loop sleeps. Any thread.
    ///
    /// - Throws: `EventLoopError.terminated`, `.outOfMemory`, as `submit(_:)`.
    public func queueMicrotask(_ task: @escaping @Sendable () -> Void) throws {
        if inEventLoop {
            try checkAcceptsLocalWork()
            var payload = lk_task(job: task)
            if lk_ring_push(microtaskRing, &payload) < 0 {
                releaseJob(from: &payload)
                throw EventLoopError.outOfMemory
            }
            return
        }
        try admit(task, lane: .microtask) { lk_ring_push(microtaskRing, $0) }
        reportWakeFailure(lk_wake_notify(wake))
    }

    /// Runs `task` on the loop thread and returns its result (or rethrows its error) to the caller.
    /// Any thread, from async code.
    ///
    /// - Throws: the task's own error; `EventLoopError.terminated` if the loop does not accept the task
    ///   or discards it (`close()`); `.outOfMemory`.
    public func perform<T: Sendable>(_ task: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let reply = Reply(continuation)
            do {
                try submit {
                    reply.resume(with: Result { try task() })
                }
            } catch {
                reply.resume(with: .failure(error))
            }
        }
    }

    // MARK: Throwing tasks: their errors go to Configuration.errorHandler

    /// `submit(_:)` for a task that throws; its error goes to `Configuration.errorHandler`.
    public func submit(_ task: @escaping @Sendable () throws -> Void) throws {
        try submit(catching(task))
    }

    /// `submitInternal(_:)` for a task that throws; its error goes to `Configuration.errorHandler`.
    public func submitInternal(_ task: @escaping @Sendable () throws -> Void) throws {
        try submitInternal(catching(task))
    }

    /// `queueMicrotask(_:)` for a task that throws; its error goes to `Configuration.errorHandler`.
    public func queueMicrotask(_ task: @escaping @Sendable () throws -> Void) throws {
        try queueMicrotask(catching(task))
    }

    /// Wraps a throwing task so that its error reaches the configured handler instead of being lost.
    func catching(_ task: @escaping @Sendable () throws -> Void) -> Job {
        let handler = configuration.errorHandler
        return {
            do { try task() } catch { handler(error) }
        }
    }

    // MARK: Admission from other threads

    /// Pushes `job` from a thread that is not the loop's, inside the admission gate: if the gate is open,
    /// the push is published before the loop's final drain; if it is closed, nothing is queued.
    @inline(__always)
    func admit(_ job: @escaping Job, lane: LaneKind, push: (UnsafeMutablePointer<lk_task>) -> Int32) throws {
        var failed = false
        guard lk_gate_enter(gate, &failed) else {
            throw failed ? EventLoopError.outOfMemory : EventLoopError.terminated
        }
        // Queueing latency is measured for the task lanes only (drainMicrotasks records none).
        var payload = lk_task(job: job, timestamp: metricsEnabled && lane != .microtask ? lk_clock_now_ns() : 0)
        let rc = push(&payload)
        lk_gate_exit()
        if rc < 0 {
            releaseJob(from: &payload) // it was not queued
            throw EventLoopError.outOfMemory
        }
        if metricsEnabled {
            switch lane {
            case .external: foreignExternalSubmitted.wrappingAdd(1, ordering: .relaxed)
            case .internal: foreignInternalSubmitted.wrappingAdd(1, ordering: .relaxed)
            case .microtask: break
            }
        }
    }

    enum LaneKind { case external, `internal`, microtask }

    /// Loop thread: throws `.terminated` once its own submissions would never run (the final drain is over,
    /// or `close()` was requested).
    @inline(__always)
    func checkAcceptsLocalWork() throws {
        guard phase != .finished && !lifecycle.isCloseRequestedPrompt else { throw EventLoopError.terminated }
    }

    /// Reports a wakeup that failed (`rc` < 0: the eventfd write failed after its retries, see lk_wake.h) to
    /// the error handler. The work it announced stays queued, not withdrawn: it runs at the loop's next
    /// wakeup, which the next signal, timer or I/O event brings.
    @inline(__always)
    func reportWakeFailure(_ rc: Int32) {
        if rc < 0 { configuration.errorHandler(EventLoopError.system(operation: "wake", errno: -rc)) }
    }

    /// Loop thread: may a task submitted now run inline without overtaking queued work?
    func canRunInline() -> Bool {
        assert(inEventLoop, "EventLoop.canRunInline() is asked on the loop thread only")
        return batchRemaining == 0 && inlineDepth < Self.maxInlineDepth && phase == .ticking
            && !internalLane.hasWork && !externalLane.hasWork
            && lk_wake_state_load(wake) == LK_STATE_RUNNING
    }
}

/// Resumes a continuation exactly once: with the task's result, or with `.terminated` if the task is
/// released without running (the loop was closed).
final class Reply<T: Sendable>: Sendable {
    private let continuation: Locked<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Locked(continuation)
    }

    func resume(with result: Result<T, any Error>) {
        continuation.withLock { $0.take() }?.resume(with: result)
    }

    deinit {
        continuation.withLock { $0.take() }?.resume(throwing: EventLoopError.terminated)
    }
}
