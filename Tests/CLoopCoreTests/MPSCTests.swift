// Tests for lk_mpsc (lk_mpsc.h): the lock-free MPSC node queue with its node pool.

import CLoopCore
import Glibc
import Testing
import TestSupport

private func makeQueue(sourceLocation: SourceLocation = #_sourceLocation) throws -> OpaquePointer {
    var q: OpaquePointer?
    try #require(lk_mpsc_create(&q) == 0, sourceLocation: sourceLocation)
    return try #require(q, sourceLocation: sourceLocation)
}

private func stats(_ q: OpaquePointer) -> lk_mpsc_stats {
    var s = lk_mpsc_stats()
    lk_mpsc_stats_get(q, &s)
    return s
}

/// Pushes sequences first..<first+count; returns the push results.
@discardableResult
private func push(_ q: OpaquePointer, _ range: Range<Int>) -> [Int32] {
    pushSequences(range) { lk_mpsc_push(q, $0) }
}

private func drain(_ q: OpaquePointer, limit: Int = 1_000_000,
                   sourceLocation: SourceLocation = #_sourceLocation) -> [Int] {
    drainSequences(limit: limit, sourceLocation: sourceLocation) { lk_mpsc_pop(q, $0) }
}

@Suite struct MPSCTests {
    /// A new queue is empty: pop answers EMPTY, a batch pops nothing and is not busy, and every pool node is free.
    @Test func emptyQueuePopsEmpty() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        var out = blankTask
        #expect(lk_mpsc_pop(q, &out) == LK_POP_EMPTY)
        #expect(lk_mpsc_is_empty(q))
        var busy = true
        var batch = [lk_task](repeating: blankTask, count: 4)
        #expect(batch.withUnsafeMutableBufferPointer { lk_mpsc_pop_batch(q, $0.baseAddress!, 4, &busy) } == 0)
        #expect(!busy)
        let s = stats(q)
        #expect(s.nodes_in_use == 0)
        #expect(s.nodes_free == s.nodes_allocated)
    }

    /// Tasks come out in push order; push returns 1 exactly when the queue was empty (not after a partial drain,
    /// again after a full one).
    @Test func singleThreadFIFOAndWasEmpty() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        for round in 0..<3 {
            let results = push(q, 0..<1000)
            #expect(results.first == 1, "round \(round): first push onto an empty queue returns 1")
            #expect(results.dropFirst().allSatisfy { $0 == 0 }, "round \(round): later pushes return 0")
            #expect(!lk_mpsc_is_empty(q))
            #expect(drain(q) == Array(0..<1000), "round \(round)")
            #expect(lk_mpsc_is_empty(q))
        }
        // Was-empty after a partial drain: not empty, so 0; after a full drain, 1 again.
        push(q, 0..<3)
        var out = blankTask
        #expect(lk_mpsc_pop(q, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 0)
        var task = makeTask(3)
        #expect(lk_mpsc_push(q, &task) == 0)
        #expect(drain(q) == [1, 2, 3])
        #expect(lk_mpsc_push(q, &task) == 1)
        #expect(lk_mpsc_pop(q, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 3)
        #expect(lk_mpsc_pop(q, &out) == LK_POP_EMPTY)
        // Alternating single push / pop: every push sees an empty queue.
        for i in 0..<300 {
            var t = makeTask(i)
            #expect(lk_mpsc_push(q, &t) == 1)
            #expect(lk_mpsc_pop(q, &out) == LK_POP_OK)
            #expect(sequenceOf(out) == i)
        }
        #expect(lk_mpsc_is_empty(q))
    }

    /// pop_batch takes up to max tasks in order, never writes past max, and reports not busy when the queue simply
    /// ran out.
    @Test func popBatchTakesUpToMaxInOrder() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        push(q, 0..<100)
        var batch = [lk_task](repeating: blankTask, count: 31)
        var next = 0
        for expected in [30, 30, 30, 10, 0] {
            var busy = true
            let n = batch.withUnsafeMutableBufferPointer { lk_mpsc_pop_batch(q, $0.baseAddress!, 30, &busy) }
            #expect(n == expected)
            #expect(!busy)
            #expect(batch[30].words == blankTask.words, "pop_batch wrote past max")
            #expect((0..<min(n, 30)).map { sequenceOf(batch[$0]) } == Array(next..<next + expected))
            next += expected
        }
        #expect(lk_mpsc_is_empty(q))
        // A NULL busy pointer is allowed.
        push(q, 0..<2)
        #expect(batch.withUnsafeMutableBufferPointer { lk_mpsc_pop_batch(q, $0.baseAddress!, 30, nil) } == 2)
        // max == 0 takes nothing.
        push(q, 5..<6)
        var busy = true
        #expect(batch.withUnsafeMutableBufferPointer { lk_mpsc_pop_batch(q, $0.baseAddress!, 0, &busy) } == 0)
        #expect(!busy)
        #expect(drain(q) == [5])
    }

    /// While tasks are queued the pool lends one node per task (plus at most the head); after the drain every node
    /// is back in the pool.
    @Test func statsAfterDrainReturnEveryNode() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        for depth in [1, 5, 31, 32, 33, 200, 700] {
            push(q, 0..<depth)
            let during = stats(q)
            #expect(during.nodes_in_use >= UInt64(depth), "depth \(depth): \(during)")
            #expect(during.nodes_in_use <= UInt64(depth) + 1, "depth \(depth): queued tasks plus at most the head node")
            #expect(drain(q) == Array(0..<depth))
            let after = stats(q)
            #expect(after.nodes_in_use == 0, "depth \(depth): \(after)")
            #expect(after.nodes_free == after.nodes_allocated, "depth \(depth): \(after)")
            #expect(after.nodes_allocated >= UInt64(depth))
        }
    }

    /// After a warm-up, repeated fill-and-drain cycles at the same depth allocate no node and grow no slab.
    @Test("steady state allocates nothing", arguments: [1, 31, 33, 250, 1000])
    func steadyStateAllocatesNothing(depth: Int) throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        for _ in 0..<4 {
            push(q, 0..<depth)
            #expect(drain(q) == Array(0..<depth))
        }
        let warm = stats(q)
        #expect(warm.nodes_in_use == 0)
        for cycle in 0..<25 {
            push(q, 0..<depth)
            #expect(drain(q).count == depth)
            let s = stats(q)
            #expect(s.nodes_allocated == warm.nodes_allocated, "depth \(depth) cycle \(cycle)")
            #expect(s.slabs == warm.slabs, "depth \(depth) cycle \(cycle)")
            #expect(s.nodes_in_use == 0, "depth \(depth) cycle \(cycle)")
        }
        // Rolling traffic at the same depth (never fully drained) does not allocate either.
        push(q, 0..<depth)
        var next = depth
        var out = blankTask
        for _ in 0..<(3 * depth + 100) {
            var t = makeTask(next)
            #expect(lk_mpsc_push(q, &t) == 0)
            next += 1
            #expect(lk_mpsc_pop(q, &out) == LK_POP_OK)
        }
        #expect(drain(q).count == depth)
        let rolled = stats(q)
        #expect(rolled.nodes_allocated == warm.nodes_allocated, "rolling traffic at depth \(depth)")
        #expect(rolled.nodes_in_use == 0)
    }

    /// A backlog beyond one slab grows the pool, and the drain returns every node to it without shrinking or
    /// growing it.
    @Test func poolGrowsBeyondOneSlabAndReturnsEverything() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        let initial = stats(q)
        push(q, 0..<10_000)
        let grown = stats(q)
        #expect(grown.slabs > 1, "\(grown)")
        #expect(grown.slabs > initial.slabs)
        #expect(grown.nodes_allocated >= 10_000)
        #expect(grown.nodes_in_use >= 10_000 && grown.nodes_in_use <= 10_001, "\(grown)")
        #expect(drain(q) == Array(0..<10_000))
        let after = stats(q)
        #expect(after.nodes_in_use == 0, "\(after)")
        #expect(after.nodes_free == after.nodes_allocated)
        #expect(after.nodes_allocated == grown.nodes_allocated)
        #expect(after.slabs == grown.slabs)
        // The grown pool serves a second burst of the same size without growing again.
        push(q, 0..<10_000)
        #expect(drain(q).count == 10_000)
        #expect(stats(q).nodes_allocated == grown.nodes_allocated)
        #expect(stats(q).nodes_in_use == 0)
    }

    // MARK: Busy window

    /// A push held inside its busy window (tail exchanged, link not yet stored) on an empty queue makes pop answer
    /// BUSY, never EMPTY, and pop_batch report busy; once finished the task pops.
    @Test func heldPushOnEmptyQueueIsBusyNotEmpty() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        var task = makeTask(42)
        var prev: UnsafeMutableRawPointer?
        var node: UnsafeMutableRawPointer?
        try #require(lk_mpsc_push_begin_for_testing(q, &task, &prev, &node) == 0)

        var out = blankTask
        for _ in 0..<3 { #expect(lk_mpsc_pop(q, &out) == LK_POP_BUSY) }
        #expect(!lk_mpsc_is_empty(q))
        var batch = [lk_task](repeating: blankTask, count: 8)
        var busy = false
        #expect(batch.withUnsafeMutableBufferPointer { lk_mpsc_pop_batch(q, $0.baseAddress!, 8, &busy) } == 0)
        #expect(busy, "pop_batch must report the push in flight")

        lk_mpsc_push_finish_for_testing(prev, node)
        #expect(!lk_mpsc_is_empty(q))
        #expect(lk_mpsc_pop(q, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 42)
        #expect(lk_mpsc_pop(q, &out) == LK_POP_EMPTY)
        #expect(lk_mpsc_is_empty(q))
        #expect(stats(q).nodes_in_use == 0)
    }

    /// Tasks queued before a held push: all but the last linked one pop OK; then BUSY (never EMPTY). The
    /// last linked node cannot be unlinked while its successor's link store is pending (Vyukov's queue: the
    /// consumer must know head->next to advance), so the consumer reports BUSY there.
    @Test func heldPushBehindQueuedTasksIsBusyAfterThem() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        push(q, 0..<3)
        var task = makeTask(3)
        var prev: UnsafeMutableRawPointer?
        var node: UnsafeMutableRawPointer?
        try #require(lk_mpsc_push_begin_for_testing(q, &task, &prev, &node) == 0)

        var out = blankTask
        #expect(lk_mpsc_pop(q, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 0)
        var batch = [lk_task](repeating: blankTask, count: 8)
        var busy = false
        let n = batch.withUnsafeMutableBufferPointer { lk_mpsc_pop_batch(q, $0.baseAddress!, 8, &busy) }
        #expect(n == 1, "only the task whose successor is linked can be taken")
        #expect(sequenceOf(batch[0]) == 1)
        #expect(busy)
        for _ in 0..<3 { #expect(lk_mpsc_pop(q, &out) == LK_POP_BUSY) }
        #expect(!lk_mpsc_is_empty(q))

        // A push that starts and finishes while the held one is pending queues behind it.
        var later = makeTask(4)
        #expect(lk_mpsc_push(q, &later) == 0)
        #expect(lk_mpsc_pop(q, &out) == LK_POP_BUSY)

        lk_mpsc_push_finish_for_testing(prev, node)
        #expect(drain(q) == [2, 3, 4])
        #expect(lk_mpsc_is_empty(q))
        #expect(stats(q).nodes_in_use == 0)
    }

    /// A push held inside its busy window behind one queued task: the queued task is not handed out before its
    /// successor is linked (BUSY), the queue never reads as empty, and both pop in order once the push finishes.
    @Test func heldPushBehindOneQueuedTaskIsNeverEmpty() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        push(q, 0..<1)
        var task = makeTask(1)
        var prev: UnsafeMutableRawPointer?
        var node: UnsafeMutableRawPointer?
        try #require(lk_mpsc_push_begin_for_testing(q, &task, &prev, &node) == 0)
        var out = blankTask
        // Task 0 is the last linked node and its successor is not linked yet: BUSY (see above).
        #expect(lk_mpsc_pop(q, &out) == LK_POP_BUSY)
        #expect(!lk_mpsc_is_empty(q))
        lk_mpsc_push_finish_for_testing(prev, node)
        #expect(drain(q) == [0, 1])
        #expect(stats(q).nodes_in_use == 0)
    }

    // MARK: Concurrency

    /// After concurrent producers have joined, a drain never meets BUSY and gets every task once, in order per
    /// producer; the pool ends with no node in use.
    @Test("concurrent pushes, then a quiescent drain: never BUSY, per-producer FIFO, exact totals")
    func concurrentPushesThenQuiescentDrain() throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        let shared = SharedHandle(q)
        let failures = FailureCounter()
        startProducers(4, perProducer: 5_000, failures: failures) { lk_mpsc_push(shared.pointer, $0) }.join()
        #expect(failures.failures == 0)
        #expect(!lk_mpsc_is_empty(q))
        #expect(stats(q).nodes_in_use == 20_000)
        var checker = ProducerOrderChecker(producers: 4, perProducer: 5_000)
        var out = blankTask
        var busy = 0
        while checker.received < checker.total {
            let status = lk_mpsc_pop(q, &out)
            if status == LK_POP_OK { checker.accept(out) } else {
                if status == LK_POP_BUSY { busy += 1 }
                break
            }
        }
        #expect(busy == 0, "no push is in flight after the producers joined")
        checker.verify()
        #expect(lk_mpsc_pop(q, &out) == LK_POP_EMPTY)
        #expect(stats(q).nodes_in_use == 0)
    }

    /// P producers and one consumer taking single pops and batches in turn: every task once, in order per producer;
    /// the first push reports was-empty; the pool ends with every node free.
    @Test("P producers, one consumer: per-producer FIFO, exact totals, pool back to zero",
          arguments: [1, 2, 4, 8, 16])
    func concurrentProducersOneConsumer(producers: Int) throws {
        let q = try makeQueue()
        defer { lk_mpsc_destroy(q) }
        let shared = SharedHandle(q)
        let wasEmpty = AtomicCounter() // pushes that reported "was empty"
        var busy = false
        let checker = runProducersWithConsumer(
            producers: producers, perProducer: 20_000,
            push: { task in
                let rc = lk_mpsc_push(shared.pointer, task)
                if rc == 1 { wasEmpty.increment() }
                return rc
            },
            drain: alternatingDrain(batchSize: 48, popBatch: { lk_mpsc_pop_batch(q, $0, $1, &busy) },
                                    pop: { lk_mpsc_pop(q, $0) }))
        checker.verify()
        #expect(wasEmpty.value >= 1, "the first push onto the empty queue reports was-empty")
        var out = blankTask
        #expect(lk_mpsc_pop(q, &out) == LK_POP_EMPTY)
        #expect(lk_mpsc_is_empty(q))
        let s = stats(q)
        #expect(s.nodes_in_use == 0, "\(s)")
        #expect(s.nodes_free == s.nodes_allocated, "\(s)")
    }
}
