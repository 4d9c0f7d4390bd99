import Glibc
import Logging
import LoopKit
import LoopKitIntegration
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import TestSupport

/// EventLoopGroupService under swift-service-lifecycle: graceful shutdown drains every loop, cancellation
/// closes them, SIGTERM drains with producers still submitting.
@Suite struct ServiceTests {
    static func group(_ loopCount: Int = 3) throws -> EventLoopGroup {
        var configuration = EventLoopGroup.Configuration(loopCount: loopCount)
        configuration.loop.idleStrategy = .park
        return try EventLoopGroup(configuration: configuration)
    }

    static let quiet = Logger(label: "services") { _ in SwiftLogNoOpLogHandler() }

    /// The loops are held with their queues full when the service group shuts down; nothing may be lost, and
    /// run() must not return before every loop has drained.
    @Test func gracefulShutdownOfTheServiceGroupDrainsEveryLoop() async throws {
        let group = try Self.group()
        let log = TestLogHandler()
        let service = EventLoopGroupService(group, logger: log.logger)
        let services = ServiceGroup(configuration: .init(services: [service], logger: Self.quiet))
        let perLoop = 1_000
        let (ran, release) = try group.queueBehindHeldLoops(perLoop: perLoop)
        let run = Task { try await services.run() }
        #expect(await awaitCondition { log.contains(message: "running") })
        #expect(group.allSatisfy { $0.state != .terminating && $0.state != .terminated }, "the loops run until shutdown")
        await services.triggerGracefulShutdown()
        #expect(await awaitCondition { group.allSatisfy { $0.state == .terminating } })
        release()
        try await run.value
        #expect(group.allSatisfy { $0.state == .terminated })
        #expect(ran.total == 3 * perLoop)
        #expect(log.entries.map(\.message) == ["running", "shutting down gracefully", "terminated"])
    }

    /// Cancelling the service group closes the loops: the tasks queued behind the held ones never run.
    @Test func cancellationClosesTheLoops() async throws {
        let group = try Self.group()
        let services = ServiceGroup(configuration: .init(services: [EventLoopGroupService(group)], logger: Self.quiet))
        let (ran, release) = try group.queueBehindHeldLoops(perLoop: 100)
        let run = Task { try await services.run() }
        run.cancel()
        #expect(await awaitCondition { group.allSatisfy { $0.state == .terminating } })
        release()
        _ = try? await run.value
        #expect(group.allSatisfy { $0.state == .terminated })
        #expect(ran.total == 0)
    }

    /// Outside a ServiceGroup, the test kit's trigger stands in for it.
    @Test func runWaitsForTheGracefulShutdownTrigger() async throws {
        let group = try Self.group(2)
        let log = TestLogHandler()
        let service = EventLoopGroupService(group, logger: log.logger)
        try await testGracefulShutdown { trigger in
            let run = Task { try await service.run() }
            #expect(await awaitCondition { log.count == 1 })
            #expect(group.allSatisfy { $0.state == .running || $0.state == .sleeping })
            trigger.triggerGracefulShutdown()
            try await run.value
        }
        #expect(group.allSatisfy { $0.state == .terminated })
    }

    /// A child process: a ServiceGroup with the loops' service stops on SIGTERM while four producers submit.
    /// It must return after the drain with every accepted task run exactly once (exit 0), and nothing
    /// accepted after the loops terminated.
    @Test func sigtermDrainsWhileProducersSubmit() async {
        await #expect(processExitsWith: .success) {
            var configuration = EventLoopGroup.Configuration(loopCount: 2)
            configuration.loop.idleStrategy = .park
            let group = try! EventLoopGroup(configuration: configuration)
            let log = TestLogHandler()
            let services = ServiceGroup(configuration: .init(
                services: [EventLoopGroupService(group, logger: log.logger)],
                gracefulShutdownSignals: [.sigterm],
                logger: Logger(label: "services") { _ in SwiftLogNoOpLogHandler() }))
            let accepted = Atomic<Int>(0)
            let executed = Atomic<Int>(0)
            let rejected = Atomic<Int>(0)
            let producers = ThreadGroup(4) { _ in
                while true { // until the first rejection: the loop it picked has terminated
                    // Producers outpacing a draining loop would keep its drain going: yield to it.
                    if group.contains(where: { $0.state == .terminating }) { sched_yield() }
                    do {
                        try group.next().submit { executed.add(1, ordering: .relaxed) }
                        accepted.add(1, ordering: .relaxed)
                    } catch {
                        rejected.add(1, ordering: .relaxed)
                        return
                    }
                }
            }
            let run = Task { try await services.run() }
            // The service runs once the service group has installed its signal handlers.
            if !(await awaitCondition(seconds: 20) { log.count == 1 && accepted.load(ordering: .relaxed) > 1_000 }) { exit(3) }
            kill(getpid(), SIGTERM)
            do { try await run.value } catch { exit(4) }
            let afterReturn = executed.load(ordering: .relaxed)
            producers.join()
            if !group.allSatisfy({ $0.state == .terminated }) { exit(5) }
            if accepted.load(ordering: .relaxed) != executed.load(ordering: .relaxed) { exit(6) }
            if afterReturn != executed.load(ordering: .relaxed) { exit(7) } // a task ran after run() returned
            if rejected.load(ordering: .relaxed) != 4 { exit(8) }
            exit(0)
        }
    }
}
