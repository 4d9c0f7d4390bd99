internal import CLoopCore

/// A unit of work as the loop stores it. Non-throwing: a plain closure is stored as it is (converting it to a
/// throwing type would wrap it in a heap-allocated thunk per task); throwing tasks are wrapped once, at
/// submission, with the error handler (`EventLoop.catching`).
typealias Job = @Sendable () -> Void

/// A Job wrapped in a struct. Generic storage (raw memory initialised through `initializeMemory(as:)`, an
/// Array's buffer) holds a bare function value in its most abstract representation, which Swift reaches by
/// wrapping the closure in a heap-allocated reabstraction thunk: one allocation per task. A struct field keeps
/// the function's concrete representation, so a stored job costs no allocation.
struct StoredJob {
    let run: Job
}

extension lk_task {
    /// Moves `job` into a task payload: the payload owns the closure's reference from here on.
    @inline(__always)
    init(job: @escaping Job, timestamp: Int64 = 0) {
        self.init()
        withUnsafeMutableBytes(of: &self) { raw in
            // Rebound for the initialisation only: the memory stays an lk_task to the compiler.
            raw.baseAddress!.withMemoryRebound(to: StoredJob.self, capacity: 1) {
                $0.initialize(to: StoredJob(run: job))
            }
        }
        words.2 = UInt(bitPattern: Int(timestamp))
    }

    var timestamp: Int64 { Int64(Int(bitPattern: words.2)) }
}

extension StoredJob {
    /// The job's two words (function, context), owning one reference to the context as a payload in memory
    /// does: the form `lk_ingress_submit` takes them in, in registers. `releaseJob(words:)` gives the
    /// reference back when the words were not queued.
    @inline(__always)
    static func ownedWords(of job: @escaping Job) -> (UInt, UInt) {
        // The struct keeps the function in its concrete representation, so the bits are the function and
        // its context (no reabstraction thunk, no allocation). The bit copy owns nothing: retain the context
        // for the queue (a closure context is a native Swift heap object; nil for a closure without one).
        let words = unsafeBitCast(StoredJob(run: job), to: (UInt, UInt).self)
        if let context = UnsafeRawPointer(bitPattern: words.1) {
            _ = Unmanaged<AnyObject>.fromOpaque(context).retain()
        }
        return words
    }
}

/// Releases the reference owned by words from `StoredJob.ownedWords(of:)` that were not queued.
@inline(never)
func releaseJob(words: (UInt, UInt)) {
    var task = lk_task(words: (words.0, words.1, 0))
    releaseJob(from: &task)
}

/// Moves the Job out of the payload at `task` (which must hold one): ownership passes to the caller.
@inline(__always)
func takeJob(from task: UnsafeMutablePointer<lk_task>) -> Job {
    // The payload is memory bound to lk_task: it is viewed as a StoredJob only inside withMemoryRebound.
    UnsafeMutableRawPointer(task).withMemoryRebound(to: StoredJob.self, capacity: 1) { $0.move().run }
}

/// Releases the Job in the payload at `task` (which must hold one) without running it.
///
/// Not inlined, and the only way a payload's job is dropped. A job moved out of a local `lk_task` variable and
/// discarded on the spot (`_ = takeJob(from: &task)`) can lose its release in an optimized build (seen with
/// the TSan build; the variable's type is a trivial C struct, which seems to be what lets the optimizer drop
/// it), leaking the closure. Behind a call the payload is opaque memory and the release stays.
/// `ShutdownTests.closeReleasesQueuedTasksWithoutRunningThem` checks it in the optimized build of
/// `make test-tsan`.
@inline(never)
func releaseJob(from task: UnsafeMutablePointer<lk_task>) {
    let job = takeJob(from: task)
    withExtendedLifetime(job) {}
}

/// Which executor an executor job was enqueued on: the loop's serial executor (actors pinned to the loop)
/// or its task executor (tasks that prefer the loop). The raw value is the job's tag in `lk_task.words.0`,
/// where a closure has its function pointer (never 1 or 2).
enum ExecutorJobKind: UInt {
    case serial = 1
    case task = 2
}

/// One entry of the loop thread's own queue: a closure, or an executor job (stored as the runtime's job
/// pointer: enqueueing allocates nothing).
enum LocalEntry {
    case closure(StoredJob)
    case executorJob(UnownedJob, ExecutorJobKind)
}

/// A FIFO of jobs for the loop thread's own use: no atomics, no locks. Loop thread only.
struct LocalJobQueue {
    private var storage: [LocalEntry?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ job: @escaping Job) {
        append(entry: .closure(StoredJob(run: job)))
    }

    mutating func append(_ job: UnownedJob, kind: ExecutorJobKind) {
        append(entry: .executorJob(job, kind))
    }

    private mutating func append(entry: LocalEntry) {
        if count == storage.count { grow() }
        var tail = head + count
        if tail >= storage.count { tail -= storage.count }
        storage[tail] = entry
        count += 1
    }

    mutating func removeFirst() -> LocalEntry? {
        guard count > 0 else { return nil }
        let entry = storage[head]
        storage[head] = nil
        head += 1
        if head == storage.count { head = 0 }
        count -= 1
        return entry
    }

    private mutating func grow() {
        let newCapacity = Swift.max(16, storage.count * 2)
        var fresh: [LocalEntry?] = []
        fresh.reserveCapacity(newCapacity)
        for i in 0..<count { fresh.append(storage[(head + i) % storage.count]) }
        fresh.append(contentsOf: repeatElement(nil, count: newCapacity - count))
        storage = fresh
        head = 0
    }
}
