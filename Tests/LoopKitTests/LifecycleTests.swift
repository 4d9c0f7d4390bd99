import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// States and the errors of running: awake → running ⇄ sleeping → terminating → terminated.
@Suite struct LifecycleTests {
    /// A loop goes from awake through running to sleeping when idle and to terminated after shutdown, and reports
    /// its backend (to its tasks and to any thread) only while it runs.
    @Test(arguments: LoopBackends.available)
    func statesFromCreationToTermination(backend: PollBackend) throws {
        let loop = try EventLoop(configuration: .testing(backend: backend))
        #expect(loop.state == .created)
        #expect(loop.backend == nil)
        try loop.start()
        #expect(loop.state == .running || loop.state == .sleeping)
        #expect(waitUntil { loop.state == .sleeping }, "an idle loop with the park strategy sleeps")
        let reported = Locked<PollBackend?>(nil)
        let done = Counter()
        try loop.submit { reported.withLock { $0 = loop.backend }; done.increment() }
        #expect(waitUntil { done.count == 1 })
        #expect(reported.withLock { $0 } == backend)
        #expect(loop.backend == backend, "readable from any thread while running")
        loop.shutdown()
        #expect(loop.state == .terminated)
        #expect(loop.backend == nil)
    }

    /// run() on the calling thread runs the queued tasks and returns once a task has shut the loop down; the thread
    /// is then no longer the loop's.
    @Test func runOnTheCallingThreadReturnsAfterShutdown() throws {
        let loop = try EventLoop(configuration: .testing())
        let ran = Counter()
        try loop.submit { ran.increment() }
        try loop.submit { loop.shutdown() }
        try loop.run() // returns once the loop has terminated
        #expect(ran.count == 1)
        #expect(loop.state == .terminated)
        #expect(!loop.inEventLoop)
    }

    /// inEventLoop is true on the loop's own thread only: not on a foreign thread, not on another loop's thread.
    @Test func inEventLoopIsExact() async throws {
        let loop = try startedLoop()
        #expect(!loop.inEventLoop)
        let inside = try await loop.perform { loop.inEventLoop }
        #expect(inside)
        let other = try startedLoop()
        let crossed = try await loop.perform { other.inEventLoop }
        #expect(!crossed, "on loop A's thread, loop B is not 'in event loop'")
        await loop.shutdown()
        await other.shutdown()
    }

    /// An error thrown by a task, an internal task, a microtask or a timer reaches the configured error handler.
    @Test func thrownErrorsReachTheErrorHandler() throws {
        struct Boom: Error, Equatable { let n: Int }
        let seen = OrderLog<Int>()
        var configuration = EventLoop.Configuration.testing()
        configuration.errorHandler = { error in seen.append((error as? Boom)?.n ?? -1) }
        let loop = try startedLoop(configuration)
        try loop.submit { throw Boom(n: 1) }
        try loop.submitInternal { throw Boom(n: 2) }
        try loop.queueMicrotask { throw Boom(n: 3) }
        try loop.scheduleTimer(after: .zero) { throw Boom(n: 4) }
        #expect(waitUntil { seen.count == 4 })
        #expect(Set(seen.snapshot) == [1, 2, 3, 4])
        loop.shutdown()
    }

    /// perform returns the body's result to the caller, or rethrows its error.
    @Test func performReturnsTheResultAndRethrows() async throws {
        struct Boom: Error {}
        let loop = try startedLoop()
        let value = try await loop.perform { 6 * 7 }
        #expect(value == 42)
        await #expect(throws: Boom.self) { try await loop.perform { throw Boom() } }
        await loop.shutdown()
    }

    /// metrics() is nil unless enabled; enabled, it counts tasks by lane, microtasks, timers and ticks, records a
    /// latency for every task from another thread, and never counts more wake syscalls than wake requests.
    @Test func metricsAreNilWhenDisabledAndCountWhenEnabled() async throws {
        let plain = try startedLoop()
        #expect(plain.metrics() == nil)
        await plain.shutdown()

        var configuration = EventLoop.Configuration.testing(idle: .park)
        configuration.metricsEnabled = true
        let loop = try startedLoop(configuration)
        for _ in 0..<100 { try loop.submit {} }
        for _ in 0..<10 { try loop.submitInternal {} }
        try loop.queueMicrotask {}
        try loop.scheduleTimer(after: .zero) {}
        #expect(waitUntil { (loop.metrics()?.externalTasksRun ?? 0) == 100 && loop.metrics()!.timersFired == 1 })
        let m = loop.metrics()!
        #expect(m.internalTasksRun == 10)
        #expect(m.microtasksRun == 1)
        #expect(m.ticks > 0)
        #expect(m.taskLatency.count == 110, "every task from another thread has a submit-to-start latency")
        #expect(m.externalQueueDepth == 0)
        #expect(m.wakeSyscalls <= m.wakeRequests)
        await loop.shutdown()
    }
}
