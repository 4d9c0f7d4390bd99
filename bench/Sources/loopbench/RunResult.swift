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

    /// The percentiles of the recorded curve: the median, then ever further into the tail.
    static let curve = ["50", "75", "90", "95", "99", "99.5", "99.9", "99.95", "99.99", "99.999"]
}
