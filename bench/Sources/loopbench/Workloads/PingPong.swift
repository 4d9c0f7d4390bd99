/// One producer submits `tasks` tasks back to back; the time until all ran, per task.
struct PingPong: Workload {
    let info = WorkloadInfo(
        name: "PingPong", about: "One producer submits small tasks back to back; the time until all ran.",
        metric: "ns per task", fields: [.allocsPerOp, .wakeSyscallsPerOp])

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        switch plan.suite {
        case .quick, .full, .expanded:
            return [plan.everyEntrant([("tasks", "500000")]) { Self.run($0, tasks: 500_000) }]
        case .micro, .scaling:
            return []
        }
    }

    static func run(_ entrant: any Entrant, tasks: Int) -> RunResult {
        let sink = Sink.shared
        let task = Sink.task
        sink.expect(1_000) // warm-up
        for _ in 0..<1_000 { entrant.submit(task) }
        sink.waitUntilDone()
        let wakes = entrant.wakeSyscalls
        sink.expect(tasks)
        let start = now()
        for _ in 0..<tasks { entrant.submit(task) }
        sink.waitUntilDone()
        let elapsed = now() - start
        var r = RunResult(nsPerOp: Double(elapsed) / Double(tasks))
        r.set(.wakeSyscallsPerOp, wakeDelta(entrant, wakes, ops: tasks))
        r.set(.allocsPerOp, allocationsPerTask(entrant))
        return r
    }
}
