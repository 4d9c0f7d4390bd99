/// One connection to an echo server, sequential 64-byte round trips from the shared load generator
/// (`EchoLoad`); the latency of each. Entrants: `EchoKind.all`.
struct EchoLatency: Workload {
    let info = WorkloadInfo(
        name: "EchoLatency", about: "One TCP connection over loopback, sequential 64-byte round trips to an echo server.",
        metric: "mean round trip ns", fields: Field.latency + [.serverCPUNsPerOp], latency: true)

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let rounds: Int
        switch plan.suite {
        case .quick: rounds = 20_000
        case .full, .expanded: rounds = 100_000
        case .micro, .scaling: return []
        }
        return [WorkloadCase(params: [("round_trips", "\(rounds)")], contestants: EchoKind.all(plan).map { kind in
            // The server's CPU is read around the whole run, its warm-up round trips included.
            kind.contestant(ops: rounds + EchoLoad.latencyWarmUp) { port in
                let (histogram, total) = EchoLoad.latency(port: port, roundTrips: rounds)
                var result = RunResult(nsPerOp: Double(total) / Double(rounds))
                result.record(latency: histogram)
                return result
            }
        })]
    }
}
