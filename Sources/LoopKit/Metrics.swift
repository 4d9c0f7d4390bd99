internal import CLoopCore
import Synchronization

extension EventLoop {
    /// Counters and latencies of a loop with `Configuration.metricsEnabled`. A snapshot, published by the
    /// loop at the end of every tick.
    public struct Metrics: Sendable, Equatable {
        /// Ticks run.
        public var ticks: UInt64 = 0
        /// External tasks run (`submit`, `perform`, executor jobs).
        public var externalTasksRun: UInt64 = 0
        /// Internal tasks run (`submitInternal`), inline ones included.
        public var internalTasksRun: UInt64 = 0
        /// Microtasks run (`queueMicrotask`).
        public var microtasksRun: UInt64 = 0
        /// Timers that fired.
        public var timersFired: UInt64 = 0
        /// Readiness events handed to fd handlers.
        public var ioEventsDispatched: UInt64 = 0
        /// External tasks submitted from other threads and not yet run.
        public var externalQueueDepth: UInt64 = 0
        /// Internal tasks submitted from other threads and not yet run.
        public var internalQueueDepth: UInt64 = 0
        /// Microtasks waiting.
        public var microtaskQueueDepth: UInt64 = 0
        /// Producers that found the loop asleep and asked for a wakeup.
        public var wakeRequests: UInt64 = 0
        /// The eventfd writes those requests cost (at most one per sleep: the requests are deduplicated).
        public var wakeSyscalls: UInt64 = 0
        /// Submit-to-start latency of tasks submitted from other threads (external and internal lanes), ns.
        public var taskLatency = LatencyHistogram()

        /// Metrics with every count zero.
        public init() {}
    }

    /// Producers that found the loop asleep and asked for a wakeup, and the eventfd writes that cost.
    /// Counted whether or not metrics are enabled (the count is taken on the wake path only). Any thread.
    public var wakeStatistics: (requests: UInt64, syscalls: UInt64) {
        var requests: UInt64 = 0, syscalls: UInt64 = 0
        lk_wake_counters(wake, &requests, &syscalls)
        return (requests, syscalls)
    }

    /// The latest metrics, or nil when the loop was created without `metricsEnabled`. Any thread.
    public func metrics() -> Metrics? {
        guard metricsEnabled else { return nil }
        var snapshot = metricsStore.withLock { $0 }
        (snapshot.wakeRequests, snapshot.wakeSyscalls) = wakeStatistics
        return snapshot
    }

    /// Loop thread, metrics on: the queueing latency of a task from another thread, submitted at `timestamp`.
    @inline(__always)
    func recordLatency(since timestamp: Int64) {
        pendingLatencies.append(UInt64(Swift.max(0, lk_clock_now_ns() - timestamp)))
    }

    /// Loop thread, metrics on: publishes the counters and the latencies recorded since the last call.
    func publishMetrics() {
        let external = foreignExternalSubmitted.load(ordering: .relaxed)
        let internalSubmitted = foreignInternalSubmitted.load(ordering: .relaxed)
        let ringDepth = UInt64(lk_ring_length(microtaskRing))
        counters.externalTasksRun = externalLane.tasksRun
        counters.internalTasksRun = internalLane.tasksRun
        counters.microtasksRun = microtaskLane.tasksRun
        let externalRun = externalLane.foreignTasksRun
        let internalRun = internalLane.foreignTasksRun
        metricsStore.withLock { store in
            let latency = store.taskLatency
            store = counters
            store.taskLatency = latency
            for value in pendingLatencies { store.taskLatency.record(value) }
            store.externalQueueDepth = external &- Swift.min(external, externalRun)
            store.internalQueueDepth = internalSubmitted &- Swift.min(internalSubmitted, internalRun)
            store.microtaskQueueDepth = ringDepth
        }
        pendingLatencies.removeAll(keepingCapacity: true)
    }
}
