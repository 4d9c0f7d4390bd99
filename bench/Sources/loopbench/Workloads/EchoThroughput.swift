/// 64 connections to an echo server, each streaming 64-byte messages in windows of 16 (sent together, read
/// back and checked) from its own load-generator thread (`EchoLoad`). ns_per_op is wall time per message
/// over all connections; the fields give messages/s and the server thread's CPU per message.
struct EchoThroughput: Workload {
    let info = WorkloadInfo(
        name: "EchoThroughput",
        about: "64 TCP connections over loopback stream 64-byte messages (windows of 16) through an echo server.",
        metric: "ns per message", fields: [.messagesPerSecond, .serverCPUNsPerOp])

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let connections = 64, window = 16
        let messages: Int
        switch plan.suite {
        case .quick: messages = 2_000
        case .full, .expanded: messages = 10_000
        case .micro, .scaling: return []
        }
        let total = connections * messages
        return [WorkloadCase(params: [("connections", "\(connections)"), ("messages_per_connection", "\(messages)")],
                             contestants: EchoKind.all(plan).map { kind in
            kind.contestant(ops: total) { port in
                let elapsed = EchoLoad.throughput(port: port, connections: connections, messages: messages, window: window)
                var result = RunResult(nsPerOp: Double(elapsed) / Double(total))
                result.set(.messagesPerSecond, Double(total) * 1e9 / Double(elapsed))
                return result
            }
        })]
    }
}
