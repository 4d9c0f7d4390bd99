import Histogram
import LoopKitConcurrencyHelpers
import Synchronization

/// LoopKit only: a saturating producer against the loop's external batch budget, with a probe on the
/// internal lane measuring how long other work waits behind a tick. The entrant is LoopKit's default
/// configuration with the case's budget (the budget is the workload's parameter, not part of the name).
struct BatchBudget: Workload {
    let info = WorkloadInfo(
        name: "BatchBudget",
        about: "A saturating producer against LoopKit's external batch budget, with a probe on the internal lane.",
        metric: "ns per task", fields: Field.latency + [.probes], latency: true,
        sweep: Sweep(parameter: "budget", label: "external batch budget", figures: ["ns_per_op", Field.p99.rawValue]))

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let tasks: Int
        switch plan.suite {
        case .quick: tasks = 200_000
        case .full, .expanded, .micro: tasks = 300_000
        case .scaling: return []
        }
        return [64, 256, 1024, 4096].map { budget in
            WorkloadCase(params: [("budget", "\(budget)"), ("tasks", "\(tasks)")],
                         contestants: [Contestant(kind: LoopKitEntrant.budgetKind(budget)) { Self.run($0, tasks: tasks) }])
        }
    }

    static func run(_ entrant: any Entrant, tasks: Int) -> RunResult {
        guard let loopKit = entrant as? LoopKitEntrant else { preconditionFailure("BatchBudget measures a LoopKitEntrant") }
        let sink = Sink.shared
        let task = Sink.task
        let probeDone = Atomic<Int>(0)
        let producerDone = Atomic<Bool>(false)
        nonisolated(unsafe) var histogram = makeHistogram()
        nonisolated(unsafe) var elapsed: Int64 = 0
        sink.expect(tasks)
        runOnThreads(2) { index in
            if index == 0 {
                let start = now()
                for _ in 0..<tasks { loopKit.submit(task) }
                sink.waitUntilDone()
                elapsed = now() - start
                producerDone.store(true, ordering: .releasing)
            } else {
                var round = 0
                while !producerDone.load(ordering: .acquiring) {
                    round += 1
                    let mark = round
                    let start = now()
                    loopKit.submitInternal { probeDone.store(mark, ordering: .releasing) }
                    spin { probeDone.load(ordering: .acquiring) == mark }
                    histogram.record(UInt64(now() - start))
                }
            }
        }
        var r = RunResult(nsPerOp: Double(elapsed) / Double(tasks))
        r.record(latency: histogram)
        r.set(.probes, Double(histogram.totalCount))
        return r
    }
}
