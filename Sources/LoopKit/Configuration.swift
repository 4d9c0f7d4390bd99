internal import CLoopCore

/// The readiness-polling backend a loop uses.
public enum PollBackend: Sendable, Equatable, CustomStringConvertible {
    /// io_uring where a ring can be set up, epoll otherwise. The environment variable
    /// `LOOPKIT_BACKEND=epoll|io_uring|auto` overrides the configured choice.
    case auto
    /// epoll, level-triggered, on every Linux kernel.
    case epoll
    /// io_uring (liburing): one system call waits for I/O and wakeups. Needs kernel 5.11 or later and
    /// io_uring not disabled (`kernel.io_uring_disabled`) nor refused by seccomp; `run()` throws
    /// `EventLoopError.backendUnavailable` otherwise.
    case ioUring

    /// Whether a loop can run this backend on this machine, probed now: `.ioUring` where the kernel lets this
    /// process set up an io_uring ring (5.11 or later, not disabled by `kernel.io_uring_disabled`, not refused
    /// by seccomp or the memlock limit); `.epoll` wherever an epoll instance can be created; `.auto` wherever
    /// either can. For choosing a backend, or the backends to test or measure, before creating a loop.
    ///
    /// `LOOPKIT_BACKEND` does not change the answer (it changes which backend a loop asks for). Any thread;
    /// each read sets the backend up and tears it down again (tens of microseconds for io_uring), so keep the
    /// answer rather than asking in a hot path.
    public var isAvailable: Bool { lk_backend_probe(cValue) == 0 }

    /// "auto", "epoll" or "io_uring": the values `LOOPKIT_BACKEND` takes.
    public var description: String {
        switch self {
        case .auto: return "auto"
        case .epoll: return "epoll"
        case .ioUring: return "io_uring"
        }
    }

    var cValue: lk_backend {
        switch self {
        case .auto: return LK_BACKEND_AUTO
        case .epoll: return LK_BACKEND_EPOLL
        case .ioUring: return LK_BACKEND_IO_URING
        }
    }

    init(_ c: lk_backend) {
        switch c {
        case LK_BACKEND_EPOLL: self = .epoll
        case LK_BACKEND_IO_URING: self = .ioUring
        default: self = .auto
        }
    }
}

/// The queue that carries tasks submitted from other threads.
public enum IngressKind: Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// A single-producer queue per submitting thread, registered on its first submit: a submit copies the
    /// task and publishes it with one store and a fence on lines no other thread writes. The loop drains
    /// the queues that have work round robin; queues of threads that exit are drained, then reclaimed.
    case perProducer
    /// Vyukov's lock-free MPSC queue: one atomic exchange of a shared tail per submit.
    case lockFree
    /// A mutex-guarded queue of fixed-size chunks.
    case chunked

    /// "per-producer", "lock-free" or "chunked".
    public var description: String {
        switch self {
        case .perProducer: return "per-producer"
        case .lockFree: return "lock-free"
        case .chunked: return "chunked"
        }
    }

    var cValue: lk_ingress_kind {
        switch self {
        case .perProducer: return LK_INGRESS_PER_PRODUCER
        case .lockFree: return LK_INGRESS_LOCK_FREE
        case .chunked: return LK_INGRESS_CHUNKED
        }
    }
}

/// What an idle loop does before it blocks in the poller.
public enum IdleStrategy: Sendable, Equatable {
    /// Block in the poller as soon as there is no work. Lowest CPU use; a wakeup then costs a syscall on the
    /// producer's side and the kernel's wake-up latency (tens of microseconds on a VM).
    case park
    /// Keep polling the queues for up to `maximum` before blocking. The loop stays "running" while it
    /// spins, so producers skip the wake syscall and work is picked up in well under a microsecond.
    /// When `adaptive`, the loop spins only while spinning pays: while the gaps between idling and the
    /// next task are shorter than both `maximum` and the measured CPU cost of a park (a wake-up costs the
    /// loop thread several microseconds on a VM). Each longer gap halves the spin, down to none, and a
    /// short gap restores it, so a loop fed at a moderate rate parks (about the CPU of `.park`) while a
    /// loop fed back to back spins. An idle loop spins at most `maximum` per wakeup, then sleeps.
    case spinThenPark(maximum: Duration, adaptive: Bool)

    /// Spin-then-park with a 50 µs maximum, adaptive.
    public static let `default` = IdleStrategy.spinThenPark(maximum: .microseconds(50), adaptive: true)
}

/// A monotonic clock in nanoseconds. The loop computes every timer deadline and poll timeout from it;
/// tests inject a manual clock.
public protocol MonotonicClock: Sendable {
    /// Nanoseconds since an arbitrary fixed point; never decreases.
    func nanoseconds() -> Int64
}

/// `CLOCK_MONOTONIC`.
public struct SystemMonotonicClock: MonotonicClock {
    /// The system's monotonic clock.
    public init() {}
    /// Nanoseconds on `CLOCK_MONOTONIC` (through the vDSO: no system call).
    public func nanoseconds() -> Int64 { lk_clock_now_ns() }
}

extension EventLoop {
    /// How a loop is built. Every field has a default; the defaults suit a server.
    public struct Configuration: Sendable {
        /// The cross-thread task queue. Default: `.perProducer` (chosen by measurement: docs/design.md,
        /// "choosing the defaults").
        public var ingress: IngressKind = .perProducer
        /// The poll backend. Default: `.auto`.
        public var backend: PollBackend = .auto
        /// Most external tasks run per tick before the loop polls for I/O and runs timers again.
        /// Default 1024; the loop runs exactly this many when that many are queued.
        public var externalBatchBudget: Int = 1024
        /// Most microtasks run per drain; when more remain, the next poll does not block. Default 4096.
        public var microtaskBudget: Int = 4096
        /// Drain microtasks after every task instead of after every phase. Default false.
        public var strictMicrotaskOrdering: Bool = false
        /// What the loop does when it runs out of work. Default: `.default` (adaptive spin, then park).
        public var idleStrategy: IdleStrategy = .default
        /// Collect `EventLoop.Metrics`. Default false: then nothing is counted or timed.
        public var metricsEnabled: Bool = false
        /// Where errors go that no call can throw to its caller. Default: a line on standard error.
        ///
        /// It receives, on the thread noted:
        /// - errors thrown by tasks, microtasks and timers given as throwing closures (loop thread; `perform`
        ///   returns its task's error to its caller instead);
        /// - `EventLoopError.system(operation: "poll", ...)` when a poll fails (loop thread; the loop polls
        ///   again on its next tick);
        /// - `EventLoopError.system(operation: "wake", ...)` when waking a sleeping loop failed after retries
        ///   (the thread that submitted, scheduled a timer or shut the loop down; the work stays queued).
        ///
        /// It must not block. It should not submit to the loop on a `"wake"` error: that submit's own wakeup
        /// fails the same way and calls the handler again, recursively, for as long as the eventfd fails.
        public var errorHandler: @Sendable (any Error) -> Void = { error in
            EventLoop.writeToStandardError("LoopKit: \(error)\n")
        }
        /// The clock for timers and poll timeouts. Default: `CLOCK_MONOTONIC`.
        public var clock: any MonotonicClock = SystemMonotonicClock()
        /// How many receive buffers the loop's socket I/O (`TCPConnection`) has: a power of two, 1...32768.
        /// Every received chunk lives in one until its `IOBuffer` is released, so
        /// `readBufferCount * readBufferSize` bounds the memory that received data holds. Default 256.
        public var readBufferCount: Int = 256
        /// The size of each receive buffer (see `readBufferCount`), in bytes. Default 16 KiB.
        public var readBufferSize: Int = 16 * 1024
        /// io_uring: receive through a kernel provided-buffer ring (multishot receives) where the kernel
        /// supports it. False forces single-shot receives into the same buffers, the path kernels without
        /// buffer rings take. Default true. (epoll never uses a ring.)
        public var usesBufferRing: Bool = true

        /// A configuration with every default above.
        public init() {}
    }
}
