// Shared helpers for the queue tests (RingTests, MPSCTests, ChunkedQueueTests, IngressTests).
//
// Tasks carry (producer id, sequence) in words.0 / words.1, plus a check word derived from them so that a
// torn or mixed-up copy is detected, not just a reordering.

import CLoopCore
import Glibc
import Synchronization
import Testing
import TestSupport

// MARK: - Tasks

/// Generous bound for every wait loop: ThreadSanitizer runs are 5-10x slower than plain debug runs.
let queueTestTimeoutSeconds: Double = 30

private let taskCheckSalt: UInt = 0x9E37_79B9_7F4A_7C15 & UInt(truncatingIfNeeded: UInt64.max)

/// A task for (producer, sequence), with a check word in words.2.
func makeTask(producer: Int, sequence: Int) -> lk_task {
    let p = UInt(bitPattern: producer)
    let s = UInt(bitPattern: sequence)
    return lk_task(words: (p, s, (s &* taskCheckSalt &+ p) ^ ~p))
}

/// A task whose identity is only a sequence number (producer 0).
func makeTask(_ sequence: Int) -> lk_task { makeTask(producer: 0, sequence: sequence) }

/// The zeroed task used to pre-fill output buffers.
let blankTask = lk_task(words: (0, 0, 0))

/// (producer, sequence) of a task, or nil when its check words do not match (a torn or corrupted copy).
func readTask(_ task: lk_task) -> (producer: Int, sequence: Int)? {
    let (p, s, check) = task.words
    guard check == (s &* taskCheckSalt &+ p) ^ ~p else { return nil }
    return (Int(bitPattern: p), Int(bitPattern: s))
}

/// The sequence of a producer-0 task, or -1 when the task is not a valid producer-0 task.
func sequenceOf(_ task: lk_task) -> Int {
    guard let (p, s) = readTask(task), p == 0 else { return -1 }
    return s
}

/// The C constant's raw value as a Swift Int32 (-EINVAL and friends).
func negErrno(_ code: Int32) -> Int32 { -code }

// MARK: - Threads

/// A C pointer (an opaque queue handle) handed to producer threads. The queues are documented thread-safe for
/// the operations the producers use (push), so sharing the handle is sound.
struct SharedHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

final class FailureCounter: Sendable {
    private let count = Atomic<Int>(0)
    private let firstCode = Atomic<Int>(0)

    func record(code: Int) {
        _ = firstCode.compareExchange(expected: 0, desired: code, ordering: .relaxed)
        count.add(1, ordering: .relaxed)
    }

    var failures: Int { count.load(ordering: .relaxed) }
    var firstFailureCode: Int { firstCode.load(ordering: .relaxed) }
}

/// A counter shared with producer threads.
final class AtomicCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

// MARK: - Checking a multi-producer stream

/// Consumer-side bookkeeping for P producers that each push sequences 0, 1, 2, ... in order.
struct ProducerOrderChecker {
    let producers: Int
    let perProducer: Int
    private(set) var next: [Int]
    private(set) var received = 0
    private(set) var violations = 0
    private(set) var firstViolation: String?

    init(producers: Int, perProducer: Int) {
        self.producers = producers
        self.perProducer = perProducer
        next = Array(repeating: 0, count: producers)
    }

    var total: Int { producers * perProducer }
    var isComplete: Bool { received == total }

    mutating func accept(_ task: lk_task) {
        received += 1
        guard let (p, s) = readTask(task) else {
            fail("corrupt task \(task.words) as task #\(received)")
            return
        }
        guard p >= 0, p < producers else {
            fail("unknown producer \(p) (sequence \(s))")
            return
        }
        if s != next[p] {
            fail("producer \(p): expected sequence \(next[p]), got \(s)")
        }
        next[p] = s + 1
    }

    private mutating func fail(_ message: String) {
        violations += 1
        if firstViolation == nil { firstViolation = message }
    }

    /// Asserts exact totals and per-producer FIFO.
    func verify(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(violations == 0, "\(violations) order violations; first: \(firstViolation ?? "-")",
                sourceLocation: sourceLocation)
        #expect(received == total, "received \(received) of \(total)", sourceLocation: sourceLocation)
        #expect(next == Array(repeating: perProducer, count: producers),
                "per-producer counts \(next)", sourceLocation: sourceLocation)
    }
}

/// Starts `producers` threads, each pushing the tasks (producer, 0 ..< perProducer) in order through `push`,
/// which returns the C result code (negative: a failure, recorded in `failures`). The caller joins them.
func startProducers(_ producers: Int, perProducer: Int, failures: FailureCounter,
                    push: @Sendable @escaping (_ task: UnsafePointer<lk_task>) -> Int32) -> ThreadGroup {
    ThreadGroup(producers) { producer in
        for sequence in 0..<perProducer {
            var task = makeTask(producer: producer, sequence: sequence)
            let rc = push(&task)
            if rc < 0 { failures.record(code: Int(rc)) }
        }
    }
}

/// Runs `producers` threads, each pushing `perProducer` tasks through `push` (which returns the C result code:
/// >= 0 on success), while the calling thread drains with `drain`, which pops whatever it can into the checker
/// and returns the number of tasks it took. Waits are bounded by a deadline. Returns the checker.
func runProducersWithConsumer(
    producers: Int,
    perProducer: Int,
    push: @Sendable @escaping (_ task: UnsafePointer<lk_task>) -> Int32,
    drain: (_ checker: inout ProducerOrderChecker) -> Int,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ProducerOrderChecker {
    let pushFailures = FailureCounter()
    var checker = ProducerOrderChecker(producers: producers, perProducer: perProducer)
    let group = startProducers(producers, perProducer: perProducer, failures: pushFailures, push: push)
    // Two bounds: no task at all for `queueTestTimeoutSeconds` (a stall: lost tasks, or BUSY forever), and a
    // hard cap on the whole run. The stall bound restarts on progress, so a slow (sanitized) run still passes.
    var stall = TestDeadline(seconds: queueTestTimeoutSeconds)
    let cap = TestDeadline(seconds: 4 * queueTestTimeoutSeconds)
    var stalled = false
    while checker.received < checker.total {
        if drain(&checker) > 0 {
            stall = TestDeadline(seconds: queueTestTimeoutSeconds)
        } else {
            if stall.hasExpired || cap.hasExpired {
                stalled = true
                break
            }
            sched_yield()
        }
    }
    group.join()
    #expect(pushFailures.failures == 0, "push failed \(pushFailures.failures) times, first rc \(pushFailures.firstFailureCode)",
            sourceLocation: sourceLocation)
    #expect(!stalled, "deadline expired with \(checker.received) of \(checker.total) tasks received",
            sourceLocation: sourceLocation)
    return checker
}

/// A `drain` for `runProducersWithConsumer` that takes turns between the consumer's two paths: one batch pop
/// of up to `batchSize` tasks through `popBatch` (which fills the buffer and returns the count), then one
/// single pop through `pop`.
func alternatingDrain(batchSize: Int, popBatch: @escaping (UnsafeMutablePointer<lk_task>, Int) -> Int,
                      pop: @escaping (UnsafeMutablePointer<lk_task>) -> lk_pop_status)
    -> (_ checker: inout ProducerOrderChecker) -> Int {
    var batch = [lk_task](repeating: blankTask, count: batchSize)
    var useBatch = false
    return { checker in
        useBatch.toggle()
        if useBatch {
            let n = batch.withUnsafeMutableBufferPointer { popBatch($0.baseAddress!, batchSize) }
            for i in 0..<n { checker.accept(batch[i]) }
            return n
        }
        var out = blankTask
        guard pop(&out) == LK_POP_OK else { return 0 }
        checker.accept(out)
        return 1
    }
}

// MARK: - Push / drain, for any queue

/// Pushes tasks carrying the sequences in `range` with `push`; returns each push's result.
@discardableResult
func pushSequences(_ range: Range<Int>, with push: (UnsafeMutablePointer<lk_task>) -> Int32) -> [Int32] {
    range.map { i in
        var task = makeTask(i)
        return push(&task)
    }
}

/// Pops with `pop` until EMPTY (at most `limit` + 1 tasks) and returns the popped sequences. Any status
/// other than OK or EMPTY is recorded as an issue: callers use it when no push is in flight.
func drainSequences(limit: Int, sourceLocation: SourceLocation = #_sourceLocation,
                    with pop: (UnsafeMutablePointer<lk_task>) -> lk_pop_status) -> [Int] {
    var out = blankTask
    var popped: [Int] = []
    while popped.count <= limit {
        let status = pop(&out)
        if status == LK_POP_EMPTY { break }
        guard status == LK_POP_OK else {
            Issue.record("pop returned \(status) with no push in flight", sourceLocation: sourceLocation)
            break
        }
        popped.append(sequenceOf(out))
    }
    return popped
}
