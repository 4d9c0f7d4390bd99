// Tests for lk_chunkq (lk_chunkq.h): the mutex-guarded queue of LK_CHUNKQ_CHUNK_SLOTS-slot chunks.

import CLoopCore
import Glibc
import Testing
import TestSupport

private let slots = Int(LK_CHUNKQ_CHUNK_SLOTS)

private func makeQueue(sourceLocation: SourceLocation = #_sourceLocation) throws -> OpaquePointer {
    var q: OpaquePointer?
    try #require(lk_chunkq_create(&q) == 0, sourceLocation: sourceLocation)
    return try #require(q, sourceLocation: sourceLocation)
}

private func stats(_ q: OpaquePointer) -> lk_chunkq_stats {
    var s = lk_chunkq_stats()
    lk_chunkq_stats_get(q, &s)
    return s
}

@discardableResult
private func push(_ q: OpaquePointer, _ range: Range<Int>) -> [Int32] {
    pushSequences(range) { lk_chunkq_push(q, $0) }
}

private func drain(_ q: OpaquePointer, limit: Int = 10_000_000) -> [Int] {
    drainSequences(limit: limit) { lk_chunkq_pop(q, $0) }
}

/// Pops a batch of up to `max`, returning the sequences; checks nothing is written past `max`.
private func popBatch(_ q: OpaquePointer, _ max: Int, sourceLocation: SourceLocation = #_sourceLocation) -> [Int] {
    var out = [lk_task](repeating: blankTask, count: max + 1)
    let n = out.withUnsafeMutableBufferPointer { lk_chunkq_pop_batch(q, $0.baseAddress!, max) }
    #expect(n <= max, sourceLocation: sourceLocation)
    #expect(out[max].words == blankTask.words, "pop_batch wrote past max", sourceLocation: sourceLocation)
    return out[0..<min(n, max)].map(sequenceOf)
}

/// Invariants of the chunk counters that hold at any quiescent moment.
private func checkCounters(_ s: lk_chunkq_stats, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(s.chunks_spare <= s.chunks_live, "\(context): \(s)", sourceLocation: sourceLocation)
    #expect(s.chunks_live <= s.chunks_allocated, "\(context): \(s)", sourceLocation: sourceLocation)
}

@Suite struct ChunkedQueueTests {
    /// A new queue is empty: pop answers EMPTY (never BUSY), a batch pops nothing, length is 0 and the chunk
    /// counters are consistent.
    @Test func emptyQueue() throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        var out = blankTask
        #expect(lk_chunkq_pop(q, &out) == LK_POP_EMPTY)
        #expect(lk_chunkq_is_empty(q))
        #expect(lk_chunkq_length(q) == 0)
        #expect(popBatch(q, 4) == [])
        checkCounters(stats(q), "fresh queue")
    }

    /// Tasks come out in push order across chunk boundaries, through single pops and batches of every size around
    /// the chunk size; only the push onto an empty queue reports was-empty; length and is_empty follow every step.
    @Test func fifoAndWasEmptyAcrossChunkBoundaries() throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        let total = 5 * slots + 7
        for round in 0..<2 {
            let results = push(q, 0..<total)
            #expect(results.first == 1, "round \(round)")
            #expect(results.dropFirst().allSatisfy { $0 == 0 }, "round \(round)")
            #expect(lk_chunkq_length(q) == total)
            #expect(!lk_chunkq_is_empty(q))

            // Alternate single pops and batches whose sizes straddle chunk boundaries.
            var next = 0
            var out = blankTask
            let sizes = [1, slots - 2, 1, slots, slots + 1, 2 * slots + 5, 3, 1000]
            var i = 0
            while next < total {
                if i % 2 == 0 {
                    #expect(lk_chunkq_pop(q, &out) == LK_POP_OK)
                    #expect(sequenceOf(out) == next, "round \(round)")
                    next += 1
                } else {
                    let want = min(sizes[(i / 2) % sizes.count], total - next)
                    let got = popBatch(q, sizes[(i / 2) % sizes.count])
                    #expect(got == Array(next..<next + want), "round \(round), batch at \(next)")
                    next += want
                }
                #expect(lk_chunkq_length(q) == total - next)
                #expect(lk_chunkq_is_empty(q) == (next == total))
                i += 1
            }
            #expect(lk_chunkq_pop(q, &out) == LK_POP_EMPTY)
            #expect(popBatch(q, 10) == [])
            #expect(lk_chunkq_is_empty(q))
        }
    }

    /// Push reports was-empty exactly when the queue is empty: not after a partial drain (ending on or inside a
    /// chunk boundary), again after a full one, and on every push of alternating push/pop traffic.
    @Test func wasEmptyAfterPartialAndFullDrain() throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        // Partial drain ending exactly on a chunk boundary, and inside a chunk.
        for keep in [slots, 1, slots + 1] {
            let n = slots + keep
            push(q, 0..<n)
            #expect(popBatch(q, n - keep) == Array(0..<(n - keep)))
            var t = makeTask(n)
            #expect(lk_chunkq_push(q, &t) == 0, "queue still holds \(keep)")
            #expect(drain(q) == Array((n - keep)...n))
            #expect(lk_chunkq_push(q, &t) == 1, "queue drained")
            #expect(drain(q) == [n])
        }
        // Alternating push/pop, every push sees an empty queue, across many chunks' worth of traffic.
        var out = blankTask
        for i in 0..<(3 * slots + 5) {
            var t = makeTask(i)
            #expect(lk_chunkq_push(q, &t) == 1)
            #expect(lk_chunkq_pop(q, &out) == LK_POP_OK)
            #expect(sequenceOf(out) == i)
        }
    }

    /// A backlog that is not a multiple of the chunk size, pushed and popped in uneven steps, stays FIFO and its
    /// length exact.
    @Test func rollingTrafficKeepsFIFO() throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        // Keep a backlog that is not a multiple of the chunk size, push and pop in uneven steps.
        var pushed = 0
        var popped = 0
        var mismatches = 0
        for step in 0..<400 {
            let n = 37 + step % 50
            push(q, pushed..<pushed + n)
            pushed += n
            let take = min(pushed - popped, 40 + step % 47)
            if popBatch(q, take) != Array(popped..<popped + take) { mismatches += 1 }
            popped += take
            if lk_chunkq_length(q) != pushed - popped { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(drain(q) == Array(popped..<pushed))
        #expect(lk_chunkq_is_empty(q))
    }

    /// Chunks are recycled: after a warm-up, repeated fill-and-drain cycles and rolling traffic at the same backlog
    /// allocate no chunk.
    @Test("chunks are recycled: steady state allocates nothing", arguments: [1, 127, 128, 129, 3 * 128 + 17])
    func chunkRecycling(depth: Int) throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        for _ in 0..<3 {
            push(q, 0..<depth)
            #expect(drain(q) == Array(0..<depth))
        }
        let warm = stats(q)
        checkCounters(warm, "warm")
        #expect(warm.chunks_allocated >= UInt64((depth + slots - 1) / slots))
        for cycle in 0..<20 {
            push(q, 0..<depth)
            #expect(drain(q).count == depth)
            let s = stats(q)
            #expect(s.chunks_allocated == warm.chunks_allocated, "depth \(depth) cycle \(cycle)")
            checkCounters(s, "depth \(depth) cycle \(cycle)")
        }
        // Rolling traffic at the same backlog, many chunks' worth, never fully drained: after a rolling
        // warm-up (the backlog may straddle one more chunk boundary than a drained cycle), nothing is allocated.
        push(q, 0..<depth)
        var next = depth
        var out = blankTask
        var rolledWarm = lk_chunkq_stats()
        var mismatches = 0
        for phase in 0..<2 {
            for _ in 0..<(phase == 0 ? 2 * slots : 10 * slots) {
                var t = makeTask(next)
                if lk_chunkq_push(q, &t) != 0 { mismatches += 1 }
                if lk_chunkq_pop(q, &out) != LK_POP_OK || sequenceOf(out) != next - depth { mismatches += 1 }
                next += 1
            }
            if phase == 0 { rolledWarm = stats(q) }
        }
        #expect(mismatches == 0)
        let rolled = stats(q)
        #expect(rolledWarm.chunks_allocated <= warm.chunks_allocated + 1, "\(rolledWarm) vs \(warm)")
        #expect(rolled.chunks_allocated == rolledWarm.chunks_allocated, "rolling at depth \(depth): \(rolled)")
        #expect(drain(q) == Array((next - depth)..<next))
        checkCounters(stats(q), "rolled")
    }

    /// After a burst is drained the queue keeps at most LK_CHUNKQ_SPARE_MAX spare chunks and frees the rest, and a
    /// later burst reuses the spares without allocating.
    @Test func burstThenDrainReleasesAllButAFewSpareChunks() throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        let chunks = 100
        push(q, 0..<(chunks * slots))
        let full = stats(q)
        #expect(full.chunks_allocated >= UInt64(chunks))
        #expect(full.chunks_live >= UInt64(chunks))
        #expect(lk_chunkq_length(q) == chunks * slots)
        #expect(drain(q) == Array(0..<(chunks * slots)))
        let after = stats(q)
        checkCounters(after, "after drain")
        // chunkq.c keeps at most LK_CHUNKQ_SPARE_MAX (8) spare chunks ("a few", lk_chunkq.h); the rest are freed.
        #expect(after.chunks_spare <= 8, "\(after)")
        #expect(after.chunks_live < full.chunks_live, "drained chunks beyond the spare list are freed: \(after)")
        // An empty queue owns at most one chunk besides its spares (the rewound head chunk).
        #expect(after.chunks_live - after.chunks_spare <= 1, "\(after)")
        // A second smaller burst reuses the spares: no new allocations for up to `spare` chunks.
        let reuse = Int(after.chunks_spare) * slots
        push(q, 0..<reuse)
        #expect(stats(q).chunks_allocated == after.chunks_allocated, "\(stats(q))")
        #expect(drain(q).count == reuse)
    }

    /// Concurrent producers and one consumer taking single pops and batches in turn: every task arrives once, in
    /// order per producer, and the queue ends empty with at most one chunk listed.
    @Test("P producers, one consumer: per-producer FIFO, exact totals", arguments: [2, 4, 8])
    func concurrentProducersOneConsumer(producers: Int) throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        let shared = SharedHandle(q)
        let checker = runProducersWithConsumer(
            producers: producers, perProducer: 20_000,
            push: { lk_chunkq_push(shared.pointer, $0) },
            drain: alternatingDrain(batchSize: 200, popBatch: { lk_chunkq_pop_batch(q, $0, $1) },
                                    pop: { lk_chunkq_pop(q, $0) }))
        checker.verify()
        var out = blankTask
        #expect(lk_chunkq_pop(q, &out) == LK_POP_EMPTY)
        #expect(lk_chunkq_is_empty(q))
        #expect(lk_chunkq_length(q) == 0)
        let s = stats(q)
        checkCounters(s, "after stress")
        #expect(s.chunks_live - s.chunks_spare <= 1, "\(s)")
    }

    /// length and is_empty may be read from any thread while producers push and the consumer pops: no reading
    /// exceeds what was pushed, and every task still arrives.
    @Test("length and is_empty from another thread while producers and the consumer run")
    func lengthFromAnyThread() throws {
        let q = try makeQueue()
        defer { lk_chunkq_destroy(q) }
        let shared = SharedHandle(q)
        let perProducer = 10_000
        let badLength = AtomicCounter()
        let producers = ThreadGroup(2) { p in
            for i in 0..<perProducer {
                var t = makeTask(producer: p, sequence: i)
                _ = lk_chunkq_push(shared.pointer, &t)
            }
        }
        let observer = ThreadGroup(1) { _ in
            for _ in 0..<5_000 {
                let length = lk_chunkq_length(shared.pointer)
                if length > 2 * perProducer { badLength.increment() }
                _ = lk_chunkq_is_empty(shared.pointer)
            }
        }
        var got = 0
        var out = blankTask
        let deadline = TestDeadline(seconds: queueTestTimeoutSeconds)
        while got < 2 * perProducer && !deadline.hasExpired {
            if lk_chunkq_pop(q, &out) == LK_POP_OK { got += 1 } else { sched_yield() }
        }
        producers.join()
        observer.join()
        #expect(got == 2 * perProducer)
        #expect(badLength.value == 0)
        #expect(lk_chunkq_is_empty(q))
    }
}
