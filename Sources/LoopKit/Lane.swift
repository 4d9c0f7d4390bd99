internal import CLoopCore

/// The consumer side of a lane's cross-thread queue: one of the C queues, seen the way a drain uses it.
/// Loop thread only (the push side is the submitters', through the loop's own handle to the same queue).
protocol LaneQueue {
    /// A drain begins: returns the most tasks this drain may take from the queue.
    mutating func beginDrain(budget: Int) -> Int
    /// Moves up to `max` tasks into `out`. 0 ends the cross-thread part of the drain.
    mutating func pop(into out: UnsafeMutablePointer<lk_task>, max: Int) -> Int
    /// True only when nothing is queued and no push is in flight.
    func isEmpty() -> Bool
    /// One pop, for discarding: a push caught mid-flight answers BUSY.
    func popOne(_ out: UnsafeMutablePointer<lk_task>) -> lk_pop_status
    /// The consumer side passes to another thread (debug builds check it: lk_ingress.h).
    func handOverConsumer()
    /// Frees the queue. Nothing may use it afterwards.
    func destroy()
}

/// One lane of the tick: its cross-thread queue, the loop thread's own FIFO, the budget of one drain, and
/// its counters. A drain runs the cross-thread tasks the queue yields within the budget, then the loop
/// thread's own tasks (see `Policy`); a task released by `close()` is dropped where it would have run.
/// Loop thread only.
///
/// The loop keeps its own copy of the queue's handle for submitters on other threads: they must not read
/// this object, whose lines the loop thread writes on every drain.
final class Lane<Queue: LaneQueue> {
    /// How a lane's drain differs from the others'.
    struct Policy {
        /// One pop per drain (the external lane: at most the budget per tick, whatever arrives meanwhile),
        /// or pops until the queue's limit or the budget is reached.
        var popsOnce: Bool
        /// The loop thread's own tasks share the budget with the cross-thread ones (external), or all those
        /// queued when the cross-thread part ends run (internal).
        var localSharesBudget: Bool
        /// While tasks taken off the queue wait in the batch, the inline fast path of `submitInternal` is
        /// off (it must not overtake them).
        var holdsInlineRuns: Bool
    }

    @exclusivity(unchecked) var queue: Queue
    /// The loop thread's own submissions to this lane: no atomics, no wakeup.
    @exclusivity(unchecked) var local = LocalJobQueue()
    let budget: Int
    let policy: Policy
    private let batch: UnsafeMutablePointer<lk_task>
    private let batchCapacity: Int
    /// A drain entered from inside a drain (strict microtask ordering drains after every task) returns at
    /// once: the outer drain, which keeps popping until its budget is spent, runs what was queued
    /// meanwhile, and its batch still holds tasks not yet taken.
    @exclusivity(unchecked) private var isDraining = false
    /// Tasks run (metrics).
    @exclusivity(unchecked) var tasksRun: UInt64 = 0
    /// Tasks from other threads run, counted with metrics on (the loop's side of the queue depth).
    @exclusivity(unchecked) var foreignTasksRun: UInt64 = 0

    init(queue: Queue, budget: Int, batchCapacity: Int, policy: Policy) {
        self.queue = queue
        self.budget = budget
        self.policy = policy
        self.batchCapacity = batchCapacity
        batch = .allocate(capacity: batchCapacity)
    }

    deinit { batch.deallocate() }

    /// True when a task waits in this lane (or a push to it is in flight).
    var hasWork: Bool { !local.isEmpty || !queue.isEmpty() }

    /// Runs what this lane may run now (see `Policy`). Returns how many tasks ran.
    @discardableResult
    func drain(on loop: EventLoop) -> Int {
        assert(loop.inEventLoop, "a lane is drained on its loop's thread only")
        guard !isDraining else { return 0 }
        isDraining = true
        defer { isDraining = false }
        var ran = 0
        var remaining = queue.beginDrain(budget: budget)
        var popped = 0
        while remaining > 0 {
            let n = queue.pop(into: batch, max: Swift.min(remaining, batchCapacity))
            if n == 0 { break }
            for i in 0..<n {
                if policy.holdsInlineRuns { loop.batchRemaining = n - i - 1 }
                if run(batch + i, on: loop) { ran += 1 }
            }
            remaining -= n
            popped += n
            if policy.popsOnce { break }
        }
        if policy.holdsInlineRuns { loop.batchRemaining = 0 }
        var localLimit = policy.localSharesBudget ? Swift.min(local.count, budget - popped) : local.count
        while localLimit > 0, let entry = local.removeFirst() {
            localLimit -= 1
            switch entry {
            case .closure(let stored):
                if loop.lifecycle.isCloseRequestedPrompt { continue } // released, not run
                loop.runJob(stored.run)
            case .executorJob(let job, let kind):
                loop.runExecutorJob(job, kind: kind) // never dropped, close() or not
            }
            ran += 1
        }
        if loop.metricsEnabled { tasksRun &+= UInt64(ran) }
        return ran
    }

    /// A task taken off the queue: a closure is released when `close()` was requested, else run; an
    /// executor job always runs (an awaiting task must not hang). Its queueing latency is recorded when
    /// metrics are on. True when it ran.
    @inline(__always)
    private func run(_ task: UnsafeMutablePointer<lk_task>, on loop: EventLoop) -> Bool {
        if let kind = task.pointee.executorJobKind {
            if loop.metricsEnabled, task.pointee.timestamp != 0 {
                foreignTasksRun &+= 1
                loop.recordLatency(since: task.pointee.timestamp)
            }
            loop.runExecutorJob(task.pointee.executorJob, kind: kind)
            return true
        }
        if loop.lifecycle.isCloseRequestedPrompt {
            releaseJob(from: task)
            return false
        }
        let timestamp = task.pointee.timestamp
        let job = takeJob(from: task)
        if loop.metricsEnabled, timestamp != 0 {
            foreignTasksRun &+= 1
            loop.recordLatency(since: timestamp)
        }
        loop.runJob(job)
        return true
    }

    /// Releases every queued closure without running it, and runs every executor job (on the loop thread,
    /// `loop`; with no loop thread, as in deinit, an executor job still queued is a programming error: it
    /// could never run). A push caught mid-flight is waited for: its task appears within a few instructions,
    /// and must not stay queued.
    func discardAll(runningExecutorJobsOn loop: EventLoop?) {
        var task = lk_task()
        while true {
            switch queue.popOne(&task) {
            case LK_POP_OK:
                if let kind = task.executorJobKind {
                    Self.run(task.executorJob, kind: kind, on: loop)
                } else if !task.isMarker {
                    releaseJob(from: &task)
                }
            case LK_POP_BUSY: lk_thread_spin_pause()
            default:
                while let entry = local.removeFirst() {
                    if case .executorJob(let job, let kind) = entry { Self.run(job, kind: kind, on: loop) }
                }
                return
            }
        }
    }

    private static func run(_ job: UnownedJob, kind: ExecutorJobKind, on loop: EventLoop?) {
        guard let loop else {
            preconditionFailure("EventLoop deinitialised with an executor job queued: it was never run, and the job can never run")
        }
        loop.runExecutorJob(job, kind: kind)
    }
}

// MARK: The three queues

/// The external lane's queue: the configured ingress (lk_ingress.h).
struct IngressQueue: LaneQueue {
    let handle: OpaquePointer

    func beginDrain(budget: Int) -> Int { budget }

    func pop(into out: UnsafeMutablePointer<lk_task>, max: Int) -> Int {
        // A push caught mid-flight (BUSY) is not waited for: hasPendingWork() keeps the next poll from blocking.
        lk_ingress_pop_batch(handle, out, max, nil)
    }

    func isEmpty() -> Bool { lk_ingress_is_empty(handle) }
    func popOne(_ out: UnsafeMutablePointer<lk_task>) -> lk_pop_status { lk_ingress_pop(handle, out) }
    func handOverConsumer() { lk_ingress_consumer_hand_over(handle) }
    func destroy() { lk_ingress_destroy(handle) }
}

/// The internal lane's queue (lk_mpsc.h). A drain takes what was queued when it began, no more: a marker
/// pushed behind the queued tasks ends it. When no node can be allocated for the marker, the budget bounds
/// the drain instead (what is ready, up to it), so the lane keeps running while memory is short.
struct InternalQueue: LaneQueue {
    let handle: OpaquePointer
    private var hasMarker = false
    private var ended = true

    init(handle: OpaquePointer) { self.handle = handle }

    mutating func beginDrain(budget: Int) -> Int {
        guard !lk_mpsc_is_empty(handle) else {
            ended = true
            return 0
        }
        var marker = lk_task.marker
        hasMarker = lk_mpsc_push(handle, &marker) >= 0
        ended = false
        return hasMarker ? Int.max : budget
    }

    mutating func pop(into out: UnsafeMutablePointer<lk_task>, max: Int) -> Int {
        var n = 0
        while n < max && !ended {
            let status = lk_mpsc_pop(handle, out + n)
            if status == LK_POP_BUSY {
                if hasMarker { lk_thread_spin_pause(); continue } // the marker is behind it
                ended = true // hasPendingWork() keeps the loop from blocking until it lands
            } else if status != LK_POP_OK || out[n].isMarker {
                ended = true
            } else {
                n += 1
            }
        }
        return n
    }

    func isEmpty() -> Bool { lk_mpsc_is_empty(handle) }
    // May yield an internal-lane marker (no job in it): discardAll skips it.
    func popOne(_ out: UnsafeMutablePointer<lk_task>) -> lk_pop_status { lk_mpsc_pop(handle, out) }
    func handOverConsumer() { lk_mpsc_consumer_hand_over(handle) }
    func destroy() { lk_mpsc_destroy(handle) }
}

/// The microtask lane's queue: the ring with overflow (lk_ring.h), which the loop thread's own microtasks
/// use too, so that they keep their order with the others'.
struct MicrotaskQueue: LaneQueue {
    let handle: OpaquePointer

    func beginDrain(budget: Int) -> Int { budget }

    func pop(into out: UnsafeMutablePointer<lk_task>, max: Int) -> Int {
        lk_ring_pop_batch(handle, out, max, nil)
    }

    func isEmpty() -> Bool { lk_ring_is_empty(handle) }
    func popOne(_ out: UnsafeMutablePointer<lk_task>) -> lk_pop_status { lk_ring_pop(handle, out) }
    func handOverConsumer() { lk_ring_consumer_hand_over(handle) }
    func destroy() { lk_ring_destroy(handle) }
}
