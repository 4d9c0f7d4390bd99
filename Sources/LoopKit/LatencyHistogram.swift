/// A log-linear histogram of nanosecond values (the HdrHistogram layout): exact below 128 ns, then 64
/// sub-buckets per power of two, so every recorded value is reported within 1/64 (1.6 %) of itself.
/// Fixed size (3,776 buckets), no allocation per record. Not thread-safe.
public struct LatencyHistogram: Sendable, Equatable {
    private static let linear = 128
    private static let subBuckets = 64
    private static let bucketCount = linear + 57 * subBuckets

    private var counts: [UInt64]
    /// How many values were recorded.
    public private(set) var count: UInt64 = 0
    /// The largest value recorded, exactly; 0 when none was.
    public private(set) var max: UInt64 = 0

    /// An empty histogram.
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

    /// Records `value` (nanoseconds). O(1).
    public mutating func record(_ value: UInt64) {
        counts[Self.index(of: value)] &+= 1
        count &+= 1
        if value > max { max = value }
    }

    /// Adds every value `other` recorded, as if each had been recorded here.
    public mutating func add(_ other: LatencyHistogram) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
        count &+= other.count
        max = Swift.max(max, other.max)
    }

    /// A range of the histogram: `count` recorded values, each at most `upperBound` and above the previous
    /// bucket's bound.
    public struct Bucket: Sendable, Equatable {
        /// The largest value the bucket holds, in nanoseconds.
        public var upperBound: UInt64
        /// How many recorded values fell into the bucket.
        public var count: UInt64
    }

    /// The buckets that hold at least one value, in ascending order. For exporting the distribution (for
    /// example the difference between two snapshots); O(number of buckets).
    public var nonEmptyBuckets: [Bucket] {
        counts.indices.compactMap { i in counts[i] == 0 ? nil : Bucket(upperBound: Self.upperBound(of: i), count: counts[i]) }
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
