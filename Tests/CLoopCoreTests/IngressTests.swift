// Tests for lk_ingress (lk_ingress.h): the interface every kind answers the same way (FIFO, batches, many
// producers), and the per-producer kind's own contract: a producer record per thread, announced once per
// scheduling, round-robin draining, records given up when idle or around a park, records of exited threads
// drained and then reclaimed.

import CLoopCore
import Glibc
import Synchronization
import Testing
import TestSupport

extension lk_ingress_kind: @retroactive CustomTestStringConvertible {
    public var testDescription: String { String(cString: lk_ingress_kind_name(self)) }
}

private let ingressKinds = [LK_INGRESS_PER_PRODUCER, LK_INGRESS_LOCK_FREE, LK_INGRESS_CHUNKED]

private func makeIngress(_ kind: lk_ingress_kind, wake: OpaquePointer? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> OpaquePointer {
    var q: OpaquePointer?
    try #require(lk_ingress_create(&q, kind, wake) == 0, "create \(kind.testDescription)", sourceLocation: sourceLocation)
    return try #require(q, sourceLocation: sourceLocation)
}

@discardableResult
private func push(_ q: OpaquePointer, _ range: Range<Int>) -> [Int32] {
    pushSequences(range) { lk_ingress_push(q, $0, nil) }
}

private func drain(_ q: OpaquePointer, limit: Int = 1_000_000,
                   sourceLocation: SourceLocation = #_sourceLocation) -> [Int] {
    drainSequences(limit: limit, sourceLocation: sourceLocation) { lk_ingress_pop(q, $0) }
}

/// Pops with pop_batch(max) until a call returns nothing; returns (producer, sequence) of every task.
private func drainTasks(_ q: OpaquePointer, max: Int = 64) -> [(producer: Int, sequence: Int)] {
    var batch = [lk_task](repeating: blankTask, count: max)
    var out: [(Int, Int)] = []
    while true {
        let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, max, nil) }
        if n == 0 { return out }
        for i in 0..<n { out.append(readTask(batch[i]) ?? (-1, -1)) }
    }
}

/// An ingress of `kind` notifying a wake handshake whose loop is "asleep", so that every notification the
/// ingress makes shows up in lk_wake_counters as a request.
private func makeIngressOnASleepingWake(_ kind: lk_ingress_kind) throws -> (q: OpaquePointer, wake: OpaquePointer) {
    var w: OpaquePointer?
    try #require(lk_wake_create(&w) == 0)
    let wake = try #require(w)
    lk_wake_state_store(wake, LK_STATE_SLEEPING)
    do {
        return (try makeIngress(kind, wake: wake), wake)
    } catch {
        lk_wake_destroy(wake)
        throw error
    }
}

private func wakeRequests(_ wake: OpaquePointer) -> UInt64 {
    var requests: UInt64 = 0
    lk_wake_counters(wake, &requests, nil)
    return requests
}

// MARK: - Every kind

@Suite struct IngressTests {
    /// Each kind is created empty and reports its kind: pop answers EMPTY, is_empty holds.
    @Test(arguments: ingressKinds)
    func createReportsKind(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        #expect(lk_ingress_get_kind(q) == kind)
        #expect(lk_ingress_is_empty(q))
        var out = blankTask
        #expect(lk_ingress_pop(q, &out) == LK_POP_EMPTY)
    }

    /// An unknown kind is refused with -EINVAL, no ingress is returned, and it has no name.
    @Test func unknownKindIsRejected() {
        for raw: UInt32 in [LK_INGRESS_KIND_COUNT.rawValue, 7, UInt32.max] {
            var q: OpaquePointer?
            #expect(lk_ingress_create(&q, lk_ingress_kind(rawValue: raw), nil) == negErrno(EINVAL), "kind \(raw)")
            #expect(q == nil, "kind \(raw): no queue returned")
            #expect(lk_ingress_kind_name(lk_ingress_kind(rawValue: raw)) == nil)
            if let q { lk_ingress_destroy(q) }
        }
    }

    /// Every kind keeps push order across drains and refills, and across single pops interleaved with pushes; push
    /// reports success (0), not was-empty.
    @Test(arguments: ingressKinds)
    func fifoAcrossRefills(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        for round in 0..<2 {
            let results = push(q, 0..<500)
            #expect(results.allSatisfy { $0 == 0 }, "round \(round)")
            #expect(!lk_ingress_is_empty(q))
            #expect(drain(q) == Array(0..<500))
            #expect(lk_ingress_is_empty(q))
        }
        push(q, 0..<2)
        var out = blankTask
        #expect(lk_ingress_pop(q, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 0)
        push(q, 2..<3)
        #expect(drain(q) == [1, 2])
    }

    /// pop_batch takes at most max tasks, in order, never writes past max, and reports not busy.
    @Test(arguments: ingressKinds)
    func popBatchTakesAtMostMax(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        push(q, 0..<300)
        var batch = [lk_task](repeating: blankTask, count: 129)
        var next = 0
        for expected in [128, 128, 44, 0] {
            var busy = true
            let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 128, &busy) }
            #expect(n == expected)
            #expect(!busy)
            #expect(batch[128].words == blankTask.words, "pop_batch wrote past max")
            #expect((0..<min(n, 128)).map { sequenceOf(batch[$0]) } == Array(next..<next + expected))
            next += expected
        }
        #expect(lk_ingress_is_empty(q))
        push(q, 0..<3)
        #expect(batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 128, nil) } == 3)
        #expect(lk_ingress_is_empty(q))
    }

    /// Four producers and one consumer taking single pops and batches in turn, for every kind: every task arrives
    /// once, in order per producer, and the ingress ends empty.
    @Test("P = 4 producers, one consumer: per-producer FIFO, exact totals", arguments: ingressKinds)
    func concurrentProducersOneConsumer(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        let shared = SharedHandle(q)
        var busy = false
        let checker = runProducersWithConsumer(
            producers: 4, perProducer: stressCount(20_000, minimum: 2_000),
            push: { lk_ingress_push(shared.pointer, $0, nil) },
            drain: alternatingDrain(batchSize: 64, popBatch: { lk_ingress_pop_batch(q, $0, $1, &busy) },
                                    pop: { lk_ingress_pop(q, $0) }))
        checker.verify()
        var out = blankTask
        #expect(lk_ingress_pop(q, &out) == LK_POP_EMPTY)
        #expect(lk_ingress_is_empty(q))
    }

    /// The lock-free and chunked kinds notify the loop on every push; the per-producer kind only when it
    /// announces a record the loop does not hold (its first push, here), which is what saves the fence.
    @Test(arguments: ingressKinds)
    func notificationsPerPush(kind: lk_ingress_kind) throws {
        let (q, wake) = try makeIngressOnASleepingWake(kind)
        defer { lk_ingress_destroy(q); lk_wake_destroy(wake) }
        var results: [Int32] = []
        for i in 0..<100 {
            var task = makeTask(i)
            var wakeResult: Int32 = -99
            #expect(lk_ingress_push(q, &task, &wakeResult) == 0)
            results.append(wakeResult)
        }
        #expect(results.first == 1, "the first push found the loop asleep and wrote the eventfd")
        #expect(results.dropFirst().allSatisfy { $0 == 0 }, "later ones were deduplicated or not needed")
        #expect(wakeRequests(wake) == (kind == LK_INGRESS_PER_PRODUCER ? 1 : 100))
        #expect(drain(q) == Array(0..<100))
    }
}

// MARK: - Submitting: gate and push in one call

@Suite struct SubmitTests {
    /// lk_ingress_submit queues while the gate is open (notifying as the push would), and refuses with
    /// -ESHUTDOWN, queueing nothing, once it is closed; the fast path (registered record, room in the
    /// segment) and the general path answer alike, across segment boundaries.
    @Test(arguments: ingressKinds)
    func submitQueuesWhileOpenAndRefusesOnceClosed(kind: lk_ingress_kind) throws {
        let (q, wake) = try makeIngressOnASleepingWake(kind)
        defer { lk_ingress_destroy(q); lk_wake_destroy(wake) }
        var g: OpaquePointer?
        try #require(lk_gate_create(&g) == 0)
        let gate = try #require(g)
        defer { lk_gate_destroy(gate) }
        var results: [Int32] = []
        for i in 0..<300 { // crosses two segment boundaries of the per-producer queue
            let t = makeTask(i)
            results.append(lk_ingress_submit(q, gate, t.words.0, t.words.1, t.words.2))
        }
        #expect(results.first == LK_SUBMIT_WOKE, "the loop slept: the first submit wrote the eventfd")
        #expect(results.dropFirst().allSatisfy { $0 == 0 })
        #expect(drain(q) == Array(0..<300))
        lk_gate_close(gate)
        let t = makeTask(300)
        #expect(lk_ingress_submit(q, gate, t.words.0, t.words.1, t.words.2) == -ESHUTDOWN)
        #expect(lk_ingress_is_empty(q), "a refused submit queues nothing")
    }

    /// The push without the gate, for callers that admit work their own way.
    @Test(arguments: ingressKinds)
    func pushWordsQueuesInOrder(kind: lk_ingress_kind) throws {
        let q = try makeIngress(kind)
        defer { lk_ingress_destroy(q) }
        for i in 0..<300 {
            let t = makeTask(i)
            #expect(lk_ingress_push_words(q, t.words.0, t.words.1, t.words.2) == 0)
        }
        #expect(drain(q) == Array(0..<300))
    }
}

// MARK: - The per-producer kind

@Suite struct PerProducerIngressTests {
    /// Producer handles not bound to this thread, so one thread can play many producers deterministically.
    final class Handles {
        let q: OpaquePointer
        private(set) var producers: [OpaquePointer] = []
        init(_ q: OpaquePointer) { self.q = q }

        func attach(_ count: Int) throws {
            for _ in 0..<count { producers.append(try #require(lk_ingress_attach_producer_for_testing(q))) }
        }

        @discardableResult
        func push(_ producer: Int, _ sequence: Int, wakeResult: UnsafeMutablePointer<Int32>? = nil) -> Int32 {
            var task = makeTask(producer: producer, sequence: sequence)
            return lk_ingress_push_from_for_testing(q, producers[producer], &task, wakeResult)
        }
    }

    /// Test producer handles exist only for the per-producer kind: the other kinds refuse to attach one and count
    /// no producers.
    @Test func testHandlesAreForThePerProducerKindOnly() throws {
        for kind in [LK_INGRESS_LOCK_FREE, LK_INGRESS_CHUNKED] {
            let q = try makeIngress(kind)
            #expect(lk_ingress_attach_producer_for_testing(q) == nil, "\(kind.testDescription)")
            #expect(lk_ingress_producer_count(q) == 0)
            lk_ingress_destroy(q)
        }
    }

    /// Each drain gives every producer with work an equal share of the budget, in turn.
    @Test func drainsProducersRoundRobinWithinTheBudget() throws {
        let q = try makeIngress(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q) }
        let h = Handles(q)
        try h.attach(3)
        for s in 0..<300 { for p in 0..<3 { h.push(p, s) } }
        var batch = [lk_task](repeating: blankTask, count: 30)
        var next = [0, 0, 0]
        for round in 0..<30 {
            let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 30, nil) }
            #expect(n == 30, "round \(round)")
            var perProducer = [0, 0, 0]
            for i in 0..<n {
                let (p, s) = try #require(readTask(batch[i]))
                #expect(s == next[p], "producer \(p) out of order")
                next[p] = s + 1
                perProducer[p] += 1
            }
            #expect(perProducer == [10, 10, 10], "round \(round): shares \(perProducer)")
        }
        #expect(next == [300, 300, 300])
        #expect(lk_ingress_is_empty(q))
    }

    /// One producer cannot starve the others: with one busy and one occasional producer, the occasional
    /// producer's task is taken in the first drain after it is pushed.
    @Test func aBusyProducerDoesNotStarveAnother() throws {
        let q = try makeIngress(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q) }
        let h = Handles(q)
        try h.attach(2)
        for s in 0..<10_000 { h.push(0, s) }
        var batch = [lk_task](repeating: blankTask, count: 64)
        for round in 0..<20 {
            h.push(1, round)
            let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 64, nil) }
            let fromOne = (0..<n).filter { readTask(batch[$0])?.producer == 1 }.count
            #expect(fromOne == 1, "round \(round): the other producer's task waited")
        }
    }

    /// A record the loop holds needs no notification; one it gave up (idle, or around a park) announces
    /// itself again on its next push.
    @Test func announcesAgainAfterTheLoopGivesItUp() throws {
        let (q, wake) = try makeIngressOnASleepingWake(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q); lk_wake_destroy(wake) }
        let h = Handles(q)
        try h.attach(1)
        h.push(0, 0)
        #expect(wakeRequests(wake) == 1)
        #expect(drainTasks(q).count == 1) // the loop now holds the record
        h.push(0, 1)
        h.push(0, 2)
        #expect(wakeRequests(wake) == 1, "held: no notification")
        #expect(drainTasks(q).map(\.sequence) == [1, 2])

        // Idle: after enough empty visits the loop retires the record.
        var batch = blankTask
        for _ in 0..<256 { _ = lk_ingress_pop_batch(q, &batch, 1, nil) }
        h.push(0, 3)
        #expect(wakeRequests(wake) == 2, "retired while idle: announced again")
        #expect(drainTasks(q).map(\.sequence) == [3])

        // A park gives up every held record.
        lk_ingress_prepare_park(q)
        #expect(lk_ingress_is_empty(q))
        lk_ingress_finish_park(q)
        h.push(0, 4)
        #expect(wakeRequests(wake) == 3, "given up at the park: announced again")
        #expect(drainTasks(q).map(\.sequence) == [4])
    }

    /// A push that lands between prepare_park and the re-check is seen by the re-check, and the loop keeps
    /// (or gets back) the record: nothing waits for a wakeup that will not come.
    @Test func aPushDuringTheParkIsSeenByTheRecheck() throws {
        let q = try makeIngress(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q) }
        let h = Handles(q)
        try h.attach(2)
        h.push(0, 0)
        h.push(1, 0)
        #expect(drainTasks(q).count == 2)
        lk_ingress_prepare_park(q)
        h.push(0, 1)
        #expect(!lk_ingress_is_empty(q), "the re-check sees the task")
        lk_ingress_finish_park(q)
        #expect(drainTasks(q).map(\.producer) == [0])
        #expect(lk_ingress_is_empty(q))
    }

    /// After PP_FAST_AFTER tasks the loop lets the producer skip its fence; giving the record up then costs
    /// a heavy barrier, and the protocol still announces the next push.
    @Test func aFastRecordIsGivenUpSafely() throws {
        let (q, wake) = try makeIngressOnASleepingWake(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q); lk_wake_destroy(wake) }
        let h = Handles(q)
        try h.attach(1)
        var next = 0
        for _ in 0..<20 { // 20 x 1,000 tasks: well past the threshold
            for _ in 0..<1_000 { h.push(0, next); next += 1 }
            #expect(drainTasks(q, max: 256).count == 1_000)
        }
        #expect(wakeRequests(wake) == 1)
        lk_ingress_prepare_park(q)
        #expect(lk_ingress_is_empty(q))
        lk_ingress_finish_park(q)
        h.push(0, next)
        #expect(wakeRequests(wake) == 2, "the fast record was given up and announced itself again")
        #expect(drainTasks(q).map(\.sequence) == [next])
    }

    /// A thread's records survive its exit until drained: tasks pushed just before the exit still arrive,
    /// in order, and the records are then freed.
    @Test func tasksOfExitedThreadsAreDrainedThenReclaimed() throws {
        let q = try makeIngress(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q) }
        let shared = SharedHandle(q)
        let threads = 8, perThread = 1_000
        runOnThreads(threads) { t in
            for s in 0..<perThread {
                var task = makeTask(producer: t, sequence: s)
                precondition(lk_ingress_push(shared.pointer, &task, nil) == 0)
            }
        }
        #expect(lk_ingress_producer_count(q) == threads, "records outlive their threads until drained")
        var checker = ProducerOrderChecker(producers: threads, perProducer: perThread)
        var batch = [lk_task](repeating: blankTask, count: 100)
        let reclaimed = waitUntil {
            let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 100, nil) }
            for i in 0..<n { checker.accept(batch[i]) }
            return checker.isComplete && lk_ingress_producer_count(q) == 0
        }
        checker.verify()
        #expect(reclaimed, "\(lk_ingress_producer_count(q)) records left after draining")
    }

    /// A test handle's exit behaves as a thread's: the loop drains what it pushed, then frees it.
    @Test func anExitedProducerIsDrainedThenFreed() throws {
        let q = try makeIngress(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q) }
        let h = Handles(q)
        try h.attach(2)
        for s in 0..<200 { h.push(0, s); h.push(1, s) }
        lk_ingress_exit_producer_for_testing(h.producers[0])
        #expect(lk_ingress_producer_count(q) == 2)
        let tasks = drainTasks(q, max: 7)
        #expect(tasks.filter { $0.producer == 0 }.map(\.sequence) == Array(0..<200))
        #expect(tasks.filter { $0.producer == 1 }.map(\.sequence) == Array(0..<200))
        #expect(lk_ingress_producer_count(q) == 1, "the exited producer's record is freed once drained")
    }

    /// Threads may outlive the queue they pushed to: destroying it hands their records to them, and a later
    /// push to another queue (or their exit) frees them. ASan checks the memory side.
    @Test func threadsOutliveADestroyedIngress() throws {
        let ready = Atomic<Int>(0)
        let stage = Atomic<Int>(0)
        let first = try makeIngress(LK_INGRESS_PER_PRODUCER)
        let second = try makeIngress(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(second) }
        let a = SharedHandle(first), b = SharedHandle(second)
        let group = ThreadGroup(4) { t in
            var task = makeTask(producer: t, sequence: 0)
            precondition(lk_ingress_push(a.pointer, &task, nil) == 0)
            ready.add(1, ordering: .releasing)
            while stage.load(ordering: .acquiring) == 0 { sched_yield() }
            precondition(lk_ingress_push(b.pointer, &task, nil) == 0) // prunes the record of `first`
        }
        #expect(waitUntil { ready.load(ordering: .acquiring) == 4 })
        #expect(drainTasks(first).count == 4)
        lk_ingress_destroy(first)
        stage.store(1, ordering: .releasing)
        group.join()
        #expect(drainTasks(second).count == 4)
        #expect(waitUntil { _ = drainTasks(second); return lk_ingress_producer_count(second) == 0 })
    }

    /// Many short-lived threads pushing while the loop drains: every task arrives once, in order per thread,
    /// and every record is reclaimed. (ThreadSanitizer runs this too.)
    @Test func churningThreadsLoseNothing() throws {
        let q = try makeIngress(LK_INGRESS_PER_PRODUCER)
        defer { lk_ingress_destroy(q) }
        let shared = SharedHandle(q)
        let waves = stressCount(20, minimum: 4), perWave = 6, perThread = 300
        let producers = waves * perWave
        let done = Atomic<Int>(0)
        try startDetachedThread {
            for wave in 0..<waves {
                runOnThreads(perWave) { i in
                    let producer = wave * perWave + i
                    for s in 0..<perThread {
                        var task = makeTask(producer: producer, sequence: s)
                        precondition(lk_ingress_push(shared.pointer, &task, nil) == 0)
                    }
                }
            }
            done.store(1, ordering: .releasing)
        }
        var checker = ProducerOrderChecker(producers: producers, perProducer: perThread)
        var batch = [lk_task](repeating: blankTask, count: 64)
        let finished = waitUntil(seconds: 60) {
            let n = batch.withUnsafeMutableBufferPointer { lk_ingress_pop_batch(q, $0.baseAddress!, 64, nil) }
            for i in 0..<n { checker.accept(batch[i]) }
            return done.load(ordering: .acquiring) == 1 && checker.isComplete && lk_ingress_producer_count(q) == 0
        }
        checker.verify()
        #expect(finished, "\(lk_ingress_producer_count(q)) records left")
    }
}
