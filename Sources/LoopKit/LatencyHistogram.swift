/// A log-linear histogram of nanosecond values (the HdrHistogram layout): exact below 128 ns, then 64
/// sub-buckets per power of two, so every recorded value is reported within 1/64 (1.6 %) of itself.
/// Fixed size (3,776 buckets), no allocation per record. Not thread-safe.
public struct LatencyHistogram: Sendable, Equatable {
    private static let linear = 128
    private static let subBuckets = 64
    private static let bucketCount = linear + 57 * subBuckets

    private var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var max: UInt64 = 0

    public init() { counts = Array(repeating: 0, count: Self.bucketCount) }

    static func index(of value: UInt64) -> Int {
        if value < UInt64(linear) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount // >= 7
        let shift = exponent - 6                        // >= 1
        let sub = Int(value >> UInt64(shift))           // in 64..<128
        return linear + (shift - 1) * subBuckets + (sub - subBuckets)
    }

    /// The largest value that falls into bucket `index`.
    static func upperBound(of index: Int) -> UInt64 {
        if index < linear { return UInt64(index) }
        let shift = (index - linear) / subBuckets + 1
        let sub = UInt64((index - linear) % subBuckets + subBuckets)
        return ((sub + 1) << UInt64(shift)) - 1
    }

    public mutating func record(_ value: UInt64) {
        counts[Self.index(of: value)] &+= 1
        count &+= 1
        if value > max { max = value }
    }

    public mutating func add(_ other: LatencyHistogram) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
        count &+= other.count
        max = Swift.max(max, other.max)
    }

    /// The value at `percentile` (0...100): the smallest bucket bound with at least that share of the
    /// recorded values at or below it. 0 when nothing was recorded.
    public func value(atPercentile percentile: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((percentile / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() where c > 0 {
            seen += c
            if seen >= rank { return Swift.min(Self.upperBound(of: i), max) }
        }
        return max
    }
}
