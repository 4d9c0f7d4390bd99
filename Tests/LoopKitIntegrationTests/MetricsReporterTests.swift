import CoreMetrics
import Glibc
import LoopKit
import LoopKitIntegration
import MetricsTestKit
import Testing
import TestSupport

/// EventLoopMetricsReporter, observed through swift-metrics' TestMetrics, with the loop's clock stepped by the
/// test so that each push happens on cue.
@Suite struct MetricsReporterTests {
    static let interval = Duration.seconds(1)

    static func loop(metrics: Bool = true) throws -> (EventLoop, SteppedClock) {
        let clock = SteppedClock()
        var configuration = EventLoop.Configuration()
        configuration.metricsEnabled = metrics
        configuration.idleStrategy = .park
        configuration.clock = clock
        let loop = try EventLoop(configuration: configuration)
        try loop.start()
        return (loop, clock)
    }

    /// Runs `submit` on the loop's queues, waits for the tasks to run, then lets one push happen.
    static func pushAfter(_ loop: EventLoop, _ clock: SteppedClock, _ submit: () throws -> Void) async throws {
        try submit()
        try await loop.settle()
        clock.step(interval)
        try await loop.settle()
    }

    static func total(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        (try? metrics.expectCounter(label, dimensions).totalValue) ?? 0
    }

    /// Each push reports what changed since the previous one: tasks by lane, microtasks, ticks and the other
    /// counters, under the given dimensions.
    @Test func pushesWhatChangedSinceThePreviousPush() async throws {
        let metrics = TestMetrics()
        let (loop, clock) = try Self.loop()
        let reporter = try EventLoopMetricsReporter(loop: loop, interval: Self.interval, dimensions: [("app", "t")], factory: metrics)
        let dims = [("app", "t")]
        try await Self.pushAfter(loop, clock) {
            for _ in 0..<100 { try loop.submit {} }
            for _ in 0..<10 { try loop.submitInternal {} }
            try loop.queueMicrotask {}
        }
        #expect(Self.total(metrics, "loopkit_tasks_run", dims + [("lane", "external")]) >= 100)
        #expect(Self.total(metrics, "loopkit_tasks_run", dims + [("lane", "internal")]) == 10)
        #expect(Self.total(metrics, "loopkit_tasks_run", dims + [("lane", "microtask")]) == 1)
        #expect(Self.total(metrics, "loopkit_ticks", dims) > 0)
        let latency = try metrics.expectTimer("loopkit_task_latency", dims)
        let firstValues = latency.values.count
        #expect(firstValues >= 110, "one latency per task from another thread")
        #expect(latency.values.allSatisfy { $0 >= 0 })
        // What was queued when the loop last published: at most the two tasks settle() submits.
        let depth = try metrics.expectGauge("loopkit_queue_depth", dims + [("lane", "external")]).lastValue
        #expect(depth != nil && depth! <= 2)
        #expect(try metrics.expectGauge("loopkit_queue_depth", dims + [("lane", "internal")]).lastValue == 0)
        let (requests, syscalls) = loop.wakeStatistics
        #expect(Self.total(metrics, "loopkit_wake_syscalls", dims) <= Int64(syscalls))
        #expect(Self.total(metrics, "loopkit_wake_syscalls", dims) <= Self.total(metrics, "loopkit_wake_requests", dims))
        #expect(Self.total(metrics, "loopkit_wake_requests", dims) <= Int64(requests))

        // The second push adds only the new tasks: counters grow by differences, not by running totals.
        let external = Self.total(metrics, "loopkit_tasks_run", dims + [("lane", "external")])
        try await Self.pushAfter(loop, clock) {
            for _ in 0..<50 { try loop.submit {} }
        }
        let m = loop.metrics()!
        let pushedExternal = Self.total(metrics, "loopkit_tasks_run", dims + [("lane", "external")])
        #expect(pushedExternal >= external + 50)
        #expect(pushedExternal <= Int64(m.externalTasksRun), "never more than the loop counted")
        #expect(latency.values.count >= firstValues + 50)
        #expect(latency.values.count <= Int(m.taskLatency.count), "each latency recorded once")
        reporter.stop()
        await loop.shutdown()
    }

    /// More tasks in an interval than the sample allows: the timer gets exactly the sample, spread like the
    /// loop's own histogram.
    @Test func manyLatenciesArePushedAsAProportionalSample() async throws {
        let metrics = TestMetrics()
        let (loop, clock) = try Self.loop()
        let reporter = try EventLoopMetricsReporter(loop: loop, interval: Self.interval, maximumLatencySamples: 64, factory: metrics)
        try await Self.pushAfter(loop, clock) {
            for _ in 0..<5_000 { try loop.submit {} }
        }
        let values = try metrics.expectTimer("loopkit_task_latency").values.sorted()
        #expect(values.count == 64)
        let histogram = loop.metrics()!.taskLatency
        let median = Int64(histogram.value(atPercentile: 50))
        let sampledMedian = values[values.count / 2]
        // Both are bucket bounds of the same histogram; the sample's median lies within a few buckets.
        #expect(Double(sampledMedian) <= Double(median) * 1.5 + 256 && Double(sampledMedian) >= Double(median) / 1.5 - 256,
                "sampled median \(sampledMedian) ns vs the histogram's \(median) ns")
        #expect(values.last! <= Int64(histogram.value(atPercentile: 100)) + Int64(histogram.value(atPercentile: 100)) / 32)
        reporter.stop()
        await loop.shutdown()
    }

    /// stop() ends the pushes and cancels the reporter's timer; calling it twice is harmless.
    @Test func stopEndsThePushesAndReleasesTheTimer() async throws {
        let metrics = TestMetrics()
        let (loop, clock) = try Self.loop()
        let reporter = try EventLoopMetricsReporter(loop: loop, interval: Self.interval, factory: metrics)
        #expect(loop.pendingTimerCount == 1)
        try await Self.pushAfter(loop, clock) { try loop.submit {} }
        let ticksPushed = try metrics.expectCounter("loopkit_ticks").values.count
        #expect(ticksPushed == 1)
        #expect(loop.pendingTimerCount == 1, "the next push is scheduled")
        reporter.stop()
        reporter.stop()
        try await Self.pushAfter(loop, clock) { try loop.submit {} }
        #expect(try metrics.expectCounter("loopkit_ticks").values.count == ticksPushed, "no push after stop()")
        #expect(loop.pendingTimerCount == 0, "the stopped reporter schedules no further timer")
        await loop.shutdown()
    }

    /// A reporter over a group reports each loop's figures under its loop index.
    @Test func aGroupsLoopsReportWithTheirIndex() async throws {
        let metrics = TestMetrics()
        let clock = SteppedClock()
        var configuration = EventLoopGroup.Configuration(loopCount: 2)
        configuration.loop.metricsEnabled = true
        configuration.loop.idleStrategy = .park
        configuration.loop.clock = clock
        let group = try EventLoopGroup(configuration: configuration)
        let reporter = try EventLoopMetricsReporter(group: group, interval: Self.interval, factory: metrics)
        for (index, loop) in group.enumerated() {
            for _ in 0..<(10 * (index + 1)) { try loop.submit {} }
            try await loop.settle()
        }
        clock.step(Self.interval)
        for loop in group { try await loop.settle() }
        for index in 0..<2 {
            let dims = [(EventLoopGroup.loopIndexMetadataKey, "\(index)")]
            #expect(Self.total(metrics, "loopkit_tasks_run", dims + [("lane", "external")]) >= Int64(10 * (index + 1)))
            #expect(try metrics.expectTimer("loopkit_task_latency", dims).values.count >= 10 * (index + 1))
        }
        reporter.stop()
        await group.shutdown()
    }

    /// A reporter on a loop whose metrics are disabled stops the process (it would report nothing), checked in a
    /// child process.
    @Test func reportingOnALoopWithoutMetricsStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            _ = try? EventLoopMetricsReporter(loop: loop, factory: TestMetrics())
            exit(0) // reached only if the reporter accepted a loop that counts nothing
        }
    }

    /// Creating a reporter on a terminated loop throws `.terminated`.
    @Test func aTerminatingLoopTakesNoReporter() async throws {
        let (loop, _) = try Self.loop()
        await loop.shutdown()
        #expect(throws: EventLoopError.terminated) {
            _ = try EventLoopMetricsReporter(loop: loop, factory: TestMetrics())
        }
    }
}
