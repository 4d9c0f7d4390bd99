/// A per-run figure beside ns_per_op: its raw.jsonl key and its column label. The order here is the
/// report's column order; the raw.jsonl header lists them.
enum Field: String, CaseIterable, Sendable {
    // Latency percentiles, and PingPongLatency's spinning floor measured beside them.
    case p50 = "p50_ns", p99 = "p99_ns", p999 = "p999_ns", floorP50 = "floor_p50_ns"
    // What a task costs besides the loop's time: the producer's submit, allocations, wake syscalls.
    case submitNsPerOp = "submit_ns_per_op", allocsPerOp = "allocs_per_op", wakeSyscallsPerOp = "wake_syscalls_per_op"
    // BatchBudget's probe count and Paced's achieved rate.
    case probes = "probes", achievedRate = "achieved_rate"
    // The echo workloads over loopback.
    case messagesPerSecond = "messages_per_s", connectionsPerSecond = "connections_per_s",
         serverCPUNsPerOp = "server_cpu_ns_per_op"

    var label: String {
        switch self {
        case .p50: return "p50 ns"
        case .p99: return "p99 ns"
        case .p999: return "p99.9 ns"
        case .floorP50: return "floor p50 ns"
        case .submitNsPerOp: return "submit ns/op"
        case .allocsPerOp: return "allocs/op"
        case .wakeSyscallsPerOp: return "wake syscalls/op"
        case .probes: return "probes"
        case .achievedRate: return "achieved tasks/s"
        case .messagesPerSecond: return "messages/s"
        case .connectionsPerSecond: return "connections/s"
        case .serverCPUNsPerOp: return "server CPU ns/op"
        }
    }

    /// The latency fields a latency workload reports.
    static let latency: [Field] = [.p50, .p99, .p999]
}
