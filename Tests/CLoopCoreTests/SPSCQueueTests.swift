// Tests for lk_spscq (lk_spscq.h): the segmented single-producer queue under the per-producer ingress. FIFO
// across every segment boundary, batches that stop at the segment edge or at max, segments recycled rather
// than allocated in steady state, and one producer thread against one consumer thread.

import CLoopCore
import Glibc
import Synchronization
import Testing
import TestSupport

private let slots = Int(LK_SPSCQ_SEGMENT_SLOTS)

private func makeQueue(sourceLocation: SourceLocation = #_sourceLocation) throws -> OpaquePointer {
    var q: OpaquePointer?
    try #require(lk_spscq_create(&q) == 0, sourceLocation: sourceLocation)
    return try #require(q, sourceLocation: sourceLocation)
}

private func stats(_ q: OpaquePointer) -> lk_spscq_stats {
    var s = lk_spscq_stats()
    lk_spscq_stats_get(q, &s)
    return s
}

private func popBatch(_ q: OpaquePointer, max: Int) -> [Int] {
    var batch = [lk_task](repeating: blankTask, count: max + 1)
    let n = batch.withUnsafeMutableBufferPointer { lk_spscq_pop_batch(q, $0.baseAddress!, max) }
    #expect(batch[max].words == blankTask.words, "pop_batch wrote past max")
    return (0..<n).map { sequenceOf(batch[$0]) }
}

@Suite struct SPSCQueueTests {
    /// A new queue is empty, pops nothing, and holds one segment.
    @Test func startsEmpty() throws {
        let q = try makeQueue()
        defer { lk_spscq_destroy(q) }
        #expect(lk_spscq_is_empty(q))
        #expect(popBatch(q, max: 4) == [])
        #expect(stats(q).segments_live == 1)
    }

    /// Every phase of the segment boundary: the consumer lags by 0...3 segments' worth plus every offset, and
    /// batches of every size up to a little over a segment.
    @Test func fifoAcrossSegmentBoundariesAtEveryOffset() throws {
        let q = try makeQueue()
        defer { lk_spscq_destroy(q) }
        var pushed = 0, popped = 0
        for batchSize in [1, 2, 3, slots - 1, slots, slots + 1] {
            for lag in [0, 1, slots - 1, slots, 3 * slots + 5] {
                for _ in 0..<lag {
                    var t = makeTask(pushed)
                    #expect(lk_spscq_push(q, &t) == 0)
                    pushed += 1
                }
                while popped < pushed {
                    let got = popBatch(q, max: batchSize)
                    #expect(!got.isEmpty)
                    #expect(got == Array(popped..<popped + got.count), "batch \(batchSize), lag \(lag)")
                    popped += got.count
                }
                #expect(lk_spscq_is_empty(q))
            }
        }
        #expect(pushed > 4 * slots)
    }

    /// In lockstep (push one, pop one) the producer and consumer pass two segments back and forth: after a
    /// million tasks the queue has allocated a handful, not one per segment crossed.
    @Test func steadyStateRecyclesSegments() throws {
        let q = try makeQueue()
        defer { lk_spscq_destroy(q) }
        for i in 0..<100_000 {
            var t = makeTask(i)
            #expect(lk_spscq_push(q, &t) == 0)
            var out = blankTask
            guard lk_spscq_pop_batch(q, &out, 1) == 1, sequenceOf(out) == i else {
                Issue.record("task \(i) lost or out of order")
                return
            }
        }
        let s = stats(q)
        #expect(s.segments_allocated <= 3, "allocated \(s.segments_allocated) segments for 100k tasks")
    }

    /// A burst larger than the spares grows the queue; draining it frees all but the spares and the current
    /// segment.
    @Test func aBurstGrowsAndDrainingShrinksBack() throws {
        let q = try makeQueue()
        defer { lk_spscq_destroy(q) }
        for i in 0..<(20 * slots) {
            var t = makeTask(i)
            #expect(lk_spscq_push(q, &t) == 0)
        }
        #expect(stats(q).segments_live == 20)
        var next = 0
        while !lk_spscq_is_empty(q) {
            let got = popBatch(q, max: 100)
            #expect(got == Array(next..<next + got.count))
            next += got.count
        }
        #expect(next == 20 * slots)
        #expect(stats(q).segments_live <= 4, "live after draining: \(stats(q).segments_live)")
    }

    /// One producer thread, one consumer thread, a million tasks: none lost, duplicated, reordered or torn.
    @Test func oneProducerThreadOneConsumerThread() throws {
        let q = try makeQueue()
        defer { lk_spscq_destroy(q) }
        let shared = SharedHandle(q)
        let total = stressCount(1_000_000, minimum: 50_000)
        let group = ThreadGroup(1) { _ in
            for i in 0..<total {
                var t = makeTask(i)
                precondition(lk_spscq_push(shared.pointer, &t) == 0)
            }
        }
        var next = 0
        var batch = [lk_task](repeating: blankTask, count: 64)
        var corrupt = 0
        let done = waitUntil(seconds: 60) {
            let n = batch.withUnsafeMutableBufferPointer { lk_spscq_pop_batch(q, $0.baseAddress!, 64) }
            for i in 0..<n {
                if sequenceOf(batch[i]) != next { corrupt += 1 }
                next += 1
            }
            return next >= total
        }
        group.join()
        #expect(done, "received \(next) of \(total)")
        #expect(corrupt == 0)
        #expect(lk_spscq_is_empty(q))
    }
}
