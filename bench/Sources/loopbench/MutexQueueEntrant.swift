import Glibc
import LoopKitConcurrencyHelpers

/// What the peers with a loop thread of their own and a mutex-guarded queue share (Baseline, libuv): the
/// loop thread, a Swift array of submitted tasks and a stop flag behind one pthread mutex. Submitters append
/// under the mutex; the loop thread swaps the whole array out under it and runs the batch outside it, so the
/// mutex is held for an append or a swap, never while a task runs. A subclass says how its loop thread sleeps
/// and is woken. pthread primitives (not Synchronization.Mutex) so ThreadSanitizer sees them.
///
/// A base class rather than a member object: the mutex-guarded fields stay in the entrant's own object, so a
/// submit touches the same memory as with them declared in the entrant.
///
/// Threading: `pending` and `stopping` only with `mutex` held (a subclass may guard fields of its own with
/// it, and wait on a condition variable with it); the loop thread is started and joined by the controlling
/// thread.
class MutexQueueEntrant: @unchecked Sendable {
    /// Heap-allocated: a pthread mutex needs a stable address.
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var loopThread: JoinableThread? // controlling thread only
    // The guarded fields come last, so that the guarded fields a subclass declares first lie right after
    // them: a submit writes `pending` and those, and together they span as few cache lines as they can.
    /// Submitted and not yet taken by the loop thread, oldest first. Guarded by `mutex`.
    final var pending: [QueuedTask] = []
    /// Raised by shutdown: the loop thread runs what is queued, then exits. Guarded by `mutex`.
    final var stopping = false

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Any thread: queues `task` behind every task queued before it.
    final func append(_ task: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        pending.append(QueuedTask(run: task))
        pthread_mutex_unlock(mutex)
    }

    /// Loop thread: swaps the queued tasks into `batch`, which must be empty, and returns whether `stopping`
    /// was raised by then (when it was, no task is queued after these).
    final func takePending(into batch: inout [QueuedTask]) -> Bool {
        pthread_mutex_lock(mutex)
        swap(&batch, &pending)
        let stop = stopping
        pthread_mutex_unlock(mutex)
        return stop
    }

    /// Controlling thread: raises or lowers `stopping` under the mutex.
    final func setStopping(_ value: Bool) {
        pthread_mutex_lock(mutex)
        stopping = value
        pthread_mutex_unlock(mutex)
    }

    /// Controlling thread: starts the loop thread running `body` (which may keep the entrant alive until it
    /// returns).
    final func startLoopThread(_ body: @escaping @Sendable () -> Void) throws {
        loopThread = try JoinableThread(body)
    }

    /// Controlling thread: waits for the loop thread to return.
    final func joinLoopThread() {
        loopThread?.join()
        loopThread = nil
    }
}
