import LoopKitConcurrencyHelpers
import Synchronization

/// `producers` threads submit `perProducer` tasks each, released together; the time until all ran, and
/// the mean time each producer spent inside its submit loop per task (the contention figure).
struct MultiProducer: Workload {
    let info = WorkloadInfo(
        name: "MultiProducer",
        about: "Several producer threads, released together, submit their tasks; the time until all ran.",
        metric: "ns per task", fields: [.submitNsPerOp, .wakeSyscallsPerOp],
        sweep: Sweep(parameter: "producers", label: "producers", figures: ["ns_per_op", Field.submitNsPerOp.rawValue]))

    /// The same total work at every producer count.
    static let totalTasks = 400_000

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let defaults: [Int]
        switch plan.suite {
        case .quick: defaults = [1, 2, 4, 10]
        case .full, .expanded, .scaling: defaults = [1, 2, 4, 8, 10, 16, 32]
        case .micro: return []
        }
        return (plan.producers ?? defaults).map { producers in
            let perProducer = Self.totalTasks / producers
            return plan.everyEntrant([("producers", "\(producers)"), ("tasks_per_producer", "\(perProducer)")]) {
                Self.run($0, producers: producers, perProducer: perProducer)
            }
        }
    }

    static func run(_ entrant: any Entrant, producers: Int, perProducer: Int) -> RunResult {
        let sink = Sink.shared
        let task = Sink.task
        let ready = Atomic<Int>(0)
        let go = Atomic<Bool>(false)
        let submitNanoseconds = Atomic<Int>(0)
        sink.expect(producers * perProducer)
        let wakes = entrant.wakeSyscalls
        nonisolated(unsafe) var start: Int64 = 0
        runOnThreads(producers + 1) { index in
            if index == producers {
                spin { ready.load(ordering: .acquiring) == producers }
                start = now()
                go.store(true, ordering: .releasing)
                sink.waitUntilDone()
                return
            }
            ready.add(1, ordering: .acquiringAndReleasing)
            spin { go.load(ordering: .acquiring) }
            let begin = now()
            for _ in 0..<perProducer { entrant.submit(task) }
            submitNanoseconds.add(Int(now() - begin), ordering: .relaxed)
        }
        let elapsed = now() - start
        let total = producers * perProducer
        var r = RunResult(nsPerOp: Double(elapsed) / Double(total))
        r.set(.wakeSyscallsPerOp, wakeDelta(entrant, wakes, ops: total))
        r.set(.submitNsPerOp, Double(submitNanoseconds.load(ordering: .relaxed)) / Double(total))
        return r
    }
}
