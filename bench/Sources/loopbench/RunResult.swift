import Histogram

/// What one measured run produced. Every field is a measurement of this run; nothing is derived later.
struct RunResult {
    var nsPerOp: Double
    /// Further per-run figures, in the order they are written.
    var fields: [(Field, Double)] = []
    /// The run's latency distribution: (percentile, ns) from its HdrHistogram, when it records one.
    var percentiles: [(String, Double)]? = nil

    init(nsPerOp: Double) { self.nsPerOp = nsPerOp }

    mutating func set(_ field: Field, _ value: Double?) {
        if let value { fields.append((field, value)) }
    }

    /// p50, p99 and p99.9 as fields, and the percentile curve, of a latency histogram.
    mutating func record(latency histogram: Histogram<UInt64>) {
        set(.p50, Double(histogram.valueAtPercentile(50)))
        set(.p99, Double(histogram.valueAtPercentile(99)))
        set(.p999, Double(histogram.valueAtPercentile(99.9)))
        percentiles = Self.curve.map { ($0, Double(histogram.valueAtPercentile(Double($0)!))) }
    }

    /// The percentiles of the recorded curve: the tail in steps of about one decade.
    static let curve = ["50", "75", "90", "95", "99", "99.5", "99.9", "99.95", "99.99", "99.999"]
}

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
        }
    }

    /// The latency fields a latency workload reports.
    static let latency: [Field] = [.p50, .p99, .p999]
}
