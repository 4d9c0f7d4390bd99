/// A per-run figure beside ns_per_op: its raw.jsonl key and its column label. The order here is the
/// report's column order; the raw.jsonl header lists them.
enum Field: String, CaseIterable, Sendable {
    case p50 = "p50_ns"
    case p99 = "p99_ns"
    case p999 = "p999_ns"
    case floorP50 = "floor_p50_ns"
    case submitNsPerOp = "submit_ns_per_op"
    case allocsPerOp = "allocs_per_op"
    case wakeSyscallsPerOp = "wake_syscalls_per_op"
    case probes = "probes"
    case achievedRate = "achieved_rate"
    case messagesPerSecond = "messages_per_s"
    case connectionsPerSecond = "connections_per_s"
    case serverCPUNsPerOp = "server_cpu_ns_per_op"

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
