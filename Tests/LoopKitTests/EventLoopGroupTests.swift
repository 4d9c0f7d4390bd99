import CLoopCore
import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// EventLoopGroup: round robin, any(), CPU pinning, draining shutdown, idempotence, use after shutdown.
@Suite struct EventLoopGroupTests {
    static func group(_ loopCount: Int, pinning: EventLoopGroup.CPUPinning = .none) throws -> EventLoopGroup {
        var configuration = EventLoopGroup.Configuration(loopCount: loopCount)
        configuration.loop = .testing()
        configuration.cpuPinning = pinning
        return try EventLoopGroup(configuration: configuration)
    }

    /// The index of `loop` in `group`.
    static func index(of loop: EventLoop, in group: EventLoopGroup) -> Int? {
        group.firstIndex { $0 === loop }
    }

    // MARK: Creation and iteration

    /// A group of n runs n distinct loops, each started and each on a thread of its own.
    @Test func theGroupRunsDistinctLoopsEachOnItsOwnThread() async throws {
        let group = try Self.group(3)
        #expect(group.count == 3)
        #expect(Set(group.map { ObjectIdentifier($0) }).count == 3)
        var threads: [UInt] = []
        for loop in group {
            #expect(loop.state == .running || loop.state == .sleeping)
            threads.append(try await loop.perform { pthread_self() })
        }
        #expect(Set(threads).count == 3)
        await group.shutdown()
    }

    /// The default loop count is the number of CPUs the creating thread may run on; allowedCPUs() lists them
    /// sorted, in range, and includes the CPU the caller runs on.
    @Test func theDefaultLoopCountIsTheNumberOfAllowedCPUs() throws {
        let allowed = EventLoopGroup.allowedCPUs()
        #expect(!allowed.isEmpty)
        #expect(allowed == allowed.sorted())
        #expect(allowed.allSatisfy { $0 >= 0 && $0 < 1 << 20 })
        #expect(allowed.count <= Int(sysconf(Int32(_SC_NPROCESSORS_CONF))))
        #expect(EventLoopGroup.Configuration().loopCount == allowed.count)
        // The CPU the calling thread runs on is one it is allowed on.
        #expect(allowed.contains(Int(lk_affinity_current_cpu())))
    }

    /// configureLoop adjusts each loop's configuration by its index before the loop is created.
    @Test func configureLoopAdjustsEachLoopByIndex() async throws {
        var configuration = EventLoopGroup.Configuration(loopCount: 3)
        configuration.loop = .testing()
        configuration.configureLoop = { index, loop in loop.externalBatchBudget = 100 + index }
        let group = try EventLoopGroup(configuration: configuration)
        #expect(group.map(\.configuration.externalBatchBudget) == [100, 101, 102])
        await group.shutdown()
    }

    // MARK: next() and any()

    /// next() hands out the loops round robin.
    @Test func nextIsRoundRobin() async throws {
        let group = try Self.group(3)
        let picks = (0..<9).map { _ in Self.index(of: group.next(), in: group) }
        #expect(picks == [0, 1, 2, 0, 1, 2, 0, 1, 2])
        await group.shutdown()
    }

    /// Many threads race on next(): every ticket is distinct, so each loop is picked exactly as often as the
    /// others. A counter read and written without one atomic increment hands out duplicate tickets and
    /// skews the counts.
    @Test func concurrentNextSpreadsSubmissionsEvenly() throws {
        let loopCount = 3
        let threads = 6
        let perThread = stressCount(30_000, minimum: 3_000) / loopCount * loopCount
        let group = try Self.group(loopCount)
        let ran = (0..<loopCount).map { _ in Counter() }
        runOnThreads(threads) { _ in
            for _ in 0..<perThread {
                let loop = group.next()
                let index = Self.index(of: loop, in: group)!
                try! loop.submit { ran[index].increment() }
            }
        }
        group.shutdown()
        let total = threads * perThread
        #expect(ran.map(\.count) == Array(repeating: total / loopCount, count: loopCount))
    }

    /// any() on one of the group's loop threads returns that loop, every time, and isInEventLoop holds there.
    @Test func anyOnALoopThreadReturnsThatLoop() async throws {
        let group = try Self.group(3)
        for loop in group {
            // Three calls: round robin would return three different loops.
            let chosen = try await loop.perform { (0..<3).map { _ in ObjectIdentifier(group.any()) } }
            #expect(chosen == Array(repeating: ObjectIdentifier(loop), count: 3))
            let inGroup = try await loop.perform { group.isInEventLoop }
            #expect(inGroup)
        }
        await group.shutdown()
    }

    /// any() off the group's threads (a plain thread, or another group's or a lone loop's thread) is round robin,
    /// continuing where next() left off, and isInEventLoop is false there.
    @Test func anyOffTheGroupsThreadsIsRoundRobin() async throws {
        let group = try Self.group(2)
        #expect(!group.isInEventLoop)
        let picks = (0..<4).map { _ in Self.index(of: group.any(), in: group) }
        #expect(picks == [0, 1, 0, 1])
        // On the thread of a loop that is not the group's: round robin too, continuing where next() was.
        let outsider = try startedLoop()
        let (pick, inGroup) = try await outsider.perform { (Self.index(of: group.any(), in: group), group.isInEventLoop) }
        #expect(pick == 0)
        #expect(!inGroup)
        #expect(Self.index(of: group.next(), in: group) == 1)
        await outsider.shutdown()
        await group.shutdown()
    }

    // MARK: CPU pinning

    /// Each loop's thread, asked from inside the loop, may run on its one CPU and is running there.
    @Test func pinningRestrictsEachLoopToItsCPU() async throws {
        let allowed = EventLoopGroup.allowedCPUs()
        let group = try Self.group(allowed.count + 1, pinning: .allowedCPUs)
        for (index, loop) in group.enumerated() {
            let expected = allowed[index % allowed.count]
            let (mask, cpu) = try await loop.perform { (EventLoopGroup.allowedCPUs(), Int(lk_affinity_current_cpu())) }
            #expect(mask == [expected], "loop \(index)")
            #expect(cpu == expected, "loop \(index)")
        }
        await group.shutdown()
    }

    /// Pinning to a list of CPUs shorter than the group wraps around: every loop runs on a CPU of the list.
    @Test func pinningToAListWrapsAround() async throws {
        let cpu = EventLoopGroup.allowedCPUs().last!
        let group = try Self.group(3, pinning: .cpus([cpu]))
        for loop in group {
            let mask = try await loop.perform { EventLoopGroup.allowedCPUs() }
            #expect(mask == [cpu])
        }
        await group.shutdown()
    }

    /// Unpinned loops keep the CPU mask of the thread that created the group.
    @Test func unpinnedLoopsKeepTheCreatorsMask() async throws {
        let allowed = EventLoopGroup.allowedCPUs()
        let group = try Self.group(2)
        for loop in group {
            let mask = try await loop.perform { EventLoopGroup.allowedCPUs() }
            #expect(mask == allowed)
        }
        await group.shutdown()
    }

    /// Pinning to a CPU that does not exist makes the group's creation throw `.cpuPinningFailed` naming the loop,
    /// the CPU and the errno.
    @Test func pinningToACPUThatDoesNotExistThrows() throws {
        let missing = 1 << 19
        #expect(throws: EventLoopGroupError.cpuPinningFailed(loopIndex: 0, cpu: missing, errno: EINVAL)) {
            _ = try Self.group(2, pinning: .cpus([missing]))
        }
    }

    /// Each loop's configuration holds a witness; a loop is released, and its witness with it, only once its
    /// thread has left run(). Loops left running after the failure would keep their witnesses for good.
    @Test func aFailedPinClosesTheLoopsAlreadyStarted() throws {
        final class Witness: Sendable {
            let released: Counter
            init(_ released: Counter) { self.released = released }
            deinit { released.increment() }
        }
        let cpu = EventLoopGroup.allowedCPUs()[0]
        let missing = 1 << 19
        let created = OrderLog<Int>()
        let released = Counter()
        var configuration = EventLoopGroup.Configuration(loopCount: 3)
        configuration.loop = .testing()
        configuration.cpuPinning = .cpus([cpu, missing])
        configuration.configureLoop = { index, loop in
            created.append(index)
            let witness = Witness(released)
            loop.errorHandler = { _ in _ = witness }
        }
        #expect(throws: EventLoopGroupError.cpuPinningFailed(loopIndex: 1, cpu: missing, errno: EINVAL)) {
            _ = try EventLoopGroup(configuration: configuration)
        }
        #expect(created.snapshot == [0, 1], "creation stops at the first failure")
        #expect(waitUntil { released.count == 2 }, "both loops terminated and were released")
    }

    // MARK: Shutdown

    /// Holds every loop inside a task, queues `perLoop` tasks behind it on each, and returns the count of
    /// tasks run and a function that releases the loops.
    static func queueBehindHeldLoops(_ group: EventLoopGroup, perLoop: Int) throws -> (ran: Counter, release: @Sendable () -> Void) {
        let ran = Counter()
        var releases: [@Sendable () -> Void] = []
        for loop in group {
            releases.append(try holdLoop(loop))
            for _ in 0..<perLoop { try loop.submit { ran.increment() } }
        }
        let all = releases
        return (ran, { for release in all { release() } })
    }

    /// Shutdown is requested while every loop still has its queue full; once released, every queued task runs
    /// before its loop terminates. A shutdown that closed instead of draining, or that returned before every
    /// loop had drained, fails the counts.
    @Test func asyncShutdownDrainsEveryLoop() async throws {
        let group = try Self.group(3)
        let perLoop = 2_000
        let (ran, release) = try Self.queueBehindHeldLoops(group, perLoop: perLoop)
        // Counted when shutdown() returns: a shutdown that returned before the drain would count 0, as the
        // loops are held until shutdown has been requested of all of them.
        async let ranWhenShutdownReturned: Int = {
            await group.shutdown()
            return ran.count
        }()
        #expect(await awaitCondition { group.allSatisfy { $0.state == .terminating } }, "every loop was asked to terminate")
        #expect(ran.count == 0, "the loops were still held")
        release()
        #expect(await ranWhenShutdownReturned == 3 * perLoop)
        #expect(group.allSatisfy { $0.state == .terminated })
    }

    /// The blocking shutdown() returns only once every loop has run everything queued and terminated.
    @Test func blockingShutdownDrainsEveryLoop() throws {
        let group = try Self.group(3)
        let perLoop = 2_000
        let (ran, release) = try Self.queueBehindHeldLoops(group, perLoop: perLoop)
        let done = Atomic<Bool>(false)
        let counted = Atomic<Int>(-1)
        try startDetachedThread {
            group.shutdown()
            counted.store(ran.count, ordering: .relaxed)
            done.store(true, ordering: .releasing)
        }
        #expect(waitUntil { group.allSatisfy { $0.state == .terminating } })
        let returnedEarly = done.load(ordering: .acquiring)
        #expect(!returnedEarly, "shutdown waits for the drain")
        release()
        #expect(waitUntil { done.load(ordering: .acquiring) })
        #expect(counted.load(ordering: .relaxed) == 3 * perLoop, "every task ran before shutdown returned")
        #expect(group.allSatisfy { $0.state == .terminated })
    }

    /// close() ends every loop without running what is queued, and returns once all have terminated.
    @Test func closeDiscardsEveryLoopsQueue() async throws {
        let group = try Self.group(3)
        let (ran, release) = try Self.queueBehindHeldLoops(group, perLoop: 100)
        async let terminatedWhenCloseReturned: Bool = {
            await group.close()
            return group.allSatisfy { $0.state == .terminated }
        }()
        #expect(await awaitCondition { group.allSatisfy { $0.state == .terminating } })
        release()
        #expect(await terminatedWhenCloseReturned)
        #expect(ran.count == 0)
    }

    /// shutdown() and close() called together from several threads all return after every loop has terminated; a
    /// graceful round runs every accepted task.
    @Test func shutdownIsIdempotentAndEveryCallerReturnsAfterTermination() throws {
        for round in 0..<stressCount(5, minimum: 2) {
            let group = try Self.group(3)
            let ran = Counter()
            for loop in group { for _ in 0..<500 { try loop.submit { ran.increment() } } }
            runOnThreads(6) { index in
                if index == 5 && round % 2 == 1 { group.close() } else { group.shutdown() }
                #expect(group.allSatisfy { $0.state == .terminated }, "caller \(index) returned before termination")
            }
            if round % 2 == 0 { #expect(ran.count == 1_500) }
            group.shutdown()
            group.close()
        }
    }

    /// The async shutdown() called twice, then close(), all return, with every loop terminated.
    @Test func asyncShutdownTwiceReturnsBothTimes() async throws {
        let group = try Self.group(2)
        await group.shutdown()
        await group.shutdown()
        await group.close()
        #expect(group.allSatisfy { $0.state == .terminated })
    }

    /// After shutdown, submitting, scheduling or performing on any of the group's loops throws `.terminated`.
    @Test func useAfterShutdownThrowsTerminated() async throws {
        let group = try Self.group(2)
        await group.shutdown()
        #expect(throws: EventLoopError.terminated) { try group.next().submit {} }
        #expect(throws: EventLoopError.terminated) { try group.any().scheduleTimer(after: .zero) {} }
        await #expect(throws: EventLoopError.terminated) { try await group[1].perform { 1 } }
    }

    /// The blocking shutdown() called on one of the group's loop threads (it would wait for itself forever) stops
    /// the process, checked in a child process.
    @Test func shutdownOnALoopThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            var configuration = EventLoopGroup.Configuration(loopCount: 2)
            configuration.loop.idleStrategy = .park
            let group = try! EventLoopGroup(configuration: configuration)
            try! group[0].submit { group.shutdown() }
            await group[0].waitUntilTerminated()
            exit(0) // reached only if shutdown() ran on the loop thread instead of stopping the process
        }
    }
}

/// Actors pinned to the group's loops, called by tasks that run on the same loops, with every task's first
/// job queued before the group shuts down: the drain runs them all, and every call returns.
@Suite struct EventLoopGroupActorTests {
    actor Tally {
        let loop: EventLoop
        var count = 0
        init(loop: EventLoop) { self.loop = loop }
        nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }
        func add() -> Int {
            loop.preconditionInEventLoop()
            count += 1
            return count
        }
    }

    /// Calls to actors pinned to the group's loops that are queued when the group shuts down (or closes) all
    /// return: none is left suspended.
    @Test(arguments: [false, true])
    func callsToPinnedActorsQueuedAtShutdownReturn(close: Bool) async throws {
        let group = try EventLoopGroupTests.group(2)
        let actors = group.map { Tally(loop: $0) }
        let completed = Counter()
        let releases = try group.map { try holdLoop($0) }
        // A task that prefers a loop's task executor queues its first job there when it is created.
        let callers = (0..<200).map { index in
            Task(executorPreference: group[index % 2].taskExecutor) {
                _ = await actors[index % 2].add()
                completed.increment()
            }
        }
        async let terminated: Void = close ? group.close() : group.shutdown()
        #expect(await awaitCondition { group.allSatisfy { $0.state == .terminating } })
        for release in releases { release() }
        await terminated
        #expect(await awaitCondition(seconds: 10) { completed.count == callers.count }, "every call returned")
        for caller in callers { await caller.value }
        #expect(group.allSatisfy { $0.state == .terminated })
    }

    /// A task that prefers the task executor of one of the group's loops runs the group's (nonisolated)
    /// shutdown() on that loop's thread, where waiting for the loop could never end: it traps instead.
    @Test func shutdownFromATaskThatPrefersALoopOfTheGroupStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            var configuration = EventLoopGroup.Configuration(loopCount: 2)
            configuration.loop.idleStrategy = .park
            let group = try! EventLoopGroup(configuration: configuration)
            await withTaskExecutorPreference(group[0].taskExecutor) {
                await group.shutdown()
            }
            exit(0) // reached only if shutdown() returned instead of stopping the process
        }
    }
}
