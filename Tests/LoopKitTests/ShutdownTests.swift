import Glibc
@testable import LoopKit
import Synchronization
import Testing
import TestSupport

/// Exactly-once shutdown: every accepted task runs once, on the loop thread, however submitters race
/// shutdown; nothing is accepted afterwards; shutdown and close are idempotent and thread-safe.
@Suite struct ShutdownTests {
    static let producers = 4
    static let perProducer = 10_000
    static let repetitions = 20

    /// Producers racing a shutdown, for every ingress kind: every accepted task runs exactly once, on the loop
    /// thread; every refused one (`.terminated`) never runs; once one submit is refused no later one is accepted;
    /// and the race does happen.
    @Test(arguments: IngressKind.allCases)
    func acceptedEqualsExecutedWhenSubmitsRaceShutdown(ingress: IngressKind) throws {
        var repetitionsWithRejections = 0
        let repetitions = stressCount(Self.repetitions, minimum: 5)
        for repetition in 0..<repetitions {
            let loop = try startedLoop(.testing(idle: repetition % 2 == 0 ? .park : .default, ingress: ingress))
            let perProducer = stressCount(Self.perProducer, minimum: 2_000)
            let ledger = RunLedger(count: Self.producers * perProducer)
            let offLoop = Counter()
            let accepted = Locked<[Bool]>(Array(repeating: false, count: ledger.count))
            let acceptedCount = Counter()
            let rejectedAfterAccepted = Counter()
            runOnThreads(Self.producers + 1) { index in
                if index == Self.producers {
                    // Let some work through, then shut down while the producers are still submitting.
                    _ = waitUntil { acceptedCount.count >= perProducer / 2 }
                    loop.shutdown()
                    return
                }
                var rejected = false
                for i in 0..<perProducer {
                    // A graceful shutdown drains until the lanes are empty, accepting meanwhile: producers that
                    // outpace the loop (a slow sanitizer build) would keep it draining until they are done.
                    // Yielding once it terminates lets the drain catch up, so the gate closes mid-stream.
                    if loop.state == .terminating { sched_yield() }
                    let slot = index * perProducer + i
                    do {
                        try loop.submit {
                            if !loop.inEventLoop { offLoop.increment() }
                            ledger.ran(slot)
                        }
                        if rejected { rejectedAfterAccepted.increment() }
                        accepted.withLock { $0[slot] = true }
                        acceptedCount.increment()
                    } catch {
                        #expect(error as? EventLoopError == .terminated)
                        rejected = true
                    }
                }
            }
            #expect(loop.state == .terminated)
            let acceptedSlots = accepted.withLock { $0 }
            var missing = 0, unexpected = 0
            for slot in 0..<ledger.count {
                let runs = ledger.runs(slot)
                if acceptedSlots[slot] && runs != 1 { missing += 1 }
                if !acceptedSlots[slot] && runs != 0 { unexpected += 1 }
            }
            #expect(missing == 0, "accepted tasks that did not run exactly once (repetition \(repetition))")
            #expect(unexpected == 0, "rejected tasks that ran")
            #expect(ledger.total == acceptedCount.count)
            #expect(offLoop.count == 0)
            #expect(rejectedAfterAccepted.count == 0, "a submit succeeded after one had been rejected")
            #expect(throws: EventLoopError.terminated) { try loop.submit {} }
            if acceptedCount.count < ledger.count { repetitionsWithRejections += 1 }
        }
        // The race must really happen: in most repetitions some submits land after the final drain.
        #expect(repetitionsWithRejections > 0, "shutdown never raced a submit: the test exercised nothing")
        print("ShutdownTests(\(ingress)): \(repetitionsWithRejections)/\(repetitions) repetitions rejected submits after the final drain")
    }

    /// shutdown() and close() called together from many threads all return after termination, and no task runs
    /// twice.
    @Test func concurrentShutdownAndCloseFromManyThreads() throws {
        for round in 0..<stressCount(10, minimum: 3) {
            let loop = try startedLoop()
            let ran = Counter()
            for _ in 0..<1000 { try loop.submit { ran.increment() } }
            runOnThreads(10) { index in
                if (index + round) % 3 == 0 { loop.close() } else { loop.shutdown() }
                #expect(loop.state == .terminated, "every caller returns after termination")
            }
            #expect(loop.state == .terminated)
            #expect(ran.count <= 1000)
        }
    }

    /// shutdown() from inside a task only requests termination; every task accepted afterwards still runs.
    @Test func shutdownFromInsideATaskDrainsTheRest() throws {
        let loop = try startedLoop()
        let ran = Counter()
        var accepted = 0
        try loop.submit { loop.shutdown() } // only requests: cannot wait for itself
        for _ in 0..<100 { // accepted while terminating, rejected once the final drain has closed the gate
            do {
                try loop.submit { ran.increment() }
                accepted += 1
            } catch {
                #expect(error as? EventLoopError == .terminated)
            }
        }
        loop.waitUntilTerminated()
        #expect(loop.state == .terminated)
        #expect(ran.count == accepted, "every accepted task ran")
    }

    /// Tasks submitted from the loop thread while the loop is terminating are accepted and run before it
    /// terminates.
    @Test func tasksSubmittedWhileTerminatingStillRun() throws {
        let loop = try startedLoop()
        let ran = Counter()
        let gateOpen = Atomic<Bool>(false)
        // The first task holds the loop until shutdown has been requested, then submits more from the loop.
        try loop.submit {
            _ = waitUntil { loop.state == .terminating }
            for _ in 0..<10 { try? loop.submit { ran.increment() } }
            gateOpen.store(true, ordering: .releasing)
        }
        try loop.submit { ran.increment() }
        loop.shutdown()
        let submittedFromTheLoop = gateOpen.load(ordering: .acquiring)
        #expect(submittedFromTheLoop)
        #expect(ran.count == 11)
    }

    /// Shutting down a loop that never ran runs its queued tasks on the shutting-down thread, which acts as the
    /// loop thread; the loop cannot run afterwards.
    @Test func shutdownOfALoopThatNeverRanRunsItsTasksOnTheCaller() throws {
        let loop = try EventLoop(configuration: .testing())
        let ran = Counter()
        let onLoop = Counter()
        for _ in 0..<50 {
            try loop.submit {
                ran.increment()
                if loop.inEventLoop { onLoop.increment() }
            }
        }
        #expect(loop.state == .created)
        loop.shutdown()
        #expect(loop.state == .terminated)
        #expect(ran.count == 50)
        #expect(onLoop.count == 50, "the shutting-down thread acts as the loop thread")
        #expect(throws: EventLoopError.terminated) { try loop.run() }
    }

    /// close() releases every queued task without running it (each closure is freed) and cancels pending timers.
    @Test func closeReleasesQueuedTasksWithoutRunningThem() throws {
        let loop = try startedLoop()
        let ran = Counter()
        let released = Counter()
        let hold = Atomic<Bool>(true)
        try loop.submit { _ = waitUntil { !hold.load(ordering: .acquiring) } }
        for _ in 0..<100 {
            let witness = DeinitAction { released.increment() }
            try loop.submit { _ = witness; ran.increment() }
        }
        let timer = try loop.scheduleTimer(after: .seconds(60)) { ran.increment() }
        runOnThreads(2) { index in
            if index == 0 {
                loop.close()
            } else {
                _ = waitUntil { loop.state == .terminating }
                hold.store(false, ordering: .releasing)
            }
        }
        #expect(loop.state == .terminated)
        #expect(ran.count == 0)
        #expect(released.count == 100, "every discarded closure is released")
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(timer) }
    }

    /// run() whose poller cannot be created must leave the loop to a racing shutdown(), which then finishes
    /// it (instead of waiting forever for a loop thread that gave up). Runs in a child process: it sets
    /// LOOPKIT_BACKEND to an invalid value so that poller creation fails.
    @Test func shutdownRacingAFailedRunDoesNotHang() async {
        await #expect(processExitsWith: .success) {
            setenv("LOOPKIT_BACKEND", "bogus", 1)
            for _ in 0..<300 {
                let loop = try! EventLoop(configuration: .testing(backend: .epoll))
                let go = Atomic<Bool>(false)
                let done = Atomic<Bool>(false)
                let runner = ThreadGroup(1) { _ in
                    while !go.load(ordering: .acquiring) {}
                    _ = try? loop.run()
                }
                let shutter = ThreadGroup(1) { _ in
                    while !go.load(ordering: .acquiring) {}
                    loop.shutdown()
                    done.store(true, ordering: .releasing)
                }
                go.store(true, ordering: .releasing)
                runner.join()
                if !waitUntil(seconds: 5, { done.load(ordering: .acquiring) }) { exit(1) } // hung
                shutter.join()
                if loop.state != .terminated { exit(2) }
            }
            exit(0)
        }
    }

    /// perform on a terminated loop throws `.terminated`.
    @Test func performOnAClosedLoopThrowsTerminated() async throws {
        let loop = try startedLoop()
        await loop.shutdown()
        await #expect(throws: EventLoopError.terminated) { try await loop.perform { 1 } }
    }

    // MARK: Submitting and shutting down from inside the loop

    /// From the loop thread during the final drain: every lane accepts, and everything accepted runs once.
    /// A closure released by termination whose deinit submits: accepted while timers are cancelled (before
    /// the drain), refused with `.terminated` once the drain is over (fd handlers are released after it).
    @Test func submitsFromTheLoopThreadDuringTheFinalDrainRunExactlyOnce() async throws {
        let loop = try startedLoop()
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        let accepted = Counter(), ran = Counter(), ranInDrain = Counter()
        let rejected = OrderLog<EventLoopError?>()
        let timerWitnessAccepted = Counter(), timerWitnessRan = Counter()
        // finish() cancels the timers first: a task that sees none pending runs in the final drain.
        try loop.scheduleTimer(after: .seconds(3600)) {}

        @Sendable func fanOut(_ depth: Int) {
            guard depth > 0 else { return }
            for lane in SubmitLane.allCases {
                do {
                    try lane.submit(to: loop) {
                        ran.increment()
                        if loop.pendingTimerCount == 0 { ranInDrain.increment() }
                        fanOut(depth - 1)
                    }
                    accepted.increment()
                } catch {
                    rejected.append(error as? EventLoopError)
                }
            }
        }
        @Sendable func startInTheDrain() {
            guard loop.pendingTimerCount == 0 else {
                try? loop.submit { startInTheDrain() } // not yet terminating: look again next tick
                return
            }
            fanOut(4) // 3 + 9 + 27 + 81 tasks, from tasks that themselves run in the drain
        }
        let submitFromTimerDeinit: @Sendable () -> Void = {
            do {
                try loop.submit { timerWitnessRan.increment() }
                timerWitnessAccepted.increment()
            } catch {
                rejected.append(error as? EventLoopError)
            }
        }
        let submitFromHandlerDeinit: @Sendable () -> Void = {
            for lane in SubmitLane.allCases {
                do {
                    try lane.submit(to: loop) { ran.increment() }
                    accepted.increment()
                } catch {
                    rejected.append(error as? EventLoopError)
                }
            }
        }
        // Each witness is owned by its closure alone, so it is released exactly when the loop drops the closure.
        try loop.scheduleTimer(after: .seconds(3600)) { [witness = DeinitAction(submitFromTimerDeinit)] in _ = witness }
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { [witness = DeinitAction(submitFromHandlerDeinit)] _ in
                _ = witness
            }
        }
        try loop.submit { startInTheDrain() }
        await loop.shutdown()

        #expect(loop.state == .terminated)
        #expect(accepted.count == 120)
        #expect(ran.count == accepted.count, "accepted \(accepted.count), ran \(ran.count)")
        #expect(ranInDrain.count == 120)
        #expect(timerWitnessAccepted.count == 1 && timerWitnessRan.count == 1)
        #expect(rejected.snapshot == [.terminated, .terminated, .terminated], "the fd handler's deinit submits after the drain")
    }

    /// From another thread while the final drain runs: each submit either is accepted and its task runs
    /// exactly once, or throws `.terminated` and its task never runs; once one is refused, all later ones are.
    @Test func submitsFromAnotherThreadWhileShutdownDrainsRunOnceOrThrowTerminated() throws {
        let loop = try startedLoop()
        let capacity = stressCount(200_000, minimum: 20_000)
        let ledger = RunLedger(count: capacity)
        let acceptedSlots = Locked<[Bool]>(Array(repeating: false, count: capacity))
        let accepted = Counter(), acceptedDuringDrain = Counter()
        let drainStarted = Atomic<Bool>(false)
        let refusals = OrderLog<EventLoopError?>()
        let acceptedAfterRefusal = Counter()
        try loop.scheduleTimer(after: .seconds(3600)) {} // cancelled when the final drain begins

        // Holds the final drain open until the producer has had submissions accepted during it.
        @Sendable func holdTheDrain() {
            guard loop.pendingTimerCount == 0 else {
                try? loop.submit { holdTheDrain() }
                return
            }
            drainStarted.store(true, ordering: .releasing)
            _ = waitUntil(seconds: 10) { acceptedDuringDrain.count >= 1000 }
        }
        try loop.submit { holdTheDrain() }

        runOnThreads(2) { index in
            if index == 1 {
                _ = waitUntil(seconds: 10) { accepted.count >= 100 }
                loop.shutdown()
                return
            }
            var refused = false
            for slot in 0..<capacity {
                // Keep half the submissions for the final drain, however the threads are scheduled.
                if slot == capacity / 2 { _ = waitUntil(seconds: 10) { drainStarted.load(ordering: .acquiring) } }
                do {
                    try SubmitLane.allCases[slot % 3].submit(to: loop) { ledger.ran(slot) }
                    acceptedSlots.withLock { $0[slot] = true }
                    accepted.increment()
                    if refused { acceptedAfterRefusal.increment() }
                    if drainStarted.load(ordering: .acquiring) { acceptedDuringDrain.increment() }
                } catch {
                    refusals.append(error as? EventLoopError)
                    refused = true
                    if refusals.count >= 100 { break }
                }
            }
            if !refused { // everything fitted before the gate closed: one more, after termination
                _ = waitUntil(seconds: 10) { loop.state == .terminated }
                do { try loop.submit {} } catch { refusals.append(error as? EventLoopError) }
            }
        }

        #expect(loop.state == .terminated)
        let slots = acceptedSlots.withLock { $0 }
        var notOnce = 0, refusedButRan = 0
        for slot in 0..<capacity {
            let runs = ledger.runs(slot)
            if slots[slot] && runs != 1 { notOnce += 1 }
            if !slots[slot] && runs != 0 { refusedButRan += 1 }
        }
        #expect(notOnce == 0, "accepted tasks that did not run exactly once")
        #expect(refusedButRan == 0, "refused tasks that ran")
        #expect(ledger.total == accepted.count)
        #expect(acceptedDuringDrain.count >= 1000, "no submission was accepted during the final drain")
        #expect(!refusals.snapshot.isEmpty && refusals.snapshot.allSatisfy { $0 == .terminated }, "\(refusals.snapshot.prefix(3))")
        #expect(acceptedAfterRefusal.count == 0, "a submit succeeded after one had been refused")
        print("ShutdownTests: \(accepted.count) submits accepted (\(acceptedDuringDrain.count) during the final drain), \(refusals.count) refused")
    }

    /// From inside a task, shutdown() and close() only request termination and return. Tasks queued behind
    /// it run (shutdown) or are released unrun (close, and submissions then throw `.terminated`); pending
    /// timers are cancelled either way.
    @Test(arguments: [false, true])
    func shutdownOrCloseFromInsideATask(close: Bool) throws {
        let loop = try startedLoop()
        let log = OrderLog<String>()
        let timerFired = Counter()
        let released = Counter()
        try loop.scheduleTimer(after: .seconds(3600)) { timerFired.increment() }
        let release = try holdLoop(loop) // what follows is taken in one batch
        try loop.submit {
            if close { loop.close() } else { loop.shutdown() }
            log.append("returned in \(loop.state)")
            do {
                try loop.submit { log.append("submitted from the task") }
            } catch {
                log.append("refused: \(error)")
            }
        }
        try loop.submit { [witness = DeinitAction { released.increment() }] in
            _ = witness
            log.append("queued behind")
        }
        release()
        loop.waitUntilTerminated()
        #expect(loop.state == .terminated)
        if close {
            #expect(log.snapshot == ["returned in terminating", "refused: \(EventLoopError.terminated)"])
        } else {
            #expect(log.snapshot == ["returned in terminating", "queued behind", "submitted from the task"])
        }
        #expect(released.count == 1, "the task queued behind is released, run or not")
        #expect(timerFired.count == 0)
        #expect(loop.pendingTimerCount == 0)
        #expect(throws: EventLoopError.terminated) { try loop.submit {} }
        loop.shutdown() // idempotent from outside
    }

    /// An awaited loop operation whose starting task close() releases unrun ends with `.terminated`: the
    /// awaiting task must not stay suspended.
    @Test func anAwaitedOperationWhoseStartCloseDiscardsEndsTerminated() async throws {
        var configuration = EventLoop.Configuration.testing()
        configuration.metricsEnabled = true // counts the start task's push
        let loop = try startedLoop(configuration)
        defer { loop.shutdownForCleanup() }
        let release = try holdLoop(loop)
        let outcome = OrderLog<String>()
        let submittedBefore = loop.foreignExternalSubmitted.load(ordering: .relaxed)
        let operation = Task {
            do {
                let value: Int = try await loop.loopOperation { complete in
                    complete(.success(1))
                    return nil
                }
                outcome.append("value \(value)")
            } catch {
                outcome.append("\(error)")
            }
        }
        #expect(await awaitCondition(seconds: 10) {
            loop.foreignExternalSubmitted.load(ordering: .relaxed) > submittedBefore
        }, "the operation's start is queued behind the held task")
        _ = loop.requestTermination(close: true) // close(), without waiting: the hold still blocks the loop
        release()
        #expect(await awaitCondition(seconds: 10) { outcome.count == 1 }, "the awaiting task resumes")
        #expect(outcome.snapshot == ["\(EventLoopError.terminated)"])
        if outcome.count == 1 { _ = await operation.result } // a task left suspended is not awaited
    }
}
