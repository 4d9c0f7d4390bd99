internal import CLoopCore
import Glibc

// Executors: Swift concurrency's jobs on the loop.
//
// A job travels as a task of three words — the executor's tag (ExecutorJobKind), the runtime's job pointer,
// a timestamp — through the same queues as a closure, so enqueueing allocates nothing. From another thread
// it takes the external lane's ingress (one call, as `submit`); on the loop thread it goes to the lane's
// local queue (no atomics, no wakeup) and is never run inline from `enqueue`.
//
// A job is never dropped: `close()` releases queued closures but runs queued executor jobs (an awaiting
// task must not hang), and a graceful shutdown drains them like any task. A job enqueued once the loop no
// longer accepts work — its admission gate closed, or on the loop thread after its final drain — could
// never run: that is a precondition failure naming the loop (an actor pinned to a loop, or a task that
// prefers it, outlived the loop).

extension EventLoop: SerialExecutor {
    /// Queues an actor's job on the loop. Any thread; see the file comment for what shutdown does with it.
    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(UnownedJob(job), kind: .serial)
    }

    /// The loop as the runtime refers to it (compared by identity: two actors pinned to one loop share it, and
    /// call each other without a hop).
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// The executor an actor pins itself to the loop with:
    ///
    /// ```swift
    /// actor Connection {
    ///     let loop: EventLoop
    ///     nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }
    /// }
    /// ```
    public var unownedExecutor: UnownedSerialExecutor { asUnownedSerialExecutor() }

    /// Stops the process unless called on the loop thread: what `assumeIsolated` and `preconditionIsolated`
    /// of an actor pinned to the loop rely on, also inside fd handlers and timers.
    public func checkIsolated() {
        precondition(inEventLoop, "expected to run on the thread of EventLoop \(id), isolated to its executor, but called on another thread")
    }

    /// True on the loop thread: code running there (a task, a timer, an fd handler) is isolated to the loop's
    /// executor.
    public func isIsolatingCurrentContext() -> Bool? { inEventLoop }
}

/// The loop as a `TaskExecutor`, for `withTaskExecutorPreference(loop.taskExecutor) { … }` and
/// `Task(executorPreference: loop.taskExecutor) { … }`: tasks that prefer it run their nonisolated code on
/// the loop thread. A separate object from the loop's `SerialExecutor`, because one object receiving both
/// kinds of job cannot tell them apart.
///
/// The loop owns it; it must not outlive the loop (a use after that stops the process).
public final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // Set once, by the loop's initialiser, before the executor is published.
    unowned(safe) private var loopReference: EventLoop?

    init() {}

    func bind(to loop: EventLoop) { loopReference = loop }

    /// The loop this executor runs jobs on.
    public var loop: EventLoop { loopReference! }

    /// Queues a job of a task that prefers the loop; the loop runs it on its thread. Any thread; shutdown
    /// handles it as it does the loop's own executor jobs (see `EventLoop.enqueue(_:)`).
    public func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueue(UnownedJob(job), kind: .task)
    }

    /// This executor as the runtime refers to it.
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}

extension EventLoop {
    /// Queues an executor job (see the file comment).
    func enqueue(_ job: UnownedJob, kind: ExecutorJobKind) {
        if inEventLoop {
            precondition(phase != .finished, Self.enqueueAfterTerminationMessage(id))
            externalLane.local.append(job, kind: kind)
            return
        }
        let jobWord = unsafeBitCast(job, to: UInt.self)
        var rc = pushExternal(kind.rawValue, jobWord)
        // A job cannot be refused: a queue that cannot grow now is retried until memory frees up.
        var attempts = 0
        while rc == -ENOMEM {
            attempts += 1
            precondition(attempts < Self.executorEnqueueAttempts, "EventLoop \(id): out of memory queueing an executor job, which must not be dropped")
            sched_yield()
            rc = pushExternal(kind.rawValue, jobWord)
        }
        precondition(rc != -ESHUTDOWN, Self.enqueueAfterTerminationMessage(id))
    }

    /// How often an executor job's enqueue retries a queue that cannot grow before it gives up.
    static let executorEnqueueAttempts = 100_000

    static func enqueueAfterTerminationMessage(_ id: UInt64) -> String {
        "EventLoop \(id) has terminated: a job enqueued on its executor can never run (an actor pinned to the loop, or a task preferring it, outlived it; shut the loop down after the work that uses it)"
    }

    /// Runs an executor job on the loop thread, on the executor it was enqueued on.
    @inline(never)
    func runExecutorJob(_ job: UnownedJob, kind: ExecutorJobKind) {
        switch kind {
        case .serial: job.runSynchronously(on: asUnownedSerialExecutor())
        case .task: job.runSynchronously(on: taskExecutor.asUnownedTaskExecutor())
        }
        if configuration.strictMicrotaskOrdering { drainMicrotasks() }
    }
}
