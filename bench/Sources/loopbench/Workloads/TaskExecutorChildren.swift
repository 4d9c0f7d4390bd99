import CBenchSupport
import LoopKit

/// Child tasks in a task group, each doing one increment, under a task-executor preference for a LoopKit
/// loop (`withTaskExecutorPreference(loop.taskExecutor)`), against the same group on the default global
/// executor. SwiftNIO offers no `TaskExecutor`, so it has no entry here.
struct TaskExecutorChildren: Workload {
    let info = WorkloadInfo(
        name: "TaskExecutor",
        about: "Child tasks of a task group (create, run, join), under a LoopKit task-executor preference or on the global executor.",
        metric: "ns per child task", fields: [.allocsPerOp])

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let children: Int
        switch plan.suite {
        case .quick: children = 50_000
        case .full, .expanded: children = 200_000
        case .micro, .scaling: return []
        }
        return [WorkloadCase(params: [("children", "\(children)")], contestants: [
            Contestant(name: "LoopKit", family: .loopkit) {
                let loop: LoopKit.EventLoop
                do { loop = try LoopKit.EventLoop(); try loop.start() } catch { fatalError("EventLoop: \(error)") }
                defer { loop.shutdown() }
                let executor = loop.taskExecutor
                return Self.run(children: children) { body in
                    await withTaskExecutorPreference(executor) { await body() }
                }
            },
            Contestant(name: "global executor", family: .peer) {
                Self.run(children: children) { body in await body() }
            },
        ])]
    }

    /// Spawns `children` child tasks in batches of 1,000 inside `scope`; times all of them, then counts the
    /// allocations of a smaller untimed pass (a child task's own allocation is in both entrants' counts).
    static func run(children: Int,
                    scope: @escaping @Sendable (@Sendable () async -> Void) async -> Void) -> RunResult {
        awaitFromThread {
            @Sendable func spawn(_ n: Int) async {
                var left = n
                while left > 0 {
                    let batch = Swift.min(left, 1_000)
                    await withTaskGroup(of: Int.self) { group in
                        for i in 0..<batch { group.addTask { i &+ 1 } }
                        for await _ in group {}
                    }
                    left -= batch
                }
            }
            await scope { await spawn(Swift.min(children, 10_000)) } // warm-up
            let start = now()
            await scope { await spawn(children) }
            let elapsed = now() - start
            let counted = Swift.min(children, 10_000)
            lkb_alloc_enable(1)
            let before = lkb_alloc_count()
            await scope { await spawn(counted) }
            let after = lkb_alloc_count()
            lkb_alloc_enable(0)
            var result = RunResult(nsPerOp: Double(elapsed) / Double(children))
            result.set(.allocsPerOp, Double(after - before) / Double(counted))
            return result
        }
    }
}
