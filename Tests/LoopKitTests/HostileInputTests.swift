import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// The hostile and bad-input table: one test per row. Each asserts the documented outcome (the exact error,
/// or the precondition that stops the process), that nothing accepted was lost, and that the loop still
/// serves tasks, timers and fd handlers afterwards. Nothing here sleeps: every wait is on a condition with
/// a deadline. Serialized: several rows keep a loop busy on purpose (a task resubmitting itself, a million
/// microtasks), and on a small machine running them side by side starves the rest of the test run.
@Suite(.serialized) struct HostileInputTests {
    // MARK: Row 1: a negative, a closed and an unpollable fd, on both backends

    @Test(arguments: LoopBackends.available)
    func registerRefusesNegativeClosedAndUnpollableFds(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdown() }
        let called = Counter()
        func register(_ fd: Int32) async throws {
            try await loop.perform { try loop.register(fd: fd, events: [.read, .write]) { _ in called.increment() } }
        }

        for fd: Int32 in [-1, -2, .min] {
            await #expect(throws: EventLoopError.invalidFileDescriptor(fd: fd)) { try await register(fd) }
        }

        // Closed: a number near the top of the fd table, which no concurrent test's open() can be given.
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        let closed = try IOFixture.highFD(duplicating: pipe.read)
        Glibc.close(closed)
        await #expect(throws: EventLoopError.invalidFileDescriptor(fd: closed)) { try await register(closed) }

        // Regular files and directories: epoll_ctl refuses them with EPERM, while an io_uring poll would report
        // them ready on every wait. The poller refuses them up front (fstat), the same on both backends.
        var template = Array("/tmp/loopkit-hostile-XXXXXX".utf8CString)
        let file = mkstemp(&template)
        try #require(file >= 0)
        unlink(template)
        let directory = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(directory >= 0)
        defer { Glibc.close(file); Glibc.close(directory) }
        for fd in [file, directory] {
            await #expect(throws: EventLoopError.notPollable(fd: fd)) { try await register(fd) }
        }

        // A device without poll support: epoll refuses it (EPERM); an io_uring poll would report it ready on
        // every wait, so the io_uring backend asks epoll first. Both answer .notPollable.
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        try #require(null >= 0)
        defer { Glibc.close(null) }
        #expect(loop.backend == backend)
        await #expect(throws: EventLoopError.notPollable(fd: null)) { try await register(null) }

        // Nothing was recorded for any of them.
        for fd in [-1, closed, file, directory, null] {
            await #expect(throws: EventLoopError.notRegistered(fd: fd)) {
                try await loop.perform { try loop.unregister(fd: fd) }
            }
        }
        #expect(called.count == 0)
        try await expectStillServes(loop)
    }

    // MARK: Row 2: the same fd registered twice

    @Test(arguments: LoopBackends.available)
    func registeringAnFdTwiceThrowsAlreadyRegisteredAndKeepsTheFirst(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pair = try IOFixture.socketPair()
        defer { loop.shutdown(); IOFixture.close(pair) }
        let first = OrderLog<IOEvents>(), second = Counter()
        // In one task: the second registration (for other events) fails, the first stays as it was.
        let secondError = try await loop.perform { () -> EventLoopError? in
            try loop.register(fd: pair.read, events: .read) { ready in
                first.append(ready)
                IOFixture.drain(pair.read)
            }
            do {
                try loop.register(fd: pair.read, events: .write) { _ in second.increment() }
                return nil
            } catch {
                return error as? EventLoopError
            }
        }
        #expect(secondError == .alreadyRegistered(fd: pair.read))
        // In a later task, the same.
        await #expect(throws: EventLoopError.alreadyRegistered(fd: pair.read)) {
            try await loop.perform { try loop.register(fd: pair.read, events: .write) { _ in second.increment() } }
        }
        // The socket is writable: had `.write` replaced `.read`, the first poll would report it.
        try await IOFixture.afterNextPolls(loop)
        #expect(first.count == 0)
        IOFixture.writeByte(pair.write)
        #expect(waitUntil(seconds: 10) { first.count >= 1 })
        #expect(first.snapshot.first == .read)
        #expect(second.count == 0)
        try await loop.perform { try loop.unregister(fd: pair.read) }
        await #expect(throws: EventLoopError.notRegistered(fd: pair.read)) {
            try await loop.perform { try loop.unregister(fd: pair.read) }
        }
        try await expectStillServes(loop)
    }

    /// A registered fd closed without `unregister` (misuse: the poller contract says remove first) whose
    /// number then names another file: that number is still registered with the loop, on both backends,
    /// until `unregister` (which tolerates the kernel having forgotten it).
    @Test(arguments: LoopBackends.available)
    func aRegisteredFdNumberReusedAfterCloseIsStillRegistered(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let a = try IOFixture.pipe(), b = try IOFixture.pipe()
        defer { loop.shutdown(); Glibc.close(a.write); IOFixture.close(b) }
        // The only descriptor of a pipe's read end, near the top of the fd table: closing it releases the file
        // (and epoll forgets it).
        let fd = try IOFixture.highFD(duplicating: a.read)
        Glibc.close(a.read)
        let old = Counter(), new = Counter()
        try await loop.perform { try loop.register(fd: fd, events: .read) { _ in old.increment() } }
        try await IOFixture.afterNextPolls(loop)
        Glibc.close(fd)
        try #require(dup2(b.read, fd) == fd)
        await #expect(throws: EventLoopError.alreadyRegistered(fd: fd)) {
            try await loop.perform { try loop.register(fd: fd, events: .read) { _ in new.increment() } }
        }
        try await loop.perform {
            try loop.unregister(fd: fd)
            try loop.register(fd: fd, events: .read) { _ in
                new.increment()
                IOFixture.drain(fd)
            }
        }
        IOFixture.writeByte(b.write)
        #expect(waitUntil(seconds: 10) { new.count >= 1 })
        try await loop.perform { try loop.unregister(fd: fd) }
        Glibc.close(fd)
        #expect(old.count == 0)
        try await expectStillServes(loop)
    }

    // MARK: Row 3: unregister from inside the fd's own handler

    @Test(arguments: LoopBackends.available)
    func unregisterInsideItsOwnHandlerStopsItThenRegisteringAgainWorks(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdown(); IOFixture.close(pipe) }
        let first = Counter()
        let errors = OrderLog<EventLoopError?>() // per handler call: the second unregister's error
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in
                first.increment()
                do {
                    try loop.unregister(fd: pipe.read)
                    try loop.unregister(fd: pipe.read)
                    errors.append(nil)
                } catch {
                    errors.append(error as? EventLoopError)
                }
                // The byte is left unread: a registration still alive would be reported again at the next poll.
            }
        }
        IOFixture.writeByte(pipe.write)
        #expect(waitUntil(seconds: 10) { first.count >= 1 })
        IOFixture.writeByte(pipe.write)
        try await IOFixture.afterNextPolls(loop)
        #expect(first.count == 1, "the handler ran again after unregistering itself")
        #expect(errors.snapshot == [.notRegistered(fd: pipe.read)])

        // Registered again: the unread bytes are reported at once, to the new handler only.
        let second = Counter()
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in
                second.increment()
                IOFixture.drain(pipe.read)
            }
        }
        #expect(waitUntil(seconds: 10) { second.count >= 1 })
        try await IOFixture.afterNextPolls(loop)
        #expect(second.count == 1, "drained: no further report")
        IOFixture.writeByte(pipe.write)
        #expect(waitUntil(seconds: 10) { second.count == 2 })
        #expect(first.count == 1)
        try await loop.perform { try loop.unregister(fd: pipe.read) }
        try await expectStillServes(loop)
    }

    // MARK: Row 4: huge, negative and zero timer delays

    /// Huge delays saturate (the timer stays pending and never fires), negative and zero delays are due at
    /// once and fire on the next tick in scheduling order; nothing overflows, including on a clock whose
    /// readings are negative (`MonotonicClock` fixes no origin).
    @Test(arguments: [Int64(1_000_000_000), -4_000_000_000_000_000_000])
    func extremeTimerDelaysNeitherTrapNorMisfire(clockStart: Int64) async throws {
        let clock = OffsetClock(start: clockStart)
        var configuration = EventLoop.Configuration.testing(idle: .park)
        configuration.clock = clock
        let loop = try startedLoop(configuration)
        defer { loop.shutdown() }
        let fired = OrderLog<String>()
        let huge: [Duration] = [
            .seconds(Int64.max), .milliseconds(Int64.max), .microseconds(Int64.max), .nanoseconds(Int64.max),
            Duration(secondsComponent: .max, attosecondsComponent: 999_999_999_999_999_999),
            .seconds(Int64.max / 1_000_000_000), .seconds(Int64.max / 2_000_000_000),
        ]
        let due: [(String, Duration)] = [
            ("zero", .zero), ("-1ns", .nanoseconds(-1)), ("-5s", .seconds(-5)), ("min s", .seconds(Int64.min)),
            ("min ms", .milliseconds(Int64.min)), ("min", Duration(secondsComponent: .min, attosecondsComponent: -999_999_999_999_999_999)),
            ("-1as", Duration(secondsComponent: 0, attosecondsComponent: -1)), ("zero again", .zero),
        ]
        var hugeIDs: [TimerID] = []
        for (i, delay) in huge.enumerated() {
            hugeIDs.append(try loop.scheduleTimer(after: delay) { fired.append("huge \(i)") })
        }
        for (name, delay) in due { try loop.scheduleTimer(after: delay) { fired.append(name) } }
        // The clock has not moved: every due timer has the same deadline, so they fire in scheduling order.
        #expect(waitUntil(seconds: 10) { fired.count == due.count })
        try await nudge(loop)
        #expect(fired.snapshot == due.map(\.0))
        #expect(loop.pendingTimerCount == huge.count)
        // Parking computes its timeout from the earliest (huge) deadline.
        #expect(waitUntil(seconds: 10) { loop.state == .sleeping })
        clock.advance(nanoseconds: 1_000_000_000 * 1_000_000_000) // 31 years
        try await nudge(loop)
        #expect(fired.count == due.count, "a huge delay fired: \(fired.snapshot)")
        for id in hugeIDs { try loop.cancelTimer(id) }
        #expect(loop.pendingTimerCount == 0)
        try await expectStillServes(loop)
    }

    // MARK: Row 5: cancelling fired, cancelled and unknown timers

    @Test func cancellingAFiredCancelledOrUnknownTimerThrowsTimerNotFound() async throws {
        let loop = try startedLoop()
        let other = try EventLoop(configuration: .testing()) // never runs: its timers stay pending
        defer { loop.shutdown(); other.shutdown() }
        let fired = OrderLog<String>()

        // Already fired.
        let done = try loop.scheduleTimer(after: .zero) { fired.append("done") }
        #expect(waitUntil(seconds: 10) { fired.count == 1 })
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(done) }

        // Cancelled twice.
        let later = try loop.scheduleTimer(after: .seconds(3600)) { fired.append("later") }
        try loop.cancelTimer(later)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(later) }

        // Cancelled from inside its own callback: it is firing, so it is no longer pending.
        let own = Locked<TimerID?>(nil)
        let ownResult = OrderLog<EventLoopError?>()
        try await loop.perform {
            let id = try loop.scheduleTimer(after: .zero) {
                do {
                    try loop.cancelTimer(own.withLock { $0 }!)
                    ownResult.append(nil)
                } catch {
                    ownResult.append(error as? EventLoopError)
                }
            }
            own.withLock { $0 = id } // before the timer can fire: the loop thread is busy here
        }
        #expect(waitUntil(seconds: 10) { ownResult.count == 1 })
        #expect(ownResult.snapshot == [.timerNotFound])

        // Unknown: an id this loop never issued, although its number is that of a timer pending here.
        let mine = try loop.scheduleTimer(after: .seconds(3600)) { fired.append("mine") }
        var foreign = try other.scheduleTimer(after: .seconds(3600)) {}
        func number(_ id: TimerID) -> Substring { id.description.split(separator: " of loop ")[0] } // "TimerID(n"
        while number(foreign) != number(mine) { foreign = try other.scheduleTimer(after: .seconds(3600)) {} }
        #expect(foreign != mine)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(foreign) }
        #expect(loop.pendingTimerCount == 1, "another loop's id cancelled this loop's timer")
        try loop.cancelTimer(mine)
        #expect(throws: EventLoopError.timerNotFound) { try loop.cancelTimer(mine) }
        #expect(fired.snapshot == ["done"])
        try await expectStillServes(loop)
    }

    // MARK: Row 6: submitting during shutdown

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
        print("HostileInputTests: \(accepted.count) submits accepted (\(acceptedDuringDrain.count) during the final drain), \(refusals.count) refused")
    }

    // MARK: Row 7: run() twice, concurrently and re-entrantly

    @Test func runMisuseThrowsTheDocumentedErrors() async throws {
        // Sequentially, after termination: `.terminated`.
        let finished = try EventLoop(configuration: .testing())
        try finished.submit { finished.shutdown() }
        try finished.run()
        #expect(throws: EventLoopError.terminated) { try finished.run() }
        #expect(throws: EventLoopError.terminated) { try finished.start() }

        // Concurrently from two threads: exactly one runs; the other gets `.alreadyRunning` at once.
        let contended = try EventLoop(configuration: .testing())
        let go = Atomic<Bool>(false)
        let outcomes = OrderLog<EventLoopError?>() // nil: run() returned normally
        let runners = ThreadGroup(2) { _ in
            while !go.load(ordering: .acquiring) { sched_yield() }
            do {
                try contended.run()
                outcomes.append(nil)
            } catch {
                outcomes.append(error as? EventLoopError)
            }
        }
        go.store(true, ordering: .releasing)
        let loserReturned = waitUntil(seconds: 10) { outcomes.count == 1 }
        let afterOne = outcomes.snapshot
        await contended.shutdown()
        runners.join()
        #expect(loserReturned)
        #expect(afterOne == [.alreadyRunning])
        #expect(outcomes.snapshot == [.alreadyRunning, nil])

        // Re-entrantly, from a task on a running loop: that loop and another (left untouched: it runs afterwards).
        let loop = try startedLoop()
        let other = try EventLoop(configuration: .testing())
        let reentrant = try await loop.perform { () -> [EventLoopError?] in
            var errors: [EventLoopError?] = []
            let attempts: [() throws -> Void] = [{ try loop.run() }, { try other.run() }, { try loop.start() }]
            for attempt in attempts {
                do { try attempt(); errors.append(nil) } catch { errors.append(error as? EventLoopError) }
            }
            return errors
        }
        // start() runs the loop on a new thread, so for this (running) loop it is `.alreadyRunning`.
        #expect(reentrant == [.reentrantRun, .reentrantRun, .alreadyRunning])
        try other.start()
        #expect(try await other.perform { other.inEventLoop })
        await other.shutdown()
        await loop.shutdown()

        // From a task of a loop that never ran, drained by the thread that shuts it down.
        let neverRan = try EventLoop(configuration: .testing())
        let drained = OrderLog<EventLoopError?>()
        try neverRan.submit {
            do { try neverRan.run(); drained.append(nil) } catch { drained.append(error as? EventLoopError) }
        }
        await neverRan.shutdown()
        #expect(drained.snapshot == [.reentrantRun])
    }

    /// Waiting for termination on the loop thread would wait forever: by design a precondition, not an error.
    /// It stops the process, so it runs in a child process.
    @Test func waitingForTerminationOnTheLoopThreadIsAPrecondition() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let loop = try EventLoop(configuration: .testing())
            try loop.submit { loop.waitUntilTerminated() }
            try loop.run()
            exit(0) // reached only if the misuse did not stop the process
        }
        #if DEBUG // an optimized build traps without the message
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("waitUntilTerminated() called on the loop thread would wait forever"), "\(message)")
        #endif
    }

    // MARK: Row 8: shutdown (or close) from inside a task

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

    // MARK: Row 9: a million microtasks from one task

    @Test func aMillionMicrotasksFromOneTaskAllRunInOrderAndTheLoopStaysResponsive() throws {
        let loop = try startedLoop(.testing(idle: .park))
        defer { loop.shutdown() }
        let total = 1_000_000
        let next = Atomic<Int>(0) // the index the next microtask must have (loop thread only; atomic for Sendable)
        let outOfOrder = Counter(), queueFailures = Counter()
        let externalAt = Atomic<Int>(-1), timerAt = Atomic<Int>(-1), foreignAt = Atomic<Int>(-1)
        let foreignQueued = Atomic<Bool>(false)
        try loop.submit {
            for i in 0..<total {
                do {
                    try loop.queueMicrotask {
                        if next.load(ordering: .relaxed) != i { outOfOrder.increment() }
                        next.store(i + 1, ordering: .relaxed)
                        // Hold until a task from another thread is queued behind ~999,000 microtasks.
                        if i == 1000 { _ = waitUntil(seconds: 10) { foreignQueued.load(ordering: .acquiring) } }
                    }
                } catch {
                    queueFailures.increment()
                }
            }
            try? loop.submit { externalAt.store(next.load(ordering: .relaxed), ordering: .relaxed) }
            try? loop.scheduleTimer(after: .zero) { timerAt.store(next.load(ordering: .relaxed), ordering: .relaxed) }
        }
        #expect(waitUntil(seconds: 30) { next.load(ordering: .relaxed) > 1000 })
        try loop.submit { foreignAt.store(next.load(ordering: .relaxed), ordering: .relaxed) }
        foreignQueued.store(true, ordering: .releasing)
        #expect(waitUntil(seconds: 60) { next.load(ordering: .relaxed) == total })
        #expect(queueFailures.count == 0)
        #expect(outOfOrder.count == 0)
        // Each ran before the last microtask: the overflow is drained a budget at a time, between phases.
        let ranAt = [("external task", externalAt.load(ordering: .relaxed)), ("timer", timerAt.load(ordering: .relaxed)),
                     ("foreign task", foreignAt.load(ordering: .relaxed))]
        for (name, value) in ranAt {
            #expect(value >= 0 && value < total, "\(name) ran after \(value) microtasks")
        }
        #expect(waitUntil(seconds: 10) { loop.state == .sleeping }, "the loop never slept after the microtasks")
        let stillServes = try performBlocking(loop) { 42 }
        #expect(stillServes == 42)
    }

    // MARK: Row 10: a task that resubmits itself forever

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

// MARK: Helpers

/// The three ways to queue a task.
enum SubmitLane: CaseIterable, Sendable, CustomStringConvertible {
    case external, `internal`, microtask

    func submit(to loop: EventLoop, _ task: @escaping @Sendable () -> Void) throws {
        switch self {
        case .external: try loop.submit(task)
        case .internal: try loop.submitInternal(task)
        case .microtask: try loop.queueMicrotask(task)
        }
    }

    var description: String {
        switch self {
        case .external: return "submit"
        case .internal: return "submitInternal"
        case .microtask: return "queueMicrotask"
        }
    }
}

/// Runs `action` when released (to observe where, and when, the loop releases a closure).
final class DeinitAction: Sendable {
    private let action: @Sendable () -> Void
    init(_ action: @escaping @Sendable () -> Void) { self.action = action }
    deinit { action() }
}

/// A manual clock that starts at `start` nanoseconds, which may be negative.
final class OffsetClock: MonotonicClock {
    private let now: Atomic<Int64>
    init(start: Int64) { now = Atomic(start) }
    func nanoseconds() -> Int64 { now.load(ordering: .acquiring) }
    func advance(nanoseconds: Int64) { now.add(nanoseconds, ordering: .releasing) }
}

/// How many times each of `count` tasks ran.
final class RunLedger: @unchecked Sendable {
    private let counts: UnsafeMutablePointer<Atomic<UInt8>>
    let count: Int
    init(count: Int) {
        self.count = count
        counts = .allocate(capacity: count)
        for i in 0..<count { (counts + i).initialize(to: Atomic(0)) }
    }
    deinit {
        counts.deinitialize(count: count)
        counts.deallocate()
    }
    func ran(_ i: Int) { counts[i].add(1, ordering: .relaxed) }
    func runs(_ i: Int) -> Int { Int(counts[i].load(ordering: .relaxed)) }
    var total: Int { (0..<count).reduce(0) { $0 + runs($1) } }
}

/// `perform` for a synchronous test: submits and waits for the result.
private func performBlocking<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) throws -> T? {
    let result = Locked<T?>(nil)
    try loop.submit { let value = body(); result.withLock { $0 = value } }
    _ = waitUntil(seconds: 10) { result.withLock { $0 } != nil }
    return result.withLock { $0 }
}

/// The loop still runs tasks, timers and fd handlers: a `perform` round trip, a zero-delay timer, and a
/// pipe's readiness reaching a fresh registration.
private func expectStillServes(_ loop: EventLoop, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let answer = try await loop.perform { 6 * 7 }
    #expect(answer == 42, sourceLocation: sourceLocation)
    let fired = Counter()
    try loop.scheduleTimer(after: .zero) { fired.increment() }
    #expect(waitUntil(seconds: 10) { fired.count == 1 }, "a timer", sourceLocation: sourceLocation)
    let pipe = try IOFixture.pipe()
    defer { IOFixture.close(pipe) }
    let ready = Counter()
    try await loop.perform {
        try loop.register(fd: pipe.read, events: .read) { _ in
            ready.increment()
            IOFixture.drain(pipe.read)
        }
    }
    IOFixture.writeByte(pipe.write)
    #expect(waitUntil(seconds: 10) { ready.count >= 1 }, "an fd handler", sourceLocation: sourceLocation)
    try await loop.perform { try loop.unregister(fd: pipe.read) }
}
