import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Exactly-once shutdown: every accepted task runs once, on the loop thread, however submitters race
/// shutdown; nothing is accepted afterwards; shutdown and close are idempotent and thread-safe.
@Suite struct ShutdownTests {
    final class Ledger: @unchecked Sendable {
        let runs: UnsafeMutablePointer<Atomic<UInt8>>
        let count: Int
        let offLoop = Counter()
        init(count: Int) {
            self.count = count
            runs = .allocate(capacity: count)
            for i in 0..<count { (runs + i).initialize(to: Atomic(0)) }
        }
        deinit {
            runs.deinitialize(count: count)
            runs.deallocate()
        }
        func ran(_ i: Int) { runs[i].add(1, ordering: .relaxed) }
        var total: Int { (0..<count).reduce(0) { $0 + Int(runs[$1].load(ordering: .relaxed)) } }
        var ranTwice: Int { (0..<count).filter { runs[$0].load(ordering: .relaxed) > 1 }.count }
        func ranCount(_ i: Int) -> UInt8 { runs[i].load(ordering: .relaxed) }
    }

    static let producers = 4
    static let perProducer = 10_000
    static let repetitions = 20

    @Test(arguments: IngressKind.allCases)
    func acceptedEqualsExecutedWhenSubmitsRaceShutdown(ingress: IngressKind) throws {
        var repetitionsWithRejections = 0
        let repetitions = stressCount(Self.repetitions, minimum: 5)
        for repetition in 0..<repetitions {
            let loop = try startedLoop(.testing(idle: repetition % 2 == 0 ? .park : .default, ingress: ingress))
            let perProducer = stressCount(Self.perProducer, minimum: 2_000)
            let ledger = Ledger(count: Self.producers * perProducer)
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
                            if !loop.inEventLoop { ledger.offLoop.increment() }
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
                let runs = ledger.ranCount(slot)
                if acceptedSlots[slot] && runs != 1 { missing += 1 }
                if !acceptedSlots[slot] && runs != 0 { unexpected += 1 }
            }
            #expect(missing == 0, "accepted tasks that did not run exactly once (repetition \(repetition))")
            #expect(unexpected == 0, "rejected tasks that ran")
            #expect(ledger.total == acceptedCount.count)
            #expect(ledger.offLoop.count == 0)
            #expect(rejectedAfterAccepted.count == 0, "a submit succeeded after one had been rejected")
            #expect(throws: EventLoopError.terminated) { try loop.submit {} }
            if acceptedCount.count < ledger.count { repetitionsWithRejections += 1 }
        }
        // The race must really happen: in most repetitions some submits land after the final drain.
        #expect(repetitionsWithRejections > 0, "shutdown never raced a submit: the test exercised nothing")
        print("ShutdownTests(\(ingress)): \(repetitionsWithRejections)/\(repetitions) repetitions rejected submits after the final drain")
    }

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

    @Test func closeReleasesQueuedTasksWithoutRunningThem() throws {
        final class Witness: @unchecked Sendable {
            let released: Counter
            init(_ c: Counter) { released = c }
            deinit { released.increment() }
        }
        let loop = try startedLoop()
        let ran = Counter()
        let released = Counter()
        let hold = Atomic<Bool>(true)
        try loop.submit { _ = waitUntil { !hold.load(ordering: .acquiring) } }
        for _ in 0..<100 {
            let witness = Witness(released)
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

    @Test func performOnAClosedLoopThrowsTerminated() async throws {
        let loop = try startedLoop()
        await loop.shutdown()
        await #expect(throws: EventLoopError.terminated) { try await loop.perform { 1 } }
    }
}
