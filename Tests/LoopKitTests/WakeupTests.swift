import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// Lost wakeups through the Swift API: many submit-to-idle-loop round trips, each with a deadline.
@Suite struct WakeupTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let backend: PollBackend
        let idle: IdleStrategy
        var testDescription: String { "\(backend), \(idle == .park ? "park" : "spin-then-park")" }
    }

    static let cases: [Case] = LoopBackends.available.flatMap { [Case(backend: $0, idle: .park), Case(backend: $0, idle: .default)] }

    /// No lost wakeup: thousands of submits to an idle loop (asleep, or caught mid-spin) each run within a
    /// deadline, on every backend and idle strategy, with at most one eventfd write per round trip.
    @Test(arguments: cases)
    func tenThousandRoundTripsToAnIdleLoop(_ c: Case) throws {
        var configuration = EventLoop.Configuration.testing(backend: c.backend, idle: c.idle)
        configuration.metricsEnabled = true
        let loop = try startedLoop(configuration)
        defer { loop.shutdown() }
        let done = Atomic<Int>(0)
        let rounds = stressCount(10_000, minimum: 2_000)
        var missed = 0
        var slept = 0
        for round in 1...rounds {
            // With .park, let the loop fall asleep first (the interesting case); with spinning, alternate
            // between catching it mid-spin and after it parked.
            if c.idle == .park || round % 2 == 0 {
                if waitUntil(seconds: 1, { loop.state == .sleeping }) { slept += 1 }
            }
            try loop.submit { done.store(round, ordering: .releasing) }
            if !waitUntil(seconds: 10, { done.load(ordering: .acquiring) == round }) {
                missed += 1
                break
            }
        }
        #expect(missed == 0, "a submitted task was not run within 10 s: lost wakeup")
        #expect(slept > rounds / 4, "the loop was rarely asleep: the test did not exercise wakeups")
        let m = loop.metrics()!
        #expect(m.wakeSyscalls <= m.wakeRequests)
        #expect(m.wakeSyscalls <= UInt64(rounds) + 1, "at most one eventfd write per round trip")
    }

    /// Producers racing to wake one loop make at most one eventfd write per wakeup request and per task: only the
    /// producer that sets the pending flag writes.
    @Test func manyProducersWakeOneLoopWithFewSyscalls() throws {
        var configuration = EventLoop.Configuration.testing(idle: .park)
        configuration.metricsEnabled = true
        let loop = try startedLoop(configuration)
        defer { loop.shutdown() }
        let ran = Counter()
        let perProducer = stressCount(20_000, minimum: 2_000)
        runOnThreads(4) { _ in
            for _ in 0..<perProducer { try! loop.submit { ran.increment() } }
        }
        #expect(waitUntil { ran.count == 4 * perProducer })
        let m = loop.metrics()!
        #expect(m.wakeSyscalls <= m.wakeRequests, "only the producer that flips the pending flag writes")
        #expect(m.wakeSyscalls <= UInt64(4 * perProducer), "never more than one eventfd write per task")
    }
}
