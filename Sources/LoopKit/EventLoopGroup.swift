internal import CLoopCore
internal import LoopKitConcurrencyHelpers
import Glibc
import Synchronization

/// A fixed set of event loops, each running on a thread of its own, for spreading work over CPUs.
///
/// ```swift
/// let group = try EventLoopGroup()            // one loop per CPU this thread may run on
/// try group.next().submit { print("on some loop") }
/// await group.shutdown()                     // drains every loop
/// ```
///
/// `next()` hands out the loops round robin; `any()` prefers the loop the caller is already on. The group is
/// a `RandomAccessCollection` of its loops, in creation order (`group[0]` … `group[group.count - 1]`).
///
/// Threading: every method is safe from any thread.
///
/// Life cycle: the loops run from `init` until `shutdown()` or `close()`. A group must be shut down: one
/// that is simply dropped leaves its loops running, since each loop's thread keeps its loop alive. After
/// shutdown `next()`, `any()` and iteration still return the (terminated) loops, and every submission to them
/// throws `EventLoopError.terminated`.
public final class EventLoopGroup: Sendable {
    /// How a group is built.
    public struct Configuration: Sendable {
        /// How many loops the group runs. Must be positive. Default: the number of CPUs the thread that
        /// creates the configuration may run on (`EventLoopGroup.allowedCPUs()`).
        public var loopCount: Int
        /// Where the loops' threads may run. Default: `.none`.
        public var cpuPinning: CPUPinning = .none
        /// The configuration every loop starts from.
        public var loop = EventLoop.Configuration()
        /// Adjusts the configuration of loop `index` (0 ..< `loopCount`) before it is created; for settings
        /// that differ per loop, such as an error handler that names its loop. Called once per loop, on the
        /// thread that creates the group. Default: no change.
        public var configureLoop: @Sendable (_ index: Int, _ configuration: inout EventLoop.Configuration) -> Void = { _, _ in }

        /// A configuration with one loop per CPU the calling thread may run on, and the defaults above.
        public init() {
            loopCount = EventLoopGroup.allowedCPUs().count
        }

        /// A configuration with `loopCount` loops and the defaults above.
        public init(loopCount: Int) {
            self.loopCount = loopCount
        }
    }

    /// Where a group's loop threads may run.
    public enum CPUPinning: Sendable, Equatable {
        /// Anywhere the process may run: the scheduler places and moves the threads.
        case none
        /// Loop `i` runs only on the `i`-th CPU of `EventLoopGroup.allowedCPUs()` (as read when the group is
        /// created), wrapping around when there are more loops than CPUs.
        case allowedCPUs
        /// Loop `i` runs only on CPU `cpus[i % cpus.count]`. The list must not be empty and must hold no
        /// negative number.
        case cpus([Int])
    }

    private let loops: [EventLoop]
    /// The next `next()` ticket. Relaxed: the tickets only need to be distinct, which the atomic increment
    /// alone guarantees; the loops they index were published by `init`, before the group was shared.
    private let nextTicket = Atomic<UInt>(0)

    /// Creates the loops, starts each on a thread of its own, pins the threads as configured, and returns
    /// once every loop runs.
    ///
    /// Pinning happens on the loop's own thread (`pthread_setaffinity_np`), in the first task the loop runs,
    /// so no other task of the loop runs before its thread is pinned.
    ///
    /// - Throws: `EventLoopError.outOfMemory` or `.system` when a loop cannot be created or its thread
    ///   started; `.backendUnavailable` when the configured poll backend cannot be set up;
    ///   `EventLoopGroupError.cpuPinningFailed` when a thread cannot be pinned (for example to a CPU that does
    ///   not exist or that the process may not use). The loops already started are closed before the error is
    ///   thrown.
    public init(configuration: Configuration = Configuration()) throws {
        precondition(configuration.loopCount > 0, "EventLoopGroup.Configuration.loopCount must be positive (it is \(configuration.loopCount))")
        let cpus: [Int]?
        switch configuration.cpuPinning {
        case .none:
            cpus = nil
        case .allowedCPUs:
            cpus = Self.allowedCPUs()
        case .cpus(let list):
            precondition(!list.isEmpty, "EventLoopGroup.CPUPinning.cpus needs at least one CPU")
            precondition(list.allSatisfy { $0 >= 0 }, "EventLoopGroup.CPUPinning.cpus holds a negative CPU number: \(list)")
            cpus = list
        }
        var loops: [EventLoop] = []
        loops.reserveCapacity(configuration.loopCount)
        do {
            for index in 0..<configuration.loopCount {
                var loopConfiguration = configuration.loop
                configuration.configureLoop(index, &loopConfiguration)
                let loop = try EventLoop(configuration: loopConfiguration)
                loops.append(loop) // before start(): a loop whose start fails is still closed below
                try loop.start()
                if let cpus {
                    try Self.pin(loop, index: index, toCPU: cpus[index % cpus.count])
                }
            }
        } catch {
            for loop in loops { loop.close() }
            throw error
        }
        self.loops = loops
    }

    /// A group of `loopCount` loops, each built with `loopConfiguration`, unpinned.
    ///
    /// - Throws: as `init(configuration:)`.
    public convenience init(loopCount: Int, loopConfiguration: EventLoop.Configuration = EventLoop.Configuration()) throws {
        var configuration = Configuration(loopCount: loopCount)
        configuration.loop = loopConfiguration
        try self.init(configuration: configuration)
    }

    /// Runs, on `loop`'s thread, a task that pins that thread to `cpu`, and waits for it.
    private static func pin(_ loop: EventLoop, index: Int, toCPU cpu: Int) throws {
        let result = Locked<Int32>(0)
        let done = Latch()
        try loop.submit {
            let rc = CPUAffinity.pinCurrentThread(toCPU: cpu)
            result.withLock { $0 = rc }
            done.open()
        }
        done.wait()
        let rc = result.withLock { $0 }
        if rc != 0 { throw EventLoopGroupError.cpuPinningFailed(loopIndex: index, cpu: cpu, errno: rc) }
    }

    // MARK: Choosing a loop

    /// The next loop, round robin: successive calls return `self[0]`, `self[1]`, … `self[count - 1]`,
    /// `self[0]`, …, whichever threads call. Any thread; lock-free (one atomic increment).
    public func next() -> EventLoop {
        let ticket = nextTicket.wrappingAdd(1, ordering: .relaxed).oldValue
        return loops[Int(ticket % UInt(loops.count))]
    }

    /// The loop whose thread calls this, when that is one of this group's loops; `next()` otherwise. Any
    /// thread. Use it to keep related work on the caller's loop (no cross-thread hand-off, no wakeup).
    public func any() -> EventLoop {
        // One thread-local load decides for every thread that runs no loop at all.
        if lk_thread_loop_id() != 0 {
            for loop in loops where loop.inEventLoop { return loop }
        }
        return next()
    }

    /// True when called on the thread of one of this group's loops. Any thread.
    public var isInEventLoop: Bool {
        lk_thread_loop_id() != 0 && loops.contains { $0.inEventLoop }
    }

    // MARK: Shutdown

    /// Graceful shutdown of every loop: each runs every task it accepted, then terminates (see
    /// `EventLoop.shutdown()`). The loops drain concurrently; returns once all have terminated.
    ///
    /// Idempotent: a second call, or one concurrent with the first, returns once every loop has terminated.
    ///
    /// Actors pinned to a loop of the group, and tasks that prefer its task executor, have their queued jobs
    /// run by the drain (by `close()` too), so an awaiting task does not hang. The loops terminate
    /// independently: work one loop sends to another while the group shuts down may find that loop
    /// terminated. A `submit` then throws `EventLoopError.terminated`; an actor's job enqueued on a
    /// terminated loop stops the process (see `EventLoop`'s executor). Stop traffic between the loops before
    /// shutting the group down.
    ///
    /// Not on one of the group's loop threads (a precondition): a loop cannot wait for its own termination.
    /// That includes a task that prefers one of the loops' task executors, whose nonisolated code, this
    /// method's included, runs on that loop's thread.
    public func shutdown() async {
        await terminate(close: false, api: "shutdown()")
    }

    /// Graceful shutdown, blocking the calling thread until every loop has terminated. See `shutdown()`.
    ///
    /// Not on one of the group's loop threads (a precondition).
    @available(*, noasync, message: "blocks the calling thread until every loop has drained; use `await shutdown()`")
    public func shutdown() {
        terminateBlocking(close: false, api: "shutdown()")
    }

    /// Immediate shutdown of every loop: each finishes the task it is running, releases its queued tasks and
    /// timers without running them, and terminates (see `EventLoop.close()`). Returns once all have
    /// terminated. Idempotent, like `shutdown()`; a close during a graceful shutdown cuts its drains short.
    ///
    /// Not on one of the group's loop threads (a precondition).
    public func close() async {
        await terminate(close: true, api: "close()")
    }

    /// Immediate shutdown, blocking the calling thread until every loop has terminated. See `close()`.
    ///
    /// Not on one of the group's loop threads (a precondition).
    @available(*, noasync, message: "blocks the calling thread until every loop has terminated; use `await close()`")
    public func close() {
        terminateBlocking(close: true, api: "close()")
    }

    /// Asks every loop to terminate at once, so that they drain (or discard) concurrently, then waits for
    /// each (a loop's own shutdown or close, already requested, only waits then).
    private func terminate(close: Bool, api: String) async {
        requestTermination(close: close, api: api)
        await withTaskGroup(of: Void.self) { waits in
            for loop in loops {
                waits.addTask { close ? await loop.close() : await loop.shutdown() }
            }
        }
    }

    /// `terminate(close:api:)`, blocking.
    private func terminateBlocking(close: Bool, api: String) {
        requestTermination(close: close, api: api)
        for loop in loops { close ? loop.close() : loop.shutdown() }
    }

    private func requestTermination(close: Bool, api: String) {
        precondition(!isInEventLoop, "EventLoopGroup.\(api) called on one of the group's loop threads: a loop cannot wait for its own termination; call it from another thread")
        for loop in loops { loop.requestTermination(close: close) }
    }
}

extension EventLoopGroup: RandomAccessCollection {
    /// 0.
    public var startIndex: Int { 0 }
    /// The number of loops.
    public var endIndex: Int { loops.count }
    /// The loop at `index` (0 ..< `count`), in creation order.
    public subscript(index: Int) -> EventLoop { loops[index] }
}

/// Errors `EventLoopGroup`'s API throws (besides the `EventLoopError`s of the loops it creates).
public enum EventLoopGroupError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The thread of loop `loopIndex` could not be pinned to `cpu`: `pthread_setaffinity_np` failed with
    /// `errno` (EINVAL: the CPU does not exist, is offline, or is outside the process's cpuset).
    case cpuPinningFailed(loopIndex: Int, cpu: Int, errno: Int32)

    /// A one-line account of the error.
    public var description: String {
        switch self {
        case .cpuPinningFailed(let index, let cpu, let e):
            return "cannot pin the thread of loop \(index) to CPU \(cpu): \(String(cString: strerror(e))) (errno \(e))"
        }
    }
}
