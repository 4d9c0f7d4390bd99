import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// The order a tick runs work in: submission order per thread, the internal lane ahead of the external one,
/// the internal lane's inline fast path, the external batch budget, and fairness between lanes and I/O.
/// Serialized: some tests keep a loop busy on purpose (a task re-submitting itself), and on a small machine
/// running them side by side starves the rest of the test run.
@Suite(.serialized) struct TickOrderTests {
    /// Tasks submitted from one thread run in submission order, for every ingress kind.
    @Test(arguments: IngressKind.allCases)
    func tasksFromOneThreadRunInOrder(ingress: IngressKind) throws {
        let loop = try startedLoop(.testing(ingress: ingress))
        defer { loop.shutdown() }
        let log = OrderLog<Int>()
        for i in 0..<5000 { try loop.submit { log.append(i) } }
        #expect(waitUntil { log.count == 5000 })
        #expect(log.snapshot == Array(0..<5000))
    }

    /// With several producers, each producer's tasks run in its submission order, and all of them run.
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

    /// Tasks submitted from the loop thread itself run in submission order.
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

    /// submitInternal on the loop thread runs the task inline only when nothing is queued ahead of it; with a task
    /// queued, it does not overtake it.
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

    /// Tasks queued together run internal lane first: the internal tasks, then the external ones, each lane in
    /// order.
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

    /// A tick runs at most `externalBatchBudget` external tasks, and exactly that many when the queue holds more.
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
            // must fill a tick to the budget (no lower internal cap, at small budgets or large).
            var perTick: [UInt64: Int] = [:]
            for t in ticksAtRun.snapshot { perTick[t, default: 0] += 1 }
            #expect(perTick.values.max()! == budget, "budget \(budget)")
            loop.shutdown()
        }
    }

    /// An internal task re-submitting itself forever does not starve a timer, an external task or a microtask.
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

    /// An external task re-submitting itself forever does not starve an fd handler.
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

    /// A task that re-submits itself forever, on each lane, starves neither timers nor fd handlers; once it
    /// stops the loop shuts down normally, and one that never stops is ended by `close()`.
    @Test(arguments: SubmitLane.allCases)
    func aTaskResubmittingItselfForeverStarvesNeitherTimersNorIO(lane: SubmitLane) async throws {
        let loop = try startedLoop()
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        let stop = Atomic<Bool>(false)
        let spins = Counter()
        let refusal = OrderLog<EventLoopError?>()
        @Sendable func again() {
            guard !stop.load(ordering: .relaxed) else { return }
            spins.increment()
            do { try lane.submit(to: loop, again) } catch { refusal.append(error as? EventLoopError) }
        }
        try lane.submit(to: loop, again)
        #expect(waitUntil(seconds: 10) { spins.count >= 1000 })

        let fired = Counter(), ready = Counter()
        try loop.scheduleTimer(after: .milliseconds(5)) { fired.increment() }
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in
                ready.increment()
                IOFixture.drain(pipe.read)
            }
        }
        IOFixture.writeByte(pipe.write)
        #expect(waitUntil(seconds: 10) { fired.count == 1 }, "the timer starved")
        #expect(waitUntil(seconds: 10) { ready.count >= 1 }, "the fd handler starved")
        let before = spins.count
        #expect(waitUntil(seconds: 10) { spins.count > before + 100 }, "the resubmitting task stopped")

        stop.store(true, ordering: .relaxed)
        await loop.shutdown()
        #expect(loop.state == .terminated)
        #expect(refusal.count == 0)

        // One that never stops: close() ends it (a graceful shutdown would drain it for ever).
        let endless = try startedLoop()
        let endlessSpins = Counter()
        @Sendable func forever() {
            endlessSpins.increment()
            do { try lane.submit(to: endless, forever) } catch { refusal.append(error as? EventLoopError) }
        }
        try lane.submit(to: endless, forever)
        #expect(waitUntil(seconds: 10) { endlessSpins.count >= 1000 })
        await endless.close()
        #expect(endless.state == .terminated)
        // The resubmission either was queued and is released unrun, or came after close() and was refused.
        #expect(refusal.count <= 1 && refusal.snapshot.allSatisfy { $0 == .terminated }, "\(refusal.snapshot)")
    }
}
