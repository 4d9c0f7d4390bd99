import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Calls outside the loop's contract: running a loop twice, concurrently, re-entrantly or after it
/// terminated, and loop-thread rules broken. Each gets the documented error, or stops the process with a
/// precondition (checked in a child process), and leaves the loop as it was.
@Suite struct BadInputTests {
    /// run() and start() on a loop that is already running throw `.alreadyRunning`.
    @Test func runTwiceFailsWithAlreadyRunning() throws {
        let loop = try startedLoop()
        defer { loop.shutdown() }
        #expect(throws: EventLoopError.alreadyRunning) { try loop.run() }
        #expect(throws: EventLoopError.alreadyRunning) { try loop.start() }
    }

    /// run() from inside a task, of this loop or another, throws `.reentrantRun`.
    @Test func runFromInsideATaskFailsWithReentrantRun() async throws {
        let loop = try startedLoop()
        let other = try EventLoop(configuration: .testing())
        let errors = try await loop.perform { () -> [EventLoopError?] in
            var result: [EventLoopError?] = []
            do { try loop.run() } catch { result.append(error as? EventLoopError) }
            do { try other.run() } catch { result.append(error as? EventLoopError) }
            return result
        }
        #expect(errors == [.reentrantRun, .reentrantRun])
        await loop.shutdown()
        await other.shutdown()
    }

    /// After termination run, start, every submit and scheduleTimer throw `.terminated`; shutdown and close are
    /// no-ops.
    @Test func runAfterTerminationFailsWithTerminated() throws {
        let loop = try startedLoop()
        loop.shutdown()
        #expect(throws: EventLoopError.terminated) { try loop.run() }
        #expect(throws: EventLoopError.terminated) { try loop.start() }
        #expect(throws: EventLoopError.terminated) { try loop.submit {} }
        #expect(throws: EventLoopError.terminated) { try loop.submitInternal {} }
        #expect(throws: EventLoopError.terminated) { try loop.queueMicrotask {} }
        #expect(throws: EventLoopError.terminated) { try loop.scheduleTimer(after: .seconds(1)) {} }
        loop.shutdown() // idempotent
        loop.close()
        #expect(loop.state == .terminated)
    }

    /// preconditionInEventLoop() called off the loop thread stops the process, checked in a child process.
    @Test func preconditionInEventLoopStopsAForeignCaller() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            loop.preconditionInEventLoop()
        }
    }

    /// `run()` misuse throws the documented error and disturbs nothing: after termination `.terminated`; from
    /// two threads at once one runs and the other gets `.alreadyRunning` at once; from a task, for this or
    /// another loop, `.reentrantRun` (and `start()` of the running loop `.alreadyRunning`); from a task of a
    /// loop that never ran, drained by the shutting-down thread, `.reentrantRun`.
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
}
