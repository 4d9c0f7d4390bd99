/// Connect, one 64-byte round trip, close (the server closes first), repeated from 4 load-generator threads
/// (`EchoLoad`). ns_per_op is wall time per connection.
struct ConnectionChurn: Workload {
    let info = WorkloadInfo(
        name: "ConnectionChurn", about: "Connect, one 64-byte round trip, close, repeated from 4 client threads.",
        metric: "ns per connection", fields: [.connectionsPerSecond, .serverCPUNsPerOp])

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let total: Int
        switch plan.suite {
        case .quick: total = 2_000
        case .full, .expanded: total = 10_000
        case .micro, .scaling: return []
        }
        return [WorkloadCase(params: [("connections", "\(total)")], contestants: EchoKind.all(plan).map { kind in
            kind.contestant(ops: total) { port in
                let elapsed = EchoLoad.churn(port: port, total: total, threads: 4)
                var result = RunResult(nsPerOp: Double(elapsed) / Double(total))
                result.set(.connectionsPerSecond, Double(total) * 1e9 / Double(elapsed))
                return result
            }
        })]
    }
}
