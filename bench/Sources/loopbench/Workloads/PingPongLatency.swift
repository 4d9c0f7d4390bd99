/// One round trip at a time: submit, the task signals back, the producer (spinning) sees it. Reports,
/// beside the entrant's percentiles, `floor_p50_ns`: the p50 of a spinning round trip through two atomics
/// between the same producer and the entrant's own thread, measured in blocks interleaved with the
/// entrant's round trips (`RoundTripFloor`).
struct PingPongLatency: Workload {
    let info = WorkloadInfo(
        name: "PingPongLatency", about: "One round trip at a time: submit a task, wait until it signals back.",
        metric: "mean round trip ns", fields: Field.latency + [.floorP50, .wakeSyscallsPerOp], latency: true)

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let rounds: Int
        switch plan.suite {
        case .quick: rounds = 10_000
        case .full, .expanded: rounds = 20_000
        case .micro, .scaling: return []
        }
        return [plan.everyEntrant([("rounds", "\(rounds)")]) { roundTrips($0, rounds: rounds, gapNanoseconds: 0, floor: true) }]
    }
}
