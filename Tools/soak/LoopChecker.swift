import LoopKit
import Synchronization

/// The loop thread's ledger: which task ran, in which order, how often. Plain memory: it is touched only
/// by tasks, i.e. by one loop thread at a time. Successive epochs' loop threads are ordered by
/// happens-before (a loop terminates, its `shutdown()` returns, then the controller starts the next loop),
/// and the controller reads it only between epochs. The one exception is `ran`, the per-producer counts
/// the producers and the watchdog read while the loop runs: atomics.
///
/// Checks, per producer and per lane (external, internal, microtask), that sequence numbers only increase —
/// `submit` promises per-submitting-thread FIFO, and the internal lane (a Vyukov MPSC queue) and the
/// microtask ring (FIFO across ring and overflow, lk_ring.h) keep each producer's order too. Across lanes
/// nothing is promised (the internal lane is a priority lane), so nothing is checked. A bitmap over every
/// producer task catches duplicates exactly and, at the end, losses. The children the loop thread submits
/// to itself are checked the same way, per lane, against one loop-thread sequence.
final class LoopChecker: @unchecked Sendable {
    let producerCount: Int
    let quotas: [Int]
    /// Published `ranCount` per producer (relaxed): producers bound their in-flight window by it.
    let ran: [PaddedCounter]

    /// The loop whose thread runs the tasks now; set by the controller before it starts each loop.
    var loop: EventLoop?

    private let bitmap: UnsafeMutablePointer<UInt64>
    private let bitmapWords: Int
    private let bitmapOffset: UnsafeMutablePointer<Int>
    private let lastSeq: UnsafeMutablePointer<Int>   // (producers + 1) x 3 lanes; the last row: the loop thread
    private let ranCount: UnsafeMutablePointer<Int>

    private(set) var ranTotal = 0
    private(set) var laneRan = [0, 0, 0]
    private(set) var duplicates = 0
    private(set) var orderViolations = 0
    private(set) var outOfRange = 0
    private(set) var offLoopThread = 0
    private(set) var childrenSpawned = 0
    private(set) var childrenRan = 0
    private(set) var childrenRejected = 0
    /// Children refused with `.outOfMemory` (the microtask ring's overflow could not grow: SOAK_FAULTS=on);
    /// nothing was queued, and the child is not retried.
    private(set) var childrenRefusedOutOfMemory = 0
    private(set) var childOrderViolations = 0
    private var nextChildSeq = 0
    /// The first few problems, described.
    private(set) var problems: [String] = []

    init(quotas: [Int]) {
        producerCount = quotas.count
        self.quotas = quotas
        ran = quotas.map { _ in PaddedCounter() }
        bitmapOffset = .allocate(capacity: quotas.count)
        var words = 0
        for (p, q) in quotas.enumerated() {
            bitmapOffset[p] = words
            words += (q + 63) / 64
        }
        bitmapWords = Swift.max(1, words)
        // Written through now, so that the whole bitmap is resident from the first epoch on and does not
        // show up as RSS growth later.
        bitmap = .allocate(capacity: bitmapWords)
        bitmap.initialize(repeating: 0, count: bitmapWords)
        lastSeq = .allocate(capacity: (quotas.count + 1) * 3)
        lastSeq.initialize(repeating: -1, count: (quotas.count + 1) * 3)
        ranCount = .allocate(capacity: quotas.count)
        ranCount.initialize(repeating: 0, count: quotas.count)
    }

    deinit {
        bitmap.deallocate(); bitmapOffset.deallocate(); lastSeq.deallocate(); ranCount.deallocate()
    }

    private func note(_ problem: @autoclosure () -> String) {
        if problems.count < 20 { problems.append(problem()) }
    }

    // MARK: On the loop thread

    /// The body of every producer task.
    func run(_ token: UInt64) {
        let p = Token.producer(token), s = Token.seq(token), kind = Token.kind(token)
        guard let loop, loop.inEventLoop else {
            offLoopThread += 1
            note("task (producer \(p), seq \(s)) ran off the loop thread")
            return
        }
        guard p < producerCount, s < quotas[p] else {
            outOfRange += 1
            note("task (producer \(p), seq \(s)) is not one of the soak's")
            return
        }
        let word = bitmapOffset[p] + s >> 6, bit = UInt64(1) << UInt64(s & 63)
        if bitmap[word] & bit != 0 {
            duplicates += 1
            note("task (producer \(p), seq \(s), \(TaskKind.laneNames[kind.lane]) lane) ran twice")
            return
        }
        bitmap[word] |= bit
        let slot = p * 3 + kind.lane
        if s <= lastSeq[slot] {
            orderViolations += 1
            note("producer \(p), \(TaskKind.laneNames[kind.lane]) lane: seq \(s) ran after seq \(lastSeq[slot])")
        } else {
            lastSeq[slot] = s
        }
        let count = ranCount[p] + 1
        ranCount[p] = count
        ran[p].value.store(count, ordering: .relaxed)
        ranTotal += 1
        laneRan[kind.lane] += 1
        if kind == .externalWithChildren { spawnChildren(of: token, on: loop) }
    }

    /// 1...3 tasks the loop thread submits to itself: a local submit, a submitInternal (inline or queued
    /// locally) or a microtask, each checked for order against the loop thread's other children in its lane.
    private func spawnChildren(of token: UInt64, on loop: EventLoop) {
        for i in 0..<TaskMix.childCount(token) {
            let lane = TaskMix.childLane(token, i)
            nextChildSeq += 1
            let child = Token.make(producer: Token.loopThread, kind: TaskKind(rawValue: lane)!, seq: nextChildSeq)
            childrenSpawned += 1
            do {
                switch lane {
                case 0: try loop.submit { soakChecker.runChild(child) }
                case 1: try loop.submitInternal { soakChecker.runChild(child) }
                default: try loop.queueMicrotask { soakChecker.runChild(child) }
                }
            } catch EventLoopError.outOfMemory {
                childrenSpawned -= 1
                childrenRefusedOutOfMemory += 1
            } catch {
                childrenSpawned -= 1
                childrenRejected += 1
                note("the loop thread's own \(TaskKind.laneNames[lane]) submit was refused while it ran: \(error)")
            }
        }
    }

    func runChild(_ token: UInt64) {
        let s = Token.seq(token), lane = Token.kind(token).lane
        if loop?.inEventLoop != true {
            offLoopThread += 1
            note("a child task ran off the loop thread")
        }
        childrenRan += 1
        let slot = producerCount * 3 + lane
        if s <= lastSeq[slot] {
            childOrderViolations += 1
            note("loop thread, \(TaskKind.laneNames[lane]) lane: child \(s) ran after child \(lastSeq[slot])")
        } else {
            lastSeq[slot] = s
        }
    }

    // MARK: Between epochs and at the end (no loop running)

    /// Tasks of producer `p` that never ran.
    func missing(producer p: Int) -> Int {
        var ran = 0
        let base = bitmapOffset[p], words = (quotas[p] + 63) / 64
        for w in 0..<words { ran += bitmap[base + w].nonzeroBitCount }
        return quotas[p] - ran
    }

    func ranCount(producer p: Int) -> Int { ranCount[p] }
}

/// The one ledger, set before any thread starts and never replaced: tasks reach it without capturing a
/// reference (a capture would cost every task a retain and a release of one shared object).
nonisolated(unsafe) var soakChecker: LoopChecker!
