internal import CLoopCore
internal import LoopKitConcurrencyHelpers
import Glibc
import Synchronization

/// A single-threaded event loop: tasks, microtasks, timers and file-descriptor readiness, all run on one
/// thread, in the order described in `docs/design.md` ("anatomy of a tick").
///
/// Threading: every method is safe to call from any thread unless its documentation says "loop thread
/// only". The loop thread is the thread inside `run()` (or the one `start()` created).
///
/// Life cycle: `created` → `running` ⇄ `sleeping` → `terminating` → `terminated` (Lifecycle.swift). `shutdown()`
/// is graceful: every task whose submission succeeded runs exactly once, on the loop thread, before the
/// loop terminates. `close()` is immediate: queued tasks are released without running.
///
/// A task that traps (a failed precondition, a forced unwrap of nil) stops the whole process; Swift
/// cannot recover from a trap. A task that throws is not a trap: its error goes to
/// `Configuration.errorHandler`, or back to the caller with `perform(_:)`.
public final class EventLoop: @unchecked Sendable {
    /// The lifecycle states of a loop.
    public enum State: Sendable, Equatable {
        /// Created, not yet run.
        case created
        /// Running tasks (or spinning for them).
        case running
        /// Parked in the poller until work, a timer or I/O arrives.
        case sleeping
        /// Shutting down: the final drain (graceful) or the release of queued work (`close()`).
        case terminating
        /// Terminated; accepts nothing.
        case terminated
    }

    // Layout. Submitters on other threads read the fields from `configuration` to `lifecycle` on every
    // submit, and may retain the object (writing its header). The loop thread writes `tickStartNanoseconds`
    // on every tick and the loop-thread state below it all the time. The paddings keep those three groups
    // on different cache lines, so a submit does not pull a line the loop has just written (false sharing).
    // Swift lays out a class's stored properties in declaration order.
    private let headerPadding = CacheLinePadding()

    /// The configuration the loop was created with.
    public let configuration: Configuration

    // MARK: Shared state (any thread). The C objects synchronise themselves.

    let id: UInt64
    let wake: OpaquePointer          // lk_wake: state word, wake-pending flag, eventfd
    let gate: OpaquePointer          // lk_gate: admission of work from other threads
    let ingress: OpaquePointer       // lk_ingress: external tasks from other threads
    let internalIngress: OpaquePointer // lk_mpsc: internal tasks from other threads
    let microtaskRing: OpaquePointer // lk_ring: microtasks from any thread
    let clock: any MonotonicClock
    let metricsEnabled: Bool

    /// Ownership of the consumer side, close() and the timers' end: the shared half of the lifecycle
    /// (Lifecycle.swift has the whole machine).
    let lifecycle = Lifecycle()
    /// The running poller's lk_backend, 0 when none. Stored by the loop thread when its poller is created and
    /// destroyed (releasing); read by `backend` from any thread (acquiring).
    let runningBackend = Atomic<Int>(0)
    let timerState = Locked(TimerState())
    let anchor: Locked<AnchorState>
    let terminatedLatch = Latch()
    let metricsStore = Locked(Metrics())
    /// The loop as a `TaskExecutor` (see `LoopTaskExecutor`). Any thread.
    public let taskExecutor = LoopTaskExecutor()

    private let sharedPadding = CacheLinePadding()

    /// The earliest timer deadline (Int64.max for none), mirrored out of `timerState` so the spinning
    /// loop can watch it without the lock. Written under the timer lock (relaxed); read relaxed (a hint:
    /// the lock is taken before the loop sleeps).
    let earliestDeadline = Atomic<Int64>(Int64.max)
    /// Clock reading at the start of the current tick. Stored by the loop each tick (relaxed: a value, it
    /// publishes nothing); read by `currentTickTime` from any thread.
    let tickStartNanoseconds: Atomic<Int64>
    /// Tasks submitted from other threads, counted only when metrics are enabled (relaxed: a statistic).
    let foreignExternalSubmitted = Atomic<UInt64>(0)
    let foreignInternalSubmitted = Atomic<UInt64>(0)

    // MARK: Loop-thread state: read and written only by the thread running the loop.
    //
    // `@exclusivity(unchecked)`: these are touched on every tick, and the dynamic exclusivity check Swift
    // would otherwise make for each access to a class's stored property (a runtime call and a thread-local
    // lookup) is a large share of a tick's cost. The loop thread alone uses them, and each use is a single
    // access that ends before any callback can run (queued closures are moved out, then called), so no two
    // accesses overlap.

    @exclusivity(unchecked) var poller: OpaquePointer?
    /// The lanes of a tick (Lane.swift); they own the consumer side of `ingress`, `internalIngress` and
    /// `microtaskRing`.
    let externalLane: Lane<IngressQueue>
    let internalLane: Lane<InternalQueue>
    let microtaskLane: Lane<MicrotaskQueue>
    /// Tasks taken off a queue for the current phase and not yet run; the inline fast path of
    /// `submitInternal` must not overtake them.
    @exclusivity(unchecked) var batchRemaining = 0
    @exclusivity(unchecked) var inlineDepth = 0
    /// The loop thread's half of the lifecycle (Lifecycle.swift).
    @exclusivity(unchecked) var phase = LoopPhase.ticking
    @exclusivity(unchecked) var registrations: [FDRegistration?] = []
    @exclusivity(unchecked) var registeredCount = 0
    @exclusivity(unchecked) var pollEvents: UnsafeMutablePointer<lk_poll_event>
    let pollEventsCapacity = 256
    @exclusivity(unchecked) var pollEpoch: UInt64 = 0
    /// Socket operations in flight and their handlers (EventLoop+Completions.swift).
    let completions = CompletionTable()
    /// The spin before a park: adaptive (`AdaptiveSpin`) or fixed (`fixedSpinBudget`, 0 for `.park`).
    @exclusivity(unchecked) var adaptiveSpin: AdaptiveSpin?
    let fixedSpinBudget: Int64
    /// Parks since the last one whose CPU cost was measured (the adaptive spin samples one in 16).
    @exclusivity(unchecked) var parksSinceCostSample = 0
    @exclusivity(unchecked) var counters = Metrics()
    @exclusivity(unchecked) var pendingLatencies: [UInt64] = []
    /// `configuration.clock` is the system clock: the tick reads CLOCK_MONOTONIC directly, not through
    /// the protocol.
    let usesSystemClock: Bool

    static let maxInlineDepth = 16

    /// Creates a loop. It does nothing until `run()` or `start()`.
    ///
    /// - Throws: `EventLoopError.outOfMemory`, or `.system` if an eventfd cannot be created.
    public init(configuration: Configuration = Configuration()) throws {
        precondition(configuration.externalBatchBudget > 0, "EventLoop.Configuration.externalBatchBudget must be positive")
        precondition(configuration.microtaskBudget > 0, "EventLoop.Configuration.microtaskBudget must be positive")
        precondition(MemoryLayout<StoredJob>.size <= 2 * MemoryLayout<UInt>.size, "a job must fit two lk_task words")
        self.configuration = configuration
        clock = configuration.clock
        usesSystemClock = configuration.clock is SystemMonotonicClock
        metricsEnabled = configuration.metricsEnabled
        id = lk_thread_next_loop_id()

        var w: OpaquePointer?, g: OpaquePointer?, q: OpaquePointer?, i: OpaquePointer?, r: OpaquePointer?
        var rc = lk_wake_create(&w)
        guard rc == 0 else { throw Self.error(rc, "eventfd") }
        rc = lk_gate_create(&g)
        if rc == 0 { rc = lk_ingress_create(&q, configuration.ingress.cValue, w) }
        if rc == 0 { rc = lk_mpsc_create(&i) }
        if rc == 0 { rc = lk_ring_create(&r) }
        guard rc == 0 else {
            lk_ring_destroy(r); lk_mpsc_destroy(i); lk_ingress_destroy(q); lk_gate_destroy(g); lk_wake_destroy(w)
            throw Self.error(rc, "create")
        }
        wake = w!; gate = g!; ingress = q!; internalIngress = i!; microtaskRing = r!

        let budget = configuration.externalBatchBudget
        externalLane = Lane(queue: IngressQueue(handle: ingress), budget: budget, batchCapacity: budget,
                            policy: .init(popsOnce: true, localSharesBudget: true, holdsInlineRuns: true))
        internalLane = Lane(queue: InternalQueue(handle: internalIngress), budget: budget,
                            batchCapacity: Swift.min(budget, 256),
                            policy: .init(popsOnce: false, localSharesBudget: false, holdsInlineRuns: true))
        microtaskLane = Lane(queue: MicrotaskQueue(handle: microtaskRing), budget: configuration.microtaskBudget,
                             batchCapacity: Swift.min(configuration.microtaskBudget, 1024),
                             policy: .init(popsOnce: false, localSharesBudget: false, holdsInlineRuns: false))
        pollEvents = .allocate(capacity: pollEventsCapacity)
        let created = configuration.clock.nanoseconds()
        anchor = Locked(AnchorState(anchor: .zero, anchorNanoseconds: created))
        tickStartNanoseconds = Atomic(created)
        switch configuration.idleStrategy {
        case .park:
            fixedSpinBudget = 0
        case .spinThenPark(let maximum, let adaptive):
            let maxNs = Swift.max(0, Self.nanoseconds(maximum))
            fixedSpinBudget = adaptive ? 0 : maxNs
            if adaptive { adaptiveSpin = AdaptiveSpin(maximum: maxNs) }
        }
        if metricsEnabled { pendingLatencies.reserveCapacity(1024) }
        taskExecutor.bind(to: self)
    }

    deinit {
        // No thread can be using the loop: release every job still queued, then the C objects.
        discardQueued(runningExecutorJobs: false)
        if let poller { lk_poller_destroy(poller) }
        microtaskLane.queue.destroy()
        internalLane.queue.destroy()
        externalLane.queue.destroy()
        lk_gate_destroy(gate)
        lk_wake_destroy(wake)
        pollEvents.deallocate()
    }

    // MARK: State

    /// The loop's current state. Any thread; a snapshot.
    public var state: State {
        switch lk_wake_state_load(wake) {
        case LK_STATE_AWAKE: return .created
        case LK_STATE_RUNNING: return .running
        case LK_STATE_SLEEPING: return .sleeping
        case LK_STATE_TERMINATING: return .terminating
        default: return .terminated
        }
    }

    /// The poll backend in use while the loop runs (nil before `run()` and after termination). Any thread.
    public var backend: PollBackend? {
        let raw = runningBackend.load(ordering: .acquiring)
        return raw == 0 ? nil : PollBackend(lk_backend(rawValue: UInt32(raw)))
    }

    // MARK: Running

    /// Runs the loop on the calling thread until it terminates.
    ///
    /// - Throws: `EventLoopError.reentrantRun` when the calling thread is already running a loop (for
    ///   example from inside a task); `.alreadyRunning` when another thread runs this loop;
    ///   `.terminated` when the loop has terminated; `.backendUnavailable` when the configured poll
    ///   backend cannot be set up (checked first; the loop is left as it was and `run()` may be tried again).
    public func run() throws {
        try run(whenRunning: nil)
    }

    func run(whenRunning: (() -> Void)?) throws {
        guard lk_thread_loop_id() == 0 else { throw EventLoopError.reentrantRun }
        // The poller first (on this thread: io_uring rings are single-issuer), so that a failure leaves the
        // loop unclaimed: a shutdown() racing this run() can then still claim it and finish it.
        var p: OpaquePointer?
        let rc = lk_poller_create(&p, configuration.backend.cValue, lk_wake_fd(wake))
        guard rc == 0 else { throw EventLoopError.backendUnavailable(configuration.backend, errno: -rc) }
        guard lifecycle.claim() else {
            lk_poller_destroy(p)
            throw state == .terminated ? EventLoopError.terminated : EventLoopError.alreadyRunning
        }
        poller = p
        runningBackend.store(Int(lk_poller_backend(p).rawValue), ordering: .releasing)
        let previous = lk_thread_set_loop_id(id)
        defer { lk_thread_set_loop_id(previous) }
        // Fails only when shutdown() or close() came first: the state is then TERMINATING and the loop
        // goes straight to its final drain.
        _ = lk_wake_state_cas(wake, LK_STATE_AWAKE, LK_STATE_RUNNING)
        whenRunning?()
        while lk_wake_state_load(wake) != LK_STATE_TERMINATING {
            tick()
        }
        finish()
    }

    /// Starts the loop on a new thread named "LoopKit-<id>" and returns once it is running.
    ///
    /// - Throws: whatever `run()` throws on that thread (`.alreadyRunning`, `.terminated`,
    ///   `.backendUnavailable`), or `.system` if the thread cannot be created.
    public func start() throws {
        let failure = Locked<EventLoopError?>(nil)
        let ready = Latch() // opened when the loop runs, or when run() fails
        try spawnThread(name: "LoopKit-\(id)") { [self] in
            do {
                try run(whenRunning: { ready.open() })
            } catch {
                failure.withLock { $0 = error as? EventLoopError ?? .system(operation: "run", errno: 0) }
                ready.open()
            }
        }
        ready.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    // MARK: Thread affinity

    /// True when called on this loop's thread. A thread-local load and a compare (a few ns).
    public var inEventLoop: Bool { lk_thread_loop_id() == id }

    /// Stops the process unless called on this loop's thread.
    public func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inEventLoop, "EventLoop.preconditionInEventLoop: called off the loop thread", file: file, line: line)
    }

    /// `api`: the full name of the API, as a user calls it (`EventLoop.register(fd:events:ownership:handler:)`,
    /// `TCPConnection.read`).
    func preconditionInEventLoop(_ api: String) {
        precondition(inEventLoop, "\(api) must be called on the loop thread (from inside a task); from another thread, submit a task that calls it")
    }

    // MARK: Helpers

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        if seconds >= Int64.max / 1_000_000_000 { return Int64.max }
        if seconds <= Int64.min / 1_000_000_000 { return Int64.min }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    static func error(_ rc: Int32, _ operation: String) -> EventLoopError {
        rc == -ENOMEM ? .outOfMemory : .system(operation: operation, errno: -rc)
    }

    static func writeToStandardError(_ message: String) {
        var m = message
        m.withUTF8 { buffer in _ = Glibc.write(2, buffer.baseAddress, buffer.count) }
    }
}

/// The tick anchor: the loop's reference time and the monotonic instant it was set at.
struct AnchorState {
    var anchor: Duration
    var anchorNanoseconds: Int64
}

struct TimerState {
    var heap = TimerHeap()
    var nextID: UInt64 = 0
}

extension lk_task {
    /// The internal lane's end-of-snapshot marker: a null function word, which no job has.
    static var marker: lk_task { lk_task(words: (0, 1, 0)) }

    var isMarker: Bool { words.0 == 0 && words.1 == 1 }

    /// The kind of the executor job this task carries, nil for a closure (or the marker).
    @inline(__always)
    var executorJobKind: ExecutorJobKind? { words.0 &- 1 < 2 ? ExecutorJobKind(rawValue: words.0) : nil }

    var executorJob: UnownedJob { unsafeBitCast(words.1, to: UnownedJob.self) }
}
