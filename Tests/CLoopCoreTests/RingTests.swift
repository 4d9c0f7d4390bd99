// Tests for lk_ring (lk_ring.h): the bounded microtask ring with its mutex-guarded overflow.
//
// The clear-box tests run a small testing ring (lk_ring_create_for_testing) at every start offset of every
// slot position and near the 64-bit counter wrap, and compare each step with a model of the documented
// protocol: a push goes to the ring only while the overflow is empty and the ring has room; the consumer pops
// the ring first and the overflow only when the ring is empty; length == ring tasks + unconsumed overflow
// tasks; is_empty == (length == 0).

import CLoopCore
import Synchronization
import Glibc
import Testing
import TestSupport

// MARK: - Helpers

private func makeTestingRing(capacity: UInt32, start: UInt64,
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> OpaquePointer {
    var ring: OpaquePointer?
    let rc = lk_ring_create_for_testing(&ring, capacity, start)
    try #require(rc == 0, "lk_ring_create_for_testing(\(capacity), \(start))", sourceLocation: sourceLocation)
    return try #require(ring, sourceLocation: sourceLocation)
}

private func makeProductionRing(sourceLocation: SourceLocation = #_sourceLocation) throws -> OpaquePointer {
    var ring: OpaquePointer?
    let rc = lk_ring_create(&ring)
    try #require(rc == 0, sourceLocation: sourceLocation)
    return try #require(ring, sourceLocation: sourceLocation)
}

/// Start offsets for a ring of `capacity`: every slot position, plus offsets where the free-running 64-bit
/// head/tail wrap during the test (and one around the signed-difference boundary at 2^63).
private func startOffsets(capacity: Int) -> [UInt64] {
    let c = UInt64(capacity)
    return Array(0..<c) + [
        UInt64.max - c / 2,
        UInt64.max - c + 1,
        UInt64.max,
        UInt64.max - 2 * c - 3,
        (UInt64(1) << 63) - c / 2,
    ]
}

private let ringCapacities: [UInt32] = [2, 4, 8, 16, 32]

/// A model of a single-threaded ring and the checks that compare the real ring with it at every step.
private struct RingModel {
    let ring: OpaquePointer
    let capacity: Int
    let label: String
    var inRing = 0
    var inOverflow = 0
    var expected: [Int] = [] // sequences still queued, oldest at expectedHead
    var expectedHead = 0
    var nextSequence = 0
    var mismatches = 0

    init(ring: OpaquePointer, capacity: Int, label: String) {
        self.ring = ring
        self.capacity = capacity
        self.label = label
    }

    var count: Int { inRing + inOverflow }

    /// Asserts length, overflow_length and is_empty against the model, and is_empty == (length == 0).
    mutating func checkState(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let length = lk_ring_length(ring)
        let overflow = lk_ring_overflow_length(ring)
        let empty = lk_ring_is_empty(ring)
        let ok = length == count && overflow == inOverflow && empty == (length == 0) && empty == (count == 0)
        if !ok {
            mismatches += 1
            // Only the first few mismatches per model are reported, to keep a failing run readable.
            if mismatches <= 5 {
                Issue.record("""
                    \(label) after \(step): length \(length) (model \(count)), overflow_length \(overflow) \
                    (model \(inOverflow)), is_empty \(empty)
                    """, sourceLocation: sourceLocation)
            }
        }
    }

    mutating func push(_ n: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        for _ in 0..<n {
            var task = makeTask(nextSequence)
            let rc = lk_ring_push(ring, &task)
            #expect(rc == 0, "\(label): push #\(nextSequence) returned \(rc)", sourceLocation: sourceLocation)
            if inOverflow == 0 && inRing < capacity { inRing += 1 } else { inOverflow += 1 }
            expected.append(nextSequence)
            nextSequence += 1
        }
        checkState("push \(n)", sourceLocation: sourceLocation)
    }

    private mutating func consumeModel(_ sequence: Int, sourceLocation: SourceLocation) {
        let want = expected[expectedHead]
        expectedHead += 1
        if inRing > 0 { inRing -= 1 } else { inOverflow -= 1 }
        if sequence != want {
            mismatches += 1
            Issue.record("\(label): popped sequence \(sequence), expected \(want) (FIFO)", sourceLocation: sourceLocation)
        }
    }

    /// lk_ring_pop: OK with the oldest task, or EMPTY exactly when the model is empty.
    mutating func popOne(sourceLocation: SourceLocation = #_sourceLocation) {
        let lengthBefore = lk_ring_length(ring)
        var out = blankTask
        let status = lk_ring_pop(ring, &out)
        #expect((status == LK_POP_EMPTY) == (lengthBefore == 0),
                "\(label): pop returned \(status) with length \(lengthBefore)", sourceLocation: sourceLocation)
        if count == 0 {
            #expect(status == LK_POP_EMPTY, "\(label): pop on empty returned \(status)", sourceLocation: sourceLocation)
        } else {
            #expect(status == LK_POP_OK, "\(label): pop with \(count) queued returned \(status)",
                    sourceLocation: sourceLocation)
            if status == LK_POP_OK { consumeModel(sequenceOf(out), sourceLocation: sourceLocation) }
        }
        checkState("pop", sourceLocation: sourceLocation)
    }

    /// lk_ring_pop_batch: exactly min(max, count) tasks, oldest first, never busy.
    mutating func popBatch(_ max: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        var out = [lk_task](repeating: blankTask, count: max + 1)
        var busy = true
        let n = out.withUnsafeMutableBufferPointer { lk_ring_pop_batch(ring, $0.baseAddress!, max, &busy) }
        let want = Swift.min(max, count)
        #expect(n == want, "\(label): pop_batch(\(max)) returned \(n) with \(count) queued", sourceLocation: sourceLocation)
        #expect(busy == false, "\(label): pop_batch(\(max)) reported busy", sourceLocation: sourceLocation)
        #expect(out[max].words == blankTask.words, "\(label): pop_batch wrote past max", sourceLocation: sourceLocation)
        for i in 0..<Swift.min(n, want) { consumeModel(sequenceOf(out[i]), sourceLocation: sourceLocation) }
        checkState("pop_batch \(max)", sourceLocation: sourceLocation)
    }

    /// Drains: one pop, then batches of 3, checking the state at every step; ends with EMPTY.
    mutating func drainInSteps(sourceLocation: SourceLocation = #_sourceLocation) {
        popOne(sourceLocation: sourceLocation)
        var rounds = 0
        while count > 0 && rounds <= expected.count {
            popBatch(3, sourceLocation: sourceLocation)
            rounds += 1
        }
        #expect(count == 0, "\(label): drain did not finish", sourceLocation: sourceLocation)
        popOne(sourceLocation: sourceLocation) // EMPTY
        popBatch(3, sourceLocation: sourceLocation) // 0, not busy
    }
}

/// Runs `body` once for every start offset of `startOffsets`, each time on a fresh testing ring of `capacity`
/// slots whose positions start there, with its model (labelled with capacity, start and `label`).
private func forEachStartOffset(capacity: UInt32, label: String = "",
                                _ body: (_ ring: OpaquePointer, _ model: inout RingModel, _ start: UInt64) throws -> Void)
    throws {
    let cap = Int(capacity)
    for start in startOffsets(capacity: cap) {
        let ring = try makeTestingRing(capacity: capacity, start: start)
        defer { lk_ring_destroy(ring) }
        var model = RingModel(ring: ring, capacity: cap, label: "cap \(cap) start \(start)\(label)")
        try body(ring, &model, start)
    }
}

/// SplitMix64: a tiny deterministic PRNG so randomized sequences are reproducible.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum RingFlavor: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case testing4 = "testing ring, capacity 4"
    case testing64 = "testing ring, capacity 64"
    case production = "production ring"
    var testDescription: String { rawValue }
}

// MARK: - Tests

@Suite struct RingTests {
    // MARK: Clear-box, every start offset

    /// At every capacity and every start offset (so that positions and slot sequence numbers wrap), k tasks pushed
    /// onto an empty ring fill the ring, then the overflow, and come out in order through pops and batches, with
    /// length, overflow length and emptiness right at every step.
    @Test("push k from empty, then drain in steps: state matches the model at every step",
          arguments: ringCapacities)
    func pushThenDrainInStepsAtEveryStartOffset(capacity: UInt32) throws {
        let cap = Int(capacity)
        try forEachStartOffset(capacity: capacity) { ring, model, start in
            #expect(lk_ring_capacity(ring) == capacity)
            model.checkState("create")
            // Two rounds, so the second runs from positions the first advanced (and wrapped).
            for _ in 0..<2 {
                for k in [0, 1, cap - 1, cap, cap + 1, 2 * cap + 3] {
                    model.push(k)
                    #expect(lk_ring_overflow_length(ring) == Swift.max(0, k - cap),
                            "cap \(cap) start \(start): overflow after pushing \(k) from empty")
                    #expect(lk_ring_length(ring) == k, "cap \(cap) start \(start): length after pushing \(k)")
                    model.drainInSteps()
                }
            }
            #expect(model.mismatches == 0)
        }
    }

    /// While the overflow holds tasks, pushes go to the overflow even when a ring slot is free, so order is kept
    /// across ring and overflow; once the overflow is drained the ring takes pushes again; batches may span ring
    /// and overflow.
    @Test("pushes while the overflow is partly drained stay FIFO across ring and overflow",
          arguments: ringCapacities)
    func interleavedPushPopAcrossRingAndOverflow(capacity: UInt32) throws {
        let cap = Int(capacity)
        try forEachStartOffset(capacity: capacity) { ring, model, start in
            model.push(cap + 5) // ring full, overflow 5
            #expect(lk_ring_overflow_length(ring) == 5)
            model.popOne() // frees a ring slot, but the overflow is active
            model.push(2) // must go to the overflow: FIFO
            #expect(lk_ring_overflow_length(ring) == 7, "cap \(cap) start \(start): push with a free slot and active overflow")
            while model.inRing > 0 { model.popOne() } // ring drained, overflow untouched
            #expect(lk_ring_overflow_length(ring) == 7)
            model.popBatch(3) // overflow partly drained: 4 left, ring empty
            #expect(lk_ring_overflow_length(ring) == 4)
            #expect(lk_ring_length(ring) == 4)
            model.push(3) // still to the overflow
            #expect(lk_ring_overflow_length(ring) == 7)
            model.popOne()
            model.push(cap + 1) // all to the overflow, though the ring is empty
            #expect(lk_ring_overflow_length(ring) == cap + 7)
            model.popBatch(cap + 7) // overflow fully drained in one batch
            #expect(lk_ring_overflow_length(ring) == 0)
            #expect(lk_ring_is_empty(ring))
            model.push(cap) // back to the ring
            #expect(lk_ring_overflow_length(ring) == 0, "cap \(cap) start \(start): ring reopened after overflow drained")
            model.push(1)
            #expect(lk_ring_overflow_length(ring) == 1)
            model.popBatch(cap / 2 + 1) // batch from the ring only
            model.push(2) // overflow again
            model.popBatch(cap + 10) // batch spanning ring and overflow
            model.drainInSteps()
            #expect(model.mismatches == 0)
        }
    }

    /// Random sequences of pushes, pops and batches at every capacity and start offset give exactly what a FIFO
    /// model gives.
    @Test("randomized push/pop/pop_batch sequences match the model", arguments: ringCapacities)
    func randomizedOperationsMatchModel(capacity: UInt32) throws {
        let cap = Int(capacity)
        try forEachStartOffset(capacity: capacity, label: " (random)") { _, model, start in
            var rng = SplitMix64(state: start &* 31 &+ UInt64(cap))
            for _ in 0..<150 {
                switch rng.next() % 4 {
                case 0, 1: model.push(Int(rng.next() % UInt64(cap + 3)))
                case 2: model.popOne()
                default: model.popBatch(1 + Int(rng.next() % UInt64(cap + 2)))
                }
            }
            model.drainInSteps()
            #expect(model.mismatches == 0)
        }
    }

    // MARK: is_empty vs. length after a partial overflow drain

    /// is_empty agrees with length once the overflow has been partly and then fully drained: it counts the
    /// overflow's unconsumed tasks, not the tasks it ever held, so an empty ring reads empty.
    @Test func isEmptyAgreesWithLengthAfterPartialOverflowDrain() throws {
        let ring = try makeProductionRing()
        defer { lk_ring_destroy(ring) }
        let capacity = Int(LK_RING_CAPACITY)
        #expect(lk_ring_capacity(ring) == LK_RING_CAPACITY)
        let total = capacity + capacity / 2
        for i in 0..<total {
            var task = makeTask(i)
            try #require(lk_ring_push(ring, &task) == 0)
        }
        try #require(lk_ring_overflow_length(ring) > 0, "the pushes must reach the overflow")
        #expect(lk_ring_overflow_length(ring) == total - capacity)
        #expect(lk_ring_length(ring) == total)

        var next = 0
        var batch = [lk_task](repeating: blankTask, count: 7)
        var disagreements = 0
        var firstDisagreement = ""
        while next < total {
            var busy = true
            let n = batch.withUnsafeMutableBufferPointer { lk_ring_pop_batch(ring, $0.baseAddress!, 7, &busy) }
            #expect(n == min(7, total - next))
            #expect(!busy)
            if n == 0 { break }
            for i in 0..<n where sequenceOf(batch[i]) != next + i {
                Issue.record("FIFO: expected \(next + i), got \(sequenceOf(batch[i]))")
            }
            next += n
            let length = lk_ring_length(ring)
            let empty = lk_ring_is_empty(ring)
            if empty != (length == 0) || length != total - next {
                disagreements += 1
                if firstDisagreement.isEmpty {
                    firstDisagreement = "after \(next) popped: is_empty \(empty), length \(length), "
                        + "overflow_length \(lk_ring_overflow_length(ring))"
                }
            }
        }
        #expect(disagreements == 0, "\(disagreements) steps disagree; first: \(firstDisagreement)")
        #expect(next == total)
        #expect(lk_ring_length(ring) == 0)
        #expect(lk_ring_is_empty(ring))
        #expect(lk_ring_overflow_length(ring) == 0)
        var out = blankTask
        #expect(lk_ring_pop(ring, &out) == LK_POP_EMPTY)

        // The overflow is drained: the next push goes to the ring proper and comes back out.
        var task = makeTask(total)
        #expect(lk_ring_push(ring, &task) == 0)
        #expect(lk_ring_overflow_length(ring) == 0)
        #expect(lk_ring_length(ring) == 1)
        #expect(!lk_ring_is_empty(ring))
        #expect(lk_ring_pop(ring, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == total)
        #expect(lk_ring_is_empty(ring))
        #expect(lk_ring_pop(ring, &out) == LK_POP_EMPTY)
    }

    // MARK: Busy window

    /// A claimed, unpublished slot makes pop answer BUSY (never EMPTY) and is_empty false until it is published;
    /// the claim takes the start position.
    @Test("a claimed, unpublished slot makes pop BUSY (never EMPTY) until it is published",
          arguments: [UInt64(0), 3, UInt64.max, UInt64.max - 1])
    func claimedSlotIsBusyNotEmpty(start: UInt64) throws {
        for flavor in [RingFlavor.testing4, .production] {
            let ring = flavor == .production ? try makeProductionRing() : try makeTestingRing(capacity: 4, start: start)
            defer { lk_ring_destroy(ring) }
            let origin = flavor == .production ? 0 : start
            var position: UInt64 = 12345
            try #require(lk_ring_claim_for_testing(ring, &position) == 0)
            #expect(position == origin, "\(flavor): the first claim takes the start position")

            var out = blankTask
            for _ in 0..<3 { #expect(lk_ring_pop(ring, &out) == LK_POP_BUSY) }
            #expect(!lk_ring_is_empty(ring))
            #expect(lk_ring_length(ring) == 1)
            var batch = [lk_task](repeating: blankTask, count: 4)
            var busy = false
            let n = batch.withUnsafeMutableBufferPointer { lk_ring_pop_batch(ring, $0.baseAddress!, 4, &busy) }
            #expect(n == 0)
            #expect(busy, "pop_batch must report that it stopped on a push in flight")

            var task = makeTask(77)
            lk_ring_publish_for_testing(ring, position, &task)
            #expect(lk_ring_length(ring) == 1)
            #expect(lk_ring_pop(ring, &out) == LK_POP_OK)
            #expect(sequenceOf(out) == 77)
            #expect(lk_ring_pop(ring, &out) == LK_POP_EMPTY)
            #expect(lk_ring_is_empty(ring))
            #expect(lk_ring_length(ring) == 0)
        }
    }

    /// A task pushed after a claim never overtakes it: pop is BUSY until the claim is published, then both come out
    /// in position order.
    @Test("a task pushed after a claim pops only after the claimed one",
          arguments: [UInt64(0), 2, UInt64.max])
    func taskPushedAfterClaimWaitsForClaimedOne(start: UInt64) throws {
        let ring = try makeTestingRing(capacity: 4, start: start)
        defer { lk_ring_destroy(ring) }
        var position: UInt64 = 0
        try #require(lk_ring_claim_for_testing(ring, &position) == 0)
        var later = makeTask(2)
        #expect(lk_ring_push(ring, &later) == 0)
        #expect(lk_ring_length(ring) == 2)
        #expect(lk_ring_overflow_length(ring) == 0)

        var out = blankTask
        #expect(lk_ring_pop(ring, &out) == LK_POP_BUSY, "the published later task must not overtake the claim")
        var batch = [lk_task](repeating: blankTask, count: 4)
        var busy = false
        let n = batch.withUnsafeMutableBufferPointer { lk_ring_pop_batch(ring, $0.baseAddress!, 4, &busy) }
        #expect(n == 0)
        #expect(busy)

        var claimed = makeTask(1)
        lk_ring_publish_for_testing(ring, position, &claimed)
        let m = batch.withUnsafeMutableBufferPointer { lk_ring_pop_batch(ring, $0.baseAddress!, 4, &busy) }
        #expect(m == 2)
        #expect(!busy)
        #expect(sequenceOf(batch[0]) == 1)
        #expect(sequenceOf(batch[1]) == 2)
        #expect(lk_ring_is_empty(ring))
    }

    /// A claim is refused (-EBUSY) when the ring is full, and while the overflow holds tasks even if a slot is
    /// free.
    @Test func claimFailsWhenRingFullOrOverflowActive() throws {
        let ring = try makeTestingRing(capacity: 2, start: UInt64.max)
        defer { lk_ring_destroy(ring) }
        var a = makeTask(0), b = makeTask(1), c = makeTask(2)
        #expect(lk_ring_push(ring, &a) == 0)
        #expect(lk_ring_push(ring, &b) == 0)
        var position: UInt64 = 0
        #expect(lk_ring_claim_for_testing(ring, &position) == negErrno(EBUSY), "ring full")
        #expect(lk_ring_push(ring, &c) == 0)
        #expect(lk_ring_overflow_length(ring) == 1)
        var out = blankTask
        #expect(lk_ring_pop(ring, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 0)
        #expect(lk_ring_claim_for_testing(ring, &position) == negErrno(EBUSY), "a free slot, but the overflow is active")
        #expect(lk_ring_pop(ring, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 1)
        #expect(lk_ring_pop(ring, &out) == LK_POP_OK)
        #expect(sequenceOf(out) == 2)
        #expect(lk_ring_pop(ring, &out) == LK_POP_EMPTY)
    }

    // MARK: Concurrency

    /// P producers and one consumer taking single pops and batches in turn, on a small wrapping ring and on the
    /// production ring: every task once, in order per producer, and the ring and its overflow end empty.
    @Test("P producers, one consumer: per-producer FIFO, exact totals, empty at the end",
          arguments: [2, 4, 8], [RingFlavor.testing64, .production])
    func concurrentProducersOneConsumer(producers: Int, flavor: RingFlavor) throws {
        let ring = flavor == .production ? try makeProductionRing() : try makeTestingRing(capacity: 64, start: UInt64.max - 40)
        defer { lk_ring_destroy(ring) }
        let shared = SharedHandle(ring)
        var busy = false
        let checker = runProducersWithConsumer(
            producers: producers, perProducer: 20_000,
            push: { lk_ring_push(shared.pointer, $0) },
            drain: alternatingDrain(batchSize: 48, popBatch: { lk_ring_pop_batch(ring, $0, $1, &busy) },
                                    pop: { lk_ring_pop(ring, $0) }))
        checker.verify()
        var out = blankTask
        #expect(lk_ring_pop(ring, &out) == LK_POP_EMPTY)
        #expect(lk_ring_is_empty(ring))
        #expect(lk_ring_length(ring) == 0)
        #expect(lk_ring_overflow_length(ring) == 0)
    }

    /// After concurrent producers have joined, length is exact (ring full, the rest in the overflow) and a drain
    /// never meets BUSY, with length and emptiness right as it goes, and every task once, in order per producer.
    @Test("concurrent pushes, then a quiescent drain: exact length, never BUSY, per-producer FIFO",
          arguments: [RingFlavor.testing64, .production])
    func concurrentPushesThenQuiescentDrain(flavor: RingFlavor) throws {
        let ring = flavor == .production ? try makeProductionRing() : try makeTestingRing(capacity: 64, start: UInt64.max - 7)
        defer { lk_ring_destroy(ring) }
        let shared = SharedHandle(ring)
        let failures = FailureCounter()
        startProducers(4, perProducer: 5_000, failures: failures) { lk_ring_push(shared.pointer, $0) }.join()
        #expect(failures.failures == 0)
        let capacity = Int(lk_ring_capacity(ring))
        #expect(lk_ring_length(ring) == 20_000)
        #expect(lk_ring_overflow_length(ring) == 20_000 - capacity, "the ring is full, the rest is in the overflow")
        #expect(!lk_ring_is_empty(ring))
        var checker = ProducerOrderChecker(producers: 4, perProducer: 5_000)
        var out = blankTask
        var notOK = 0
        while checker.received < checker.total {
            guard lk_ring_pop(ring, &out) == LK_POP_OK else {
                notOK += 1
                break
            }
            checker.accept(out)
            if checker.received % 997 == 0 {
                #expect(lk_ring_length(ring) == checker.total - checker.received)
                #expect(!lk_ring_is_empty(ring))
            }
        }
        #expect(notOK == 0, "nothing is in flight after the producers joined")
        checker.verify()
        #expect(lk_ring_pop(ring, &out) == LK_POP_EMPTY)
        #expect(lk_ring_is_empty(ring))
        #expect(lk_ring_length(ring) == 0)
    }

    /// `lk_ring_length` from a thread that is neither producer nor consumer, while both run: every snapshot
    /// lies between 0 and what was pushed, never a wrapped `tail - head` (which a head read after the tail
    /// it is subtracted from would give).
    @Test func lengthReadFromAThirdThreadNeverWraps() throws {
        let ring = try makeTestingRing(capacity: 64, start: UInt64.max - 200)
        defer { lk_ring_destroy(ring) }
        let shared = SharedHandle(ring)
        let total = stressCount(200_000, minimum: 20_000)
        let done = Atomic<Bool>(false)
        let worst = Atomic<Int>(0)
        let group = ThreadGroup(2) { role in
            if role == 0 { // producer
                for i in 0..<total {
                    var t = makeTask(i)
                    precondition(lk_ring_push(shared.pointer, &t) == 0)
                }
                return
            }
            while !done.load(ordering: .acquiring) { // observer
                let length = lk_ring_length(shared.pointer)
                if length > worst.load(ordering: .relaxed) { worst.store(length, ordering: .relaxed) }
            }
        }
        var out = blankTask
        var popped = 0
        let drained = waitUntil(seconds: 60) {
            while lk_ring_pop(ring, &out) == LK_POP_OK { popped += 1 }
            return popped == total
        }
        done.store(true, ordering: .releasing)
        group.join()
        #expect(drained, "popped \(popped) of \(total)")
        #expect(worst.load(ordering: .relaxed) <= total, "a snapshot of \(worst.load(ordering: .relaxed)) tasks")
    }

    // MARK: Construction

    /// A testing ring whose capacity is not a power of two in 2 ... 2^20 is refused with -EINVAL and none is
    /// returned.
    @Test func invalidTestingConstructorArgumentsAreRejected() {
        for capacity: UInt32 in [0, 1, 3, 6, 12, 1 << 21, UInt32.max] {
            var ring: OpaquePointer?
            #expect(lk_ring_create_for_testing(&ring, capacity, 0) == negErrno(EINVAL), "capacity \(capacity)")
            #expect(ring == nil, "capacity \(capacity): no ring returned")
            if let ring { lk_ring_destroy(ring) }
        }
    }

    /// The smallest and largest testing capacities are accepted and start empty; the production ring has
    /// LK_RING_CAPACITY slots.
    @Test func boundaryTestingCapacitiesAreAccepted() throws {
        for capacity: UInt32 in [2, 1 << 20] {
            let ring = try makeTestingRing(capacity: capacity, start: UInt64.max)
            defer { lk_ring_destroy(ring) }
            #expect(lk_ring_capacity(ring) == capacity)
            #expect(lk_ring_is_empty(ring))
            #expect(lk_ring_length(ring) == 0)
        }
        let production = try makeProductionRing()
        defer { lk_ring_destroy(production) }
        #expect(lk_ring_capacity(production) == LK_RING_CAPACITY)
    }
}
