import CoreMetrics
import LoopKit
import Synchronization

/// Pushes event-loop metrics to swift-metrics, periodically, from a repeating timer on each loop.
///
/// Each loop must have been created with `EventLoop.Configuration.metricsEnabled`; a loop without it counts
/// nothing (its tasks pay no metrics cost at all) and has nothing to report. Every `interval` a timer on the
/// loop reads `EventLoop.metrics()` and records, with the given dimensions (plus `loopkit.loop`: the loop's
/// index, for a group's loops):
///
/// | label | metric | dimensions | value |
/// |---|---|---|---|
/// | `loopkit_tasks_run` | `Counter` | `lane`: `external`, `internal`, `microtask`, `timer` | tasks run |
/// | `loopkit_io_events` | `Counter` | | fd readiness events dispatched |
/// | `loopkit_ticks` | `Counter` | | ticks run |
/// | `loopkit_queue_depth` | `Gauge` | `lane`: `external`, `internal`, `microtask` | tasks waiting |
/// | `loopkit_wake_requests` | `Counter` | | producers that asked to wake the sleeping loop |
/// | `loopkit_wake_syscalls` | `Counter` | | eventfd writes those requests cost |
/// | `loopkit_task_latency` | `Timer` | | submit-to-start latency, ns, of tasks from other threads |
///
/// Counters grow by what happened since the previous push. The loop's latency histogram keeps each value
/// within 1.6 %; the timer receives each bucket's upper bound (at most the largest latency) once per task,
/// or, when more than `maximumLatencySamples` tasks ran in the interval, a proportional sample of that many
/// values (the same distribution, fewer values: `loopkit_tasks_run` has the count). The reporter's own
/// timer shows in the `timer` lane.
///
/// Reporting stops with `stop()` or when the loop terminates (its timers are cancelled then; the part of the
/// last interval after the previous push is not reported).
public final class EventLoopMetricsReporter: Sendable {
    private let reports: [LoopReport]

    /// Starts reporting `loop`'s metrics every `interval` (positive), recording them through `factory`.
    ///
    /// - Throws: `EventLoopError.terminated` if the loop has begun terminating (it takes no more timers).
    public init(loop: EventLoop, interval: Duration = .seconds(10), dimensions: [(String, String)] = [],
                maximumLatencySamples: Int = 1024, factory: any MetricsFactory = MetricsSystem.factory) throws {
        reports = [try LoopReport(loop: loop, interval: interval, dimensions: dimensions,
                                  maximumLatencySamples: maximumLatencySamples, factory: factory)]
    }

    /// Starts reporting the metrics of every loop of `group` every `interval` (positive), each with the
    /// dimension `loopkit.loop`: its index in the group.
    ///
    /// - Throws: `EventLoopError.terminated` if a loop has begun terminating; the reports already started are
    ///   stopped then.
    public init(group: EventLoopGroup, interval: Duration = .seconds(10), dimensions: [(String, String)] = [],
                maximumLatencySamples: Int = 1024, factory: any MetricsFactory = MetricsSystem.factory) throws {
        var reports: [LoopReport] = []
        do {
            for (index, loop) in group.enumerated() {
                let tagged = dimensions + [(EventLoopGroup.loopIndexMetadataKey, "\(index)")]
                reports.append(try LoopReport(loop: loop, interval: interval, dimensions: tagged,
                                              maximumLatencySamples: maximumLatencySamples, factory: factory))
            }
        } catch {
            for report in reports { report.stop() }
            throw error
        }
        self.reports = reports
    }

    /// Stops reporting. No push starts after this returns (one already running on a loop completes). Any
    /// thread; idempotent. Each loop's pending timer is released when it next fires, or when the loop
    /// terminates.
    public func stop() {
        for report in reports { report.stop() }
    }
}

/// One loop's report: its metric handles, and the snapshot the previous push took its differences from.
///
/// `@unchecked Sendable`: `previous` and `previousLatency` are read and written only by the loop's timer
/// tasks, which run one at a time on the loop thread; the rest is immutable or atomic, and swift-metrics'
/// handles may be used from any thread.
private final class LoopReport: @unchecked Sendable {
    let loop: EventLoop
    let interval: Duration
    let maximumLatencySamples: Int
    /// Set by stop() (releasing); read by each timer task before it pushes (acquiring).
    let stopped = Atomic<Bool>(false)

    let tasksRun: [Counter] // external, internal, microtask, timer
    let ioEvents: Counter
    let ticks: Counter
    let queueDepth: [Gauge] // external, internal, microtask
    let wakeRequests: Counter
    let wakeSyscalls: Counter
    let taskLatency: CoreMetrics.Timer

    var previous = EventLoop.Metrics()
    var previousLatency: [UInt64: UInt64] = [:] // bucket upper bound -> count

    init(loop: EventLoop, interval: Duration, dimensions: [(String, String)], maximumLatencySamples: Int,
         factory: any MetricsFactory) throws {
        precondition(loop.configuration.metricsEnabled,
                     "EventLoopMetricsReporter: the loop was created without EventLoop.Configuration.metricsEnabled, so it has no metrics to report")
        precondition(interval > .zero, "EventLoopMetricsReporter: the interval must be positive (it is \(interval))")
        precondition(maximumLatencySamples > 0, "EventLoopMetricsReporter: maximumLatencySamples must be positive")
        self.loop = loop
        self.interval = interval
        self.maximumLatencySamples = maximumLatencySamples
        func lane(_ name: String) -> [(String, String)] { dimensions + [("lane", name)] }
        tasksRun = ["external", "internal", "microtask", "timer"].map {
            Counter(label: "loopkit_tasks_run", dimensions: lane($0), factory: factory)
        }
        ioEvents = Counter(label: "loopkit_io_events", dimensions: dimensions, factory: factory)
        ticks = Counter(label: "loopkit_ticks", dimensions: dimensions, factory: factory)
        queueDepth = ["external", "internal", "microtask"].map {
            Gauge(label: "loopkit_queue_depth", dimensions: lane($0), factory: factory)
        }
        wakeRequests = Counter(label: "loopkit_wake_requests", dimensions: dimensions, factory: factory)
        wakeSyscalls = Counter(label: "loopkit_wake_syscalls", dimensions: dimensions, factory: factory)
        taskLatency = CoreMetrics.Timer(label: "loopkit_task_latency", dimensions: dimensions, factory: factory)
        try scheduleNextPush()
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
    }

    private func scheduleNextPush() throws {
        try loop.scheduleTimer(after: interval) { [self] in
            guard !stopped.load(ordering: .acquiring) else { return } // released: no next timer
            push()
            // Throws only once the loop has begun terminating, which ends the reporting.
            try? scheduleNextPush()
        }
    }

    /// Loop thread: records what changed since the previous push.
    private func push() {
        guard let now = loop.metrics() else { return }
        let runs = [now.externalTasksRun &- previous.externalTasksRun, now.internalTasksRun &- previous.internalTasksRun,
                    now.microtasksRun &- previous.microtasksRun, now.timersFired &- previous.timersFired]
        for (counter, delta) in zip(tasksRun, runs) where delta > 0 { counter.increment(by: delta) }
        increment(ioEvents, by: now.ioEventsDispatched &- previous.ioEventsDispatched)
        increment(ticks, by: now.ticks &- previous.ticks)
        increment(wakeRequests, by: now.wakeRequests &- previous.wakeRequests)
        increment(wakeSyscalls, by: now.wakeSyscalls &- previous.wakeSyscalls)
        for (gauge, depth) in zip(queueDepth, [now.externalQueueDepth, now.internalQueueDepth, now.microtaskQueueDepth]) {
            gauge.record(depth)
        }
        recordLatencies(now.taskLatency)
        previous = now
    }

    private func increment(_ counter: Counter, by delta: UInt64) {
        if delta > 0 { counter.increment(by: delta) }
    }

    /// Records the values the histogram gained since the previous push: all of them, or a proportional
    /// sample of `maximumLatencySamples` (by cumulative count, so the sample's quantiles are the
    /// distribution's, within one sample).
    private func recordLatencies(_ histogram: LatencyHistogram) {
        let buckets = histogram.nonEmptyBuckets
        var gained: [(upperBound: UInt64, count: UInt64)] = []
        var total: UInt64 = 0
        for bucket in buckets {
            let count = bucket.count &- (previousLatency[bucket.upperBound] ?? 0)
            if count > 0 {
                gained.append((bucket.upperBound, count))
                total &+= count
            }
            previousLatency[bucket.upperBound] = bucket.count
        }
        guard total > 0 else { return }
        let samples = UInt64(maximumLatencySamples)
        var cumulative: UInt64 = 0
        var recorded: UInt64 = 0
        for (upperBound, count) in gained {
            cumulative &+= count
            // Samples owed up to this bucket: all of them, or the rounded share of the sample.
            let owed = total <= samples ? cumulative
                : UInt64((Double(cumulative) * Double(samples) / Double(total)).rounded())
            // A bucket's bound, but never above the largest value recorded (exact in the histogram).
            let value = Int64(clamping: Swift.min(upperBound, histogram.max))
            while recorded < owed {
                taskLatency.recordNanoseconds(value)
                recorded += 1
            }
        }
    }
}
