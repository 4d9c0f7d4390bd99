import LoopKit
import Testing

/// LatencyHistogram's buckets: what `nonEmptyBuckets` exports is what was recorded.
@Suite struct LatencyHistogramTests {
    /// nonEmptyBuckets holds every recorded value once, in ascending, distinct buckets: exact below 128 ns, within
    /// 1/64 of the value above, up to Int64.max.
    @Test func nonEmptyBucketsHoldEveryRecordedValueInAscendingOrder() {
        var histogram = LatencyHistogram()
        let values: [UInt64] = [0, 5, 5, 127, 128, 129, 1_000, 1_010, 1_000_000, UInt64(Int64.max)]
        for value in values { histogram.record(value) }
        let buckets = histogram.nonEmptyBuckets
        #expect(buckets.reduce(0) { $0 + $1.count } == UInt64(values.count))
        #expect(buckets.map(\.upperBound) == buckets.map(\.upperBound).sorted())
        #expect(Set(buckets.map(\.upperBound)).count == buckets.count)
        // Exact below 128 ns; within 1/64 of the value above.
        #expect(buckets.prefix(3).map(\.upperBound) == [0, 5, 127])
        #expect(buckets.prefix(3).map(\.count) == [1, 2, 1])
        for value in values where value >= 128 {
            let bucket = buckets.first { $0.upperBound >= value }!
            #expect(bucket.upperBound - value <= value / 64, "\(value) lies in the bucket up to \(bucket.upperBound)")
        }
        #expect(LatencyHistogram().nonEmptyBuckets.isEmpty)
    }
}
