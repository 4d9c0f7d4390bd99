import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Submission order, the internal lane's inline fast path, budgets and fairness between lanes.
@Suite struct OrderingTests {
    @Test(arguments: IngressKind.allCases)
    func tasksFromOneThreadRunInOrder(ingress: IngressKind) throws {
        let loop = try startedLoop(.testing(ingress: ingress))
        defer { loop.shutdown() }
        let log = OrderLog<Int>()
        for i in 0..<5000 { try loop.submit { log.append(i) } }
        #expect(waitUntil { log.count == 5000 })
        #expect(log.snapshot == Array(0..<5000))
    }

    @Test func perProducerOrderWithManyProducers() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let producers = 4, perProducer = stressCount(20_000, minimum: 2_000)
        let last = Locked<[Int]>(Array(repeating: -1, count: producers))
        let outOfOrder = Counter()
        let ran = Counter()
        runOnThreads(producers) { p in
            for i in 0..<perProducer {
                try! loop.submit {
                    last.withLock { if $0[p] != i - 1 { outOfOrder.increment() }; $0[p] = i }
                    ran.increment()
                }
            }
        }
        #expect(waitUntil { ran.count == producers * perProducer })
        #expect(outOfOrder.count == 0)
    }

    @Test func submissionsFromTheLoopThreadKeepTheirOrder() async throws {
        let loop = try startedLoop()
        let log = OrderLog<Int>()
        try await loop.perform {
            for i in 0..<1000 { try loop.submit { log.append(i) } }
        }
        #expect(waitUntil { log.count == 1000 })
        #expect(log.snapshot == Array(0..<1000))
        await loop.shutdown()
    }

    @Test func submitInternalRunsInlineOnlyWhenNothingIsQueuedAhead() async throws {
        let loop = try startedLoop()
        // Nothing queued: the task runs nested in the caller, before submitInternal returns.
        let inline = try await loop.perform { () -> Bool in
            var ran = false
            nonisolated(unsafe) let flag = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
            flag.initialize(to: false)
            defer { flag.deallocate() }
            try loop.submitInternal { flag.pointee = true }
            ran = flag.pointee
            return ran
        }
        #expect(inline)
        // Queued work ahead: the fast path must not overtake it.
        let log = OrderLog<String>()
        let hold = Atomic<Bool>(true)
        try loop.submit {
            _ = waitUntil { !hold.load(ordering: .acquiring) }
            log.append("A")
            try? loop.submitInternal { log.append("I") } // B is still queued: must not run inline
            log.append("A-end")
        }
        try loop.submit { log.append("B") }
        hold.store(false, ordering: .releasing)
        #expect(waitUntil { log.count == 4 })
        let order = log.snapshot
        // Not inline: I runs after A has returned. (Whether I then precedes B depends on whether B was in A's
        // batch: the internal lane is drained first each tick, which is its priority, not the fast path.)
        #expect(order.firstIndex(of: "I")! > order.firstIndex(of: "A-end")!, "ran inline although B was queued")
        await loop.shutdown()
    }

    @Test func internalTasksRunBeforeExternalOnesEachTick() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let log = OrderLog<String>()
        let release = try holdLoop(loop) // everything below is queued behind the holding task
        for i in 0..<3 { try loop.submit { log.append("E\(i)") } }
        for i in 0..<3 { try loop.submitInternal { log.append("I\(i)") } }
        release()
        #expect(waitUntil { log.count == 6 })
        #expect(log.snapshot == ["I0", "I1", "I2", "E0", "E1", "E2"], "the internal lane runs first in the next tick")
    }

    @Test func effectiveBatchBudgetIsTheConfiguredOne() throws {
        for budget in [64, 300, 1024, 4096] {
            var configuration = EventLoop.Configuration.testing()
            configuration.externalBatchBudget = budget
            configuration.metricsEnabled = true
            let loop = try startedLoop(configuration)
            let hold = Atomic<Bool>(true)
            let ticksAtRun = OrderLog<UInt64>()
            try loop.submit { _ = waitUntil { !hold.load(ordering: .acquiring) } }
            let total = budget * 3
            for _ in 0..<total { try loop.submit { ticksAtRun.append(loop.metrics()!.ticks) } }
            hold.store(false, ordering: .releasing)
            #expect(waitUntil { ticksAtRun.count == total })
            // Group runs by the tick they ran in: no tick may run more than the budget, and a full queue
            // must fill a tick to the budget (the original capped it at 256).
            var perTick: [UInt64: Int] = [:]
            for t in ticksAtRun.snapshot { perTick[t, default: 0] += 1 }
            #expect(perTick.values.max()! == budget, "budget \(budget)")
            loop.shutdown()
        }
    }

    @Test func selfResubmittingInternalTaskDoesNotStarveTimersOrExternalTasks() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let stop = Atomic<Bool>(false)
        let spins = Counter()
        @Sendable func forever() {
            spins.increment()
            if !stop.load(ordering: .relaxed) { try? loop.submitInternal { forever() } }
        }
        try loop.submitInternal { forever() }
        let timerFired = Counter(), externalRan = Counter(), microtaskRan = Counter()
        try loop.scheduleTimer(after: .milliseconds(5)) { timerFired.increment() }
        try loop.submit { externalRan.increment() }
        try loop.queueMicrotask { microtaskRan.increment() }
        #expect(waitUntil { timerFired.count == 1 && externalRan.count == 1 && microtaskRan.count == 1 })
        stop.store(true, ordering: .relaxed)
        #expect(spins.count > 1)
    }

    @Test func selfResubmittingExternalTaskDoesNotStarveIO() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let stop = Atomic<Bool>(false)
        @Sendable func forever() { if !stop.load(ordering: .relaxed) { try? loop.submit { forever() } } }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let readable = Counter()
        let (r, w) = (fds[0], fds[1])
        try loop.submit {
            try loop.register(fd: r, events: .read) { _ in
                readable.increment()
                try? loop.unregister(fd: r)
            }
            forever()
        }
        var byte: UInt8 = 1
        #expect(write(w, &byte, 1) == 1)
        #expect(waitUntil { readable.count == 1 })
        stop.store(true, ordering: .relaxed)
    }
}

/// Microtasks run after each phase (or each task in strict mode), within their budget.
@Suite struct MicrotaskTests {
    @Test func microtasksRunAfterTheCurrentPhaseBeforeTheNextTask() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let log = OrderLog<String>()
        let release = try holdLoop(loop) // t1 and t2 are both queued, then taken in one batch
        try loop.submit {
            try? loop.queueMicrotask { log.append("m1") }
            log.append("t1")
        }
        try loop.submit { log.append("t2") }
        release()
        #expect(waitUntil { log.count == 3 })
        #expect(log.snapshot == ["t1", "t2", "m1"], "phase mode: after the external phase")
    }

    @Test func strictModeRunsMicrotasksAfterEachTask() throws {
        var configuration = EventLoop.Configuration.testing()
        configuration.strictMicrotaskOrdering = true
        let loop = try startedLoop(configuration)
        defer { loop.shutdown() }
        let log = OrderLog<String>()
        let hold = Atomic<Bool>(true)
        try loop.submit {
            _ = waitUntil { !hold.load(ordering: .acquiring) }
            try? loop.queueMicrotask { log.append("m1") }
            log.append("t1")
        }
        try loop.submit { log.append("t2") }
        hold.store(false, ordering: .releasing)
        #expect(waitUntil { log.count == 3 })
        #expect(log.snapshot == ["t1", "m1", "t2"])
    }

    /// Strict mode drains after every task; a microtask that runs an internal task inline re-enters the
    /// drain. The nested drain must not disturb the batch the outer one is still working through.
    @Test func nestedStrictDrainKeepsEveryMicrotaskExactlyOnce() throws {
        var configuration = EventLoop.Configuration.testing()
        configuration.strictMicrotaskOrdering = true
        let loop = try startedLoop(configuration)
        defer { loop.shutdown() }
        let log = OrderLog<String>()
        try loop.submit {
            try? loop.queueMicrotask {
                log.append("A")
                try? loop.queueMicrotask { log.append("C1") }
                try? loop.queueMicrotask { log.append("C2") }
                try? loop.submitInternal { log.append("D") } // nothing queued ahead: runs inline
            }
            try? loop.queueMicrotask { log.append("B") }
        }
        #expect(waitUntil { log.count >= 5 })
        // Only now (a task queued earlier would sit in the same batch and keep D from running inline): a later
        // tick's task, so every drain of the first tick is over when it has run.
        let marker = Counter()
        try loop.submit { marker.increment() }
        #expect(waitUntil { marker.count == 1 })
        #expect(log.snapshot.sorted() == ["A", "B", "C1", "C2", "D"], "each microtask exactly once")
    }

    @Test func microtasksQueuedByMicrotasksAllRunBeforeSleep() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let ran = Counter()
        @Sendable func chain(_ n: Int) {
            ran.increment()
            if n > 0 { try? loop.queueMicrotask { chain(n - 1) } }
        }
        try loop.submit { chain(10_000) }
        #expect(waitUntil { ran.count == 10_001 })
    }

    @Test func aMillionMicrotasksFromOneTask() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        let ran = Counter()
        let total = stressCount(1_000_000, minimum: 100_000)
        try loop.submit { for _ in 0..<total { try! loop.queueMicrotask { ran.increment() } } }
        #expect(waitUntil(seconds: 120) { ran.count == total })
    }
}
