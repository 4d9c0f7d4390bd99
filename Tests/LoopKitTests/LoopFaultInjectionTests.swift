import CLoopCore
import CLoopCore.FaultInjection
import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Faults injected under a running loop (lk_fault.h): every task a submit accepted runs exactly once and in
/// order, every refusal is a documented error, and the loop never hangs. Waits are bounded by deadlines.
@Suite(.serialized, .enabled(if: faultTestsEnabled, "fault injection is process-global: make test runs it alone"))
final class LoopFaultInjectionTests {
    init() { lk_fault_disarm_all() }
    deinit { lk_fault_disarm_all() }

    /// Errors the loop hands to its error handler.
    final class ErrorLog: Sendable {
        private let errors = Locked<[EventLoopError]>([])
        func record(_ error: any Error) { errors.withLock { $0.append(error as! EventLoopError) } }
        var snapshot: [EventLoopError] { errors.withLock { $0 } }
    }

    static func configuration(backend: PollBackend = .auto, ingress: IngressKind = .perProducer,
                              errors: ErrorLog? = nil) -> EventLoop.Configuration {
        var c = EventLoop.Configuration.testing(backend: backend, ingress: ingress)
        if let errors { c.errorHandler = { errors.record($0) } }
        return c
    }

    /// A started loop and a pipe for fd faults: the outcomes of the calls a test attempts ("label: ok" or
    /// "label: <error>", in order) and the bytes `reader` has read. `tearDown()` disarms every fault first (one
    /// left armed must not stall the shutdown), then shuts the loop down and closes the pipe.
    final class PipeFixture: Sendable {
        let loop: EventLoop
        let pipe: IOFixture.Pair
        private let log = OrderLog<String>()
        let bytesRead = Counter()

        init(backend: PollBackend) throws {
            loop = try startedLoop(LoopFaultInjectionTests.configuration(backend: backend))
            pipe = try IOFixture.pipe()
        }

        func tearDown() {
            LoopFaultInjectionTests.disarmThenShutDown(loop)
            IOFixture.close(pipe)
        }

        /// Makes a loop call and records its outcome under `label`.
        func attempt(_ label: String, _ body: () throws -> Void) {
            do { try body(); log.append("\(label): ok") } catch { log.append("\(label): \(error)") }
        }
        var outcomes: [String] { log.snapshot }
        var outcomeCount: Int { log.count }

        /// A handler for the read end that reads one byte and counts it.
        var reader: @Sendable (IOEvents) -> Void {
            { [pipe, bytesRead] _ in
                var byte: UInt8 = 0
                _ = read(pipe.read, &byte, 1)
                bytesRead.increment()
            }
        }
    }

    /// How every test ends: faults disarmed first (one left armed could stall the shutdown), then the loop
    /// shut down.
    static func disarmThenShutDown(_ loop: EventLoop) {
        lk_fault_disarm_all()
        loop.shutdown()
    }

    /// Waits until the loop is blocked in its poller (idle strategy .park).
    static func waitUntilSleeping(_ loop: EventLoop) -> Bool { waitUntil { loop.state == .sleeping } }

    // MARK: Memory for queued work

    /// Out of memory for the external queue: submit throws `.outOfMemory` and queues nothing; every task it
    /// accepted runs, in order, and submit works again once memory is back.
    @Test(arguments: IngressKind.allCases)
    func submitOutOfMemoryThrowsAndLosesNothing(ingress: IngressKind) throws {
        let loop = try startedLoop(Self.configuration(ingress: ingress))
        defer { Self.disarmThenShutDown(loop) }
        let release = try holdLoop(loop) // the external queue now holds its first block of memory
        let point: lk_fault_point
        switch ingress {
        case .perProducer: point = LK_FAULT_SEGMENT_ALLOC
        case .lockFree: point = LK_FAULT_NODE_ALLOC
        case .chunked: point = LK_FAULT_CHUNK_ALLOC
        }
        lk_fault_arm(point, ENOMEM, 0, LK_FAULT_FOREVER)
        let log = OrderLog<Int>()
        var accepted = 0
        var refusal: (any Error)?
        while accepted < 1 << 20 {
            let index = accepted
            do { try loop.submit { log.append(index) } } catch { refusal = error; break }
            accepted += 1
        }
        #expect(refusal as? EventLoopError == .outOfMemory)
        #expect(accepted > 0)
        lk_fault_disarm(point)
        let last = accepted
        try loop.submit { log.append(last) }
        release()
        #expect(waitUntil { log.count == accepted + 1 })
        #expect(log.snapshot == Array(0...accepted))
    }

    /// A thread's first submit to a per-producer loop creates its queue; when that allocation fails the
    /// submit throws `.outOfMemory`, queues nothing, and the thread's next submit registers and runs.
    @Test func firstSubmitFromAThreadOutOfMemoryThrowsAndLosesNothing() throws {
        let loop = try startedLoop(Self.configuration(ingress: .perProducer))
        defer { loop.shutdown() }
        defer { lk_fault_disarm_all() }
        let ran = Counter()
        let outcome = Locked<[String]>([])
        runOnThreads(1) { _ in
            lk_fault_arm(LK_FAULT_PRODUCER_ALLOC, ENOMEM, 0, 1)
            do {
                try loop.submit { ran.increment() }
                outcome.withLock { $0.append("accepted") }
            } catch {
                outcome.withLock { $0.append("\(error)") }
            }
            do {
                try loop.submit { ran.increment() }
                outcome.withLock { $0.append("accepted") }
            } catch {
                outcome.withLock { $0.append("\(error)") }
            }
        }
        #expect(outcome.withLock { $0 } == ["\(EventLoopError.outOfMemory)", "accepted"])
        #expect(lk_fault_injected(LK_FAULT_PRODUCER_ALLOC) >= 1)
        #expect(waitUntil { ran.count == 1 })
        let later = Counter()
        try loop.submit { later.increment() }
        #expect(waitUntil { later.count == 1 })
        #expect(ran.count == 1, "the refused task never ran")
    }

    /// The internal lane takes its snapshot with a marker pushed behind the queued tasks. When no node is
    /// left for the marker, the lane still runs (bounded by a count instead).
    @Test func internalLaneRunsWhenTheMarkerCannotBeAllocated() throws {
        let loop = try startedLoop(Self.configuration())
        defer { Self.disarmThenShutDown(loop) }
        let release = try holdLoop(loop)
        lk_fault_arm(LK_FAULT_NODE_ALLOC, ENOMEM, 1, LK_FAULT_FOREVER) // the internal queue gets one slab
        let log = OrderLog<Int>()
        var accepted = 0
        while accepted < 1 << 20 {
            let index = accepted
            do { try loop.submitInternal { log.append(index) } } catch {
                #expect(error as? EventLoopError == .outOfMemory)
                break
            }
            accepted += 1
        }
        #expect(accepted > 0 && accepted < 1 << 20, "the pool ran dry")
        release()
        #expect(waitUntil { log.count == accepted }, "every accepted internal task ran while memory was short")
        #expect(log.snapshot == Array(0..<accepted))
        lk_fault_disarm_all()
    }

    /// Out of memory for the microtask ring's overflow: queueMicrotask throws `.outOfMemory`; every accepted
    /// microtask runs, in order.
    @Test func microtaskOverflowOutOfMemoryThrowsAndLosesNothing() throws {
        let loop = try startedLoop(Self.configuration())
        defer { Self.disarmThenShutDown(loop) }
        let log = OrderLog<Int>()
        let outcome = Locked<(accepted: Int, error: EventLoopError?)>((0, nil))
        try loop.submit {
            lk_fault_arm(LK_FAULT_RING_OVERFLOW_ALLOC, ENOMEM, 0, LK_FAULT_FOREVER)
            defer { lk_fault_disarm(LK_FAULT_RING_OVERFLOW_ALLOC) }
            var accepted = 0
            while accepted < 100_000 {
                let index = accepted
                do { try loop.queueMicrotask { log.append(index) } } catch {
                    outcome.withLock { $0.error = error as? EventLoopError }
                    break
                }
                accepted += 1
            }
            outcome.withLock { $0.accepted = accepted }
        }
        #expect(waitUntil { outcome.withLock { $0.accepted } > 0 })
        let (accepted, error) = outcome.withLock { $0 }
        #expect(error == .outOfMemory)
        #expect(accepted == Int(LK_RING_CAPACITY), "the ring's slots, then the overflow's first growth failed")
        #expect(waitUntil { log.count == accepted })
        #expect(log.snapshot == Array(0..<accepted))
    }

    // MARK: Wakeups

    /// A write to the wake eventfd that fails with EAGAIN (a saturated counter) wakes nobody by itself; the
    /// signaller resets the counter and writes again, so the sleeping loop runs the task.
    @Test(arguments: LoopBackends.available)
    func sleepingLoopWakesWhenTheEventfdIsSaturated(backend: PollBackend) throws {
        let loop = try startedLoop(Self.configuration(backend: backend))
        defer { Self.disarmThenShutDown(loop) }
        let ran = Counter()
        for _ in 0..<3 {
            try #require(Self.waitUntilSleeping(loop))
            lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EAGAIN, 0, 1)
            let before = ran.count
            try loop.submit { ran.increment() }
            #expect(waitUntil(seconds: 10) { ran.count == before + 1 }, "the sleeping loop woke")
        }
    }

    /// A wakeup whose write keeps failing is reported to the error handler; the task stays queued and runs
    /// at the next wakeup.
    @Test func failedWakeupIsReportedAndTheTaskRunsAtTheNextWakeup() throws {
        let errors = ErrorLog()
        let loop = try startedLoop(Self.configuration(errors: errors))
        defer { Self.disarmThenShutDown(loop) }
        let log = OrderLog<Int>()
        try #require(Self.waitUntilSleeping(loop))
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EIO, 0, LK_FAULT_FOREVER)
        try loop.submit { log.append(1) }
        #expect(errors.snapshot == [.system(operation: "wake", errno: EIO)])
        lk_fault_disarm(LK_FAULT_EVENTFD_WRITE)
        try loop.submit { log.append(2) }
        #expect(waitUntil { log.count == 2 })
        #expect(log.snapshot == [1, 2])
    }

    /// The wakeup that shutdown() sends a sleeping loop fails: the shutting-down thread signals again while
    /// it waits, so the loop still terminates (and the failure is reported).
    @Test(arguments: [false, true])
    func shutdownWhoseWakeupFailsStillTerminates(async: Bool) async throws {
        let errors = ErrorLog()
        let loop = try startedLoop(Self.configuration(errors: errors))
        defer { lk_fault_disarm_all() }
        let ran = Counter()
        try loop.submit { ran.increment() }
        try #require(waitUntil { ran.count == 1 })
        try #require(Self.waitUntilSleeping(loop))
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EIO, 0, 4) // every attempt of one signal
        let finished = Counter()
        if async {
            Task.detached {
                await loop.shutdown()
                finished.increment()
            }
        } else {
            try startDetachedThread {
                loop.shutdown()
                finished.increment()
            }
        }
        #expect(waitUntil(seconds: 10) { finished.count == 1 }, "shutdown returned")
        #expect(loop.state == .terminated)
        #expect(errors.snapshot == [.system(operation: "wake", errno: EIO)])
    }

    // MARK: Interrupted and failing system calls

    /// EINTR at every hooked call while producers submit, a timer fires and an fd handler runs: nothing is
    /// lost and no error reaches the handler.
    @Test(arguments: LoopBackends.available)
    func interruptedSystemCallsEverywhereLoseNothing(backend: PollBackend) throws {
        let errors = ErrorLog()
        let loop = try startedLoop(Self.configuration(backend: backend, errors: errors))
        defer { Self.disarmThenShutDown(loop) }
        let points = [LK_FAULT_EVENTFD_WRITE, LK_FAULT_EPOLL_CTL, LK_FAULT_EPOLL_WAIT, LK_FAULT_URING_SUBMIT,
                      LK_FAULT_URING_WAIT]
        for point in points { lk_fault_arm(point, EINTR, 0, 200) }
        let injectedBefore = points.map { lk_fault_injected($0) }

        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let readable = Counter(), timerFired = Counter(), registered = Counter()
        let readEnd = fds[0]
        try loop.submit {
            do {
                try loop.register(fd: readEnd, events: .read) { _ in
                    var byte: UInt8 = 0
                    _ = read(readEnd, &byte, 1)
                    readable.increment()
                }
                registered.increment()
            } catch { errors.record(error) }
        }
        _ = try loop.scheduleTimer(after: .milliseconds(5)) { timerFired.increment() }
        #expect(waitUntil { registered.count == 1 })

        let producers = 3, perProducer = stressCount(2_000, minimum: 200)
        let log = Locked<[[Int]]>(Array(repeating: [], count: producers))
        runOnThreads(producers) { p in
            for i in 0..<perProducer {
                try! loop.submit { log.withLock { $0[p].append(i) } }
                if i % 100 == 0 { _ = waitUntil { loop.state == .sleeping || log.withLock { $0[p].count } == i + 1 } }
            }
        }
        var byte: UInt8 = 1
        #expect(write(fds[1], &byte, 1) == 1)
        #expect(waitUntil { log.withLock { $0.allSatisfy { $0.count == perProducer } } })
        #expect(log.withLock { $0.allSatisfy { $0 == Array(0..<perProducer) } })
        #expect(waitUntil { timerFired.count == 1 && readable.count == 1 })
        #expect(errors.snapshot.isEmpty)
        let waitPoint = backend == .epoll ? LK_FAULT_EPOLL_WAIT : LK_FAULT_URING_WAIT
        let waitIndex = points.firstIndex(of: waitPoint)!
        #expect(lk_fault_injected(waitPoint) > injectedBefore[waitIndex], "the waits were interrupted")
        lk_fault_disarm_all()
    }

    /// A wait that fails (not EINTR) is reported to the error handler; the loop goes on serving tasks and
    /// timers.
    @Test(arguments: LoopBackends.available)
    func failedWaitIsReportedAndTheLoopKeepsServing(backend: PollBackend) throws {
        let errors = ErrorLog()
        let loop = try startedLoop(Self.configuration(backend: backend, errors: errors))
        defer { Self.disarmThenShutDown(loop) }
        let point = loop.backend == .epoll ? LK_FAULT_EPOLL_WAIT : LK_FAULT_URING_WAIT
        try #require(Self.waitUntilSleeping(loop))
        lk_fault_arm(point, ENOMEM, 0, 3)
        let timerFired = Counter(), ran = Counter()
        _ = try loop.scheduleTimer(after: .milliseconds(2)) { timerFired.increment() }
        #expect(waitUntil { timerFired.count == 1 })
        try loop.submit { ran.increment() }
        #expect(waitUntil { ran.count == 1 })
        #expect(errors.snapshot == Array(repeating: .system(operation: "poll", errno: ENOMEM), count: 3))
    }

    /// epoll_ctl refusing a registration: a typed error, nothing registered, and a retry succeeds.
    @Test func epollCtlFailureGivesTypedErrorsAndRegistrationCanBeRetried() throws {
        let f = try PipeFixture(backend: .epoll)
        defer { f.tearDown() }
        let loop = f.loop, readEnd = f.pipe.read
        try loop.submit {
            let attempt = f.attempt, handler = f.reader
            lk_fault_arm(LK_FAULT_EPOLL_CTL, ENOSPC, 0, 1)
            attempt("register") { try loop.register(fd: readEnd, events: .read, handler: handler) }
            attempt("unregister") { try loop.unregister(fd: readEnd) }
            lk_fault_arm(LK_FAULT_EPOLL_CTL, ENOMEM, 0, 1)
            attempt("register") { try loop.register(fd: readEnd, events: .read, handler: handler) }
            attempt("register") { try loop.register(fd: readEnd, events: .read, handler: handler) }
            lk_fault_arm(LK_FAULT_EPOLL_CTL, ENOMEM, 0, 1)
            attempt("modify") { try loop.modify(fd: readEnd, events: .write) }
        }
        #expect(waitUntil { f.outcomeCount == 5 })
        #expect(f.outcomes == [
            "register: \(EventLoopError.system(operation: "register", errno: ENOSPC))",
            "unregister: \(EventLoopError.notRegistered(fd: readEnd))",
            "register: \(EventLoopError.outOfMemory)",
            "register: ok",
            "modify: \(EventLoopError.outOfMemory)",
        ])
        var byte: UInt8 = 1
        #expect(write(f.pipe.write, &byte, 1) == 1)
        #expect(waitUntil { f.bytesRead.count == 1 }, "the registration that succeeded, with its interest unchanged")
    }

    /// io_uring with a submission queue that stays full: unregister throws (the fd stays registered and
    /// its handler keeps working), the loop keeps running tasks instead of blocking on requests it could
    /// not submit, and everything works again once the queue drains.
    @Test(.enabled(if: LoopBackends.available.contains(.ioUring), "io_uring is refused here"))
    func fullUringSubmissionQueueIsRetriedWithoutHanging() throws {
        let f = try PipeFixture(backend: .ioUring)
        defer { f.tearDown() }
        let loop = f.loop, readEnd = f.pipe.read, attempt = f.attempt
        try loop.submit { attempt("register") { try loop.register(fd: readEnd, events: .read, handler: f.reader) } }
        #expect(waitUntil { f.outcomeCount == 1 })
        try #require(Self.waitUntilSleeping(loop)) // the fd's poll is in the kernel
        try loop.submit {
            lk_fault_arm(LK_FAULT_URING_SQE, EBUSY, 0, LK_FAULT_FOREVER)
            lk_fault_arm(LK_FAULT_URING_SUBMIT, EBUSY, 0, LK_FAULT_FOREVER)
            attempt("unregister") { try loop.unregister(fd: readEnd) } // its cancellation cannot be queued
        }
        #expect(waitUntil { f.outcomeCount == 2 })
        var byte: UInt8 = 1
        #expect(write(f.pipe.write, &byte, 1) == 1)
        #expect(waitUntil { f.bytesRead.count == 1 }, "still registered: the handler runs")
        let ran = Counter()
        for _ in 0..<100 { try loop.submit { ran.increment() } }
        #expect(waitUntil { ran.count == 100 }, "tasks run while the fd cannot be re-armed")
        try loop.submit { lk_fault_disarm_all() }
        #expect(write(f.pipe.write, &byte, 1) == 1)
        #expect(waitUntil { f.bytesRead.count == 2 }, "re-armed once the queue drained")
        try loop.submit { attempt("unregister") { try loop.unregister(fd: readEnd) } }
        #expect(waitUntil { f.outcomeCount == 3 })
        #expect(f.outcomes == [
            "register: ok", "unregister: \(EventLoopError.system(operation: "unregister", errno: EBUSY))",
            "unregister: ok",
        ])
    }
}
