import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// States and the errors of running: awake → running ⇄ sleeping → terminating → terminated.
@Suite struct LifecycleTests {
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

    @Test func performReturnsTheResultAndRethrows() async throws {
        struct Boom: Error {}
        let loop = try startedLoop()
        let value = try await loop.perform { 6 * 7 }
        #expect(value == 42)
        await #expect(throws: Boom.self) { try await loop.perform { throw Boom() } }
        await loop.shutdown()
    }

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
