import Glibc

/// The minimal correct loop, the reference design LoopKit is measured against: one dedicated pthread, a
/// pthread mutex guarding a Swift array of pending tasks (`MutexQueueEntrant`), and a condition variable the
/// loop sleeps on while the array is empty. The loop swaps the whole array out under the lock (no budgets)
/// and runs the batch outside it.
///
/// Threading: `submit` from any thread between `start()` and `shutdown()`; `start`/`shutdown` from one
/// controlling thread. `waiting` and `signals` are guarded by `mutex`, as the queue is.
final class BaselineEntrant: MutexQueueEntrant, Entrant, @unchecked Sendable {
    // Declared first, so that they lie next to `pending` (see MutexQueueEntrant).
    private var waiting = false // guarded by mutex: the loop is (about to be) blocked in the condvar
    private var signals: UInt64 = 0 // guarded by mutex
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1) // waits with `mutex`
    let name = "Baseline"

    override init() {
        super.init()
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deallocate()
    }

    func start() throws {
        setStopping(false)
        try startLoopThread { [self] in run() } // the closure keeps self alive while the thread runs
    }

    func submit(_ task: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        pending.append(QueuedTask(run: task))
        if waiting {
            waiting = false // one signal per sleep: later submitters need not signal again
            signals &+= 1
            pthread_cond_signal(cond)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Raises the stop flag; the loop runs whatever is left before it exits; then joins it.
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
        joinLoopThread()
    }

    var wakeSyscalls: UInt64? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return signals
    }

    private func run() {
        var batch: [QueuedTask] = []
        pthread_mutex_lock(mutex)
        while true {
            while pending.isEmpty && !stopping {
                waiting = true
                pthread_cond_wait(cond, mutex)
            }
            waiting = false
            if pending.isEmpty { break } // stopping, and nothing left
            swap(&batch, &pending)
            pthread_mutex_unlock(mutex)
            for task in batch { task.run() }
            batch.removeAll(keepingCapacity: true)
            pthread_mutex_lock(mutex)
        }
        pthread_mutex_unlock(mutex)
    }
}

/// Failures starting a peer entrant.
enum PeerError: Error {
    case libuv(Int32)
}
