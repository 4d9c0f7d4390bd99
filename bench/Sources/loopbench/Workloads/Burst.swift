/// Bursts of `burst` tasks; each burst waits for all of its tasks. ns per task.
struct Burst: Workload {
    let info = WorkloadInfo(
        name: "Burst", about: "Bursts of tasks; each burst waits until all of its tasks ran.",
        metric: "ns per task", fields: [.wakeSyscallsPerOp])

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        switch plan.suite {
        case .quick, .full, .expanded:
            return [plan.everyEntrant([("burst", "1000"), ("bursts", "300")]) { Self.run($0, burst: 1_000, bursts: 300) }]
        case .micro, .scaling:
            return []
        }
    }

    static func run(_ entrant: any Entrant, burst: Int, bursts: Int) -> RunResult {
        let sink = Sink.shared
        let task = Sink.task
        sink.expect(burst)
        for _ in 0..<burst { entrant.submit(task) }
        sink.waitUntilDone()
        let wakes = entrant.wakeSyscalls
        let start = now()
        for _ in 0..<bursts {
            sink.expect(burst)
            for _ in 0..<burst { entrant.submit(task) }
            sink.waitUntilDone()
        }
        let elapsed = now() - start
        var r = RunResult(nsPerOp: Double(elapsed) / Double(burst * bursts))
        r.set(.wakeSyscallsPerOp, wakeDelta(entrant, wakes, ops: burst * bursts))
        return r
    }
}
