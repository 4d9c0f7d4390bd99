// The loop as Swift concurrency's executor: actors pinned to it, tasks that prefer it, what shutdown does with
// their jobs, and the async forms of the API (sleep, close, waitUntilTerminated).

import Glibc
@testable import LoopKit
import Synchronization
import Testing
import TestSupport

/// An actor whose jobs run on `loop`.
actor Pinned {
    let loop: EventLoop
    var value = 0
    var log: [String] = []
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }

    init(loop: EventLoop) { self.loop = loop }

    /// Increments and says whether it ran on the loop thread.
    func incrementOnLoop() -> Bool {
        value += 1
        return loop.inEventLoop
    }

    /// Starts a child task (isolated to this actor, so enqueued on the loop from the loop thread) between two
    /// log entries: if enqueue ran it inline, "child" would come before "after".
    func spawnChildBetweenLogEntries() -> Task<Void, Never> {
        log.append("before")
        let child = Task { self.log.append("child") }
        log.append("after")
        return child
    }

    /// Starts `count` children isolated to this actor, then asks the loop to close (on the loop thread that
    /// only requests it): the children are queued executor jobs when the close begins.
    func spawnChildrenThenClose(_ count: Int, ran: Counter) {
        for _ in 0..<count {
            Task { ran.increment(); self.value += 1 }
        }
        loop.close()
    }

    func sleepOnLoop(for duration: Duration) async throws -> Bool {
        try await loop.sleep(for: duration)
        return loop.inEventLoop
    }
}

@Suite struct ExecutorTests {
    /// An actor whose executor is the loop runs every method on the loop thread, each call exactly once.
    @Test func anActorPinnedToTheLoopRunsEveryMethodOnTheLoopThread() async throws {
        let loop = try startedLoop()
        let actor = Pinned(loop: loop)
        for _ in 0..<1000 {
            #expect(await actor.incrementOnLoop())
        }
        #expect(await actor.value == 1000)
        await loop.shutdown()
    }

    /// Actors pinned to the same loop, called concurrently, run every call on the loop thread.
    @Test func actorsOnTheSameLoopCallEachOtherOnTheLoopThread() async throws {
        let loop = try startedLoop()
        let first = Pinned(loop: loop)
        let second = Pinned(loop: loop)
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<200 {
                let target = i % 2 == 0 ? first : second
                group.addTask { await target.incrementOnLoop() }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 200 && results.allSatisfy { $0 })
        #expect(await first.value + second.value == 200)
        await loop.shutdown()
    }

    /// A job enqueued from the loop thread (a child task spawned by a pinned actor) is queued, not run inline: it
    /// runs after the code that spawned it.
    @Test func aJobEnqueuedOnTheLoopThreadIsQueuedNotRunInline() async throws {
        let loop = try startedLoop()
        let actor = Pinned(loop: loop)
        let child = await actor.spawnChildBetweenLogEntries()
        await child.value
        #expect(await actor.log == ["before", "after", "child"])
        await loop.shutdown()
    }

    /// assumeIsolated on a pinned actor works from inside the loop's tasks, timers and fd handlers (they run on the
    /// actor's executor).
    @Test func assumeIsolatedWorksInsideLoopTasksTimersAndFdHandlers() async throws {
        let loop = try startedLoop()
        let actor = Pinned(loop: loop)
        let done = Counter()
        try loop.submit {
            actor.assumeIsolated { $0.value += 1 }
            done.increment()
        }
        try loop.scheduleTimer(after: .zero) {
            actor.assumeIsolated { $0.value += 1 }
            done.increment()
        }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { Glibc.close(fds[0]); Glibc.close(fds[1]) }
        let reader = fds[0]
        try loop.submit {
            try? loop.register(fd: reader, events: .read) { _ in
                actor.assumeIsolated { $0.value += 1 }
                try? loop.unregister(fd: reader)
                done.increment()
            }
        }
        #expect(write(fds[1], "x", 1) == 1)
        #expect(await awaitCondition { done.count == 3 })
        #expect(await actor.value == 3)
        await loop.shutdown()
    }

    /// preconditionIsolated on a pinned actor off the loop thread stops the process, checked in a child process.
    @Test func preconditionIsolatedOffTheLoopStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            Pinned(loop: loop).preconditionIsolated()
        }
    }

    /// The loop reports isolating the current context on its own thread only.
    @Test func theLoopIsIsolatingOnlyOnItsOwnThread() async throws {
        let loop = try startedLoop()
        #expect(loop.isIsolatingCurrentContext() == false)
        let onLoop = try await loop.perform { loop.isIsolatingCurrentContext() }
        #expect(onLoop == true)
        await loop.shutdown()
    }

    /// A graceful shutdown runs every actor job queued before it, and every task awaiting one resumes.
    @Test func gracefulShutdownRunsEveryQueuedActorJobAndEveryAwaitingTaskResumes() async throws {
        let loop = try startedLoop()
        let actor = Pinned(loop: loop)
        let calls = 500
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<calls { group.addTask { await actor.incrementOnLoop() } }
            // Every call is enqueued (or done) before the shutdown begins: they all complete.
            for await onLoop in group { #expect(onLoop) }
        }
        await loop.shutdown()
        #expect(loop.state == .terminated)
    }

    /// close() releases queued closures, but an executor job is a suspended task: it runs, so that whoever
    /// awaits it resumes.
    @Test func closeRunsQueuedExecutorJobsInsteadOfDroppingThem() async throws {
        let loop = try startedLoop()
        let actor = Pinned(loop: loop)
        let ran = Counter()
        await actor.spawnChildrenThenClose(100, ran: ran)
        await loop.waitUntilTerminated()
        #expect(ran.count == 100)
    }

    /// Enqueueing an actor job on a terminated loop stops the process (a job could never run), checked in a child
    /// process.
    @Test func enqueueAfterTerminationStopsTheProcessNamingTheLoop() async {
        await #expect(processExitsWith: .failure) {
            let loop = try! EventLoop()
            try! loop.start()
            await loop.shutdown()
            _ = await Pinned(loop: loop).incrementOnLoop()
        }
    }

    /// Tasks that prefer the loop's task executor (scoped, unstructured, and their child tasks) run on the loop
    /// thread.
    @Test func tasksPreferringTheLoopRunOnItsThread() async throws {
        let loop = try startedLoop()
        let inScope = await withTaskExecutorPreference(loop.taskExecutor) { loop.inEventLoop }
        #expect(inScope)
        let unstructured = await Task(executorPreference: loop.taskExecutor) { loop.inEventLoop }.value
        #expect(unstructured)
        let children = await withTaskExecutorPreference(loop.taskExecutor) {
            await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<50 { group.addTask { loop.inEventLoop } }
                return await group.reduce(true) { $0 && $1 }
            }
        }
        #expect(children)
        #expect(loop.taskExecutor.loop === loop)
        await loop.shutdown()
    }

    /// Awaits racing the loop's termination: each `perform` either returns its value or throws `.terminated`
    /// (refused, or released unrun by close()); none is left suspended.
    @Test(arguments: [false, true])
    func awaitsRacingShutdownOrCloseEachCompleteOrFailNoneHangs(close: Bool) async throws {
        let loop = try startedLoop()
        let tasks = 4
        let perTask = stressCount(25_000, minimum: 1_000)
        let finished = Counter()
        let failed = Counter()
        let unexpected = OrderLog<String>()
        let racers = (0..<tasks).map { _ in
            Task {
                for i in 0..<perTask {
                    do {
                        let value = try await loop.perform { i }
                        if value != i { unexpected.append("perform returned \(value) for \(i)") }
                    } catch EventLoopError.terminated {
                        failed.increment()
                    } catch {
                        unexpected.append("\(error)")
                    }
                    finished.increment()
                }
            }
        }
        #expect(await awaitCondition { finished.count >= tasks * perTask / 10 })
        if close { await loop.close() } else { await loop.shutdown() }
        #expect(await awaitCondition(seconds: 60) { finished.count == tasks * perTask },
                "\(tasks * perTask - finished.count) awaits still suspended")
        for racer in racers { await racer.value }
        #expect(unexpected.snapshot.isEmpty, "\(unexpected.snapshot.prefix(3))")
        #expect(failed.count > 0, "the termination came after every await: nothing raced it")
    }

    // MARK: Async API

    /// loop.sleep(for:) resumes no earlier than its duration, on the caller's executor, and leaves no timer
    /// pending.
    @Test func sleepResumesAfterItsDurationOnTheCallersExecutor() async throws {
        let loop = try startedLoop()
        let actor = Pinned(loop: loop)
        let start = ContinuousClock.now
        #expect(try await actor.sleepOnLoop(for: .milliseconds(20)))
        #expect(ContinuousClock.now - start >= .milliseconds(20))
        try await loop.sleep(for: .zero) // from a task on the global executor too
        #expect(loop.pendingTimerCount == 0)
        await loop.shutdown()
    }

    /// Cancelling a sleep throws CancellationError and removes its timer; a sleep started already cancelled throws
    /// at once and leaves no timer.
    @Test func cancellingASleepThrowsCancellationErrorAndRemovesItsTimer() async throws {
        let loop = try startedLoop()
        let sleeper = Task { try await loop.sleep(for: .seconds(3600)) }
        #expect(await awaitCondition { loop.pendingTimerCount == 1 })
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(await awaitCondition { loop.pendingTimerCount == 0 })
        // Cancelled before it starts: throws at once, schedules nothing that stays.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await loop.sleep(for: .seconds(3600))
        }
        await #expect(throws: CancellationError.self) { try await early.value }
        #expect(await awaitCondition { loop.pendingTimerCount == 0 })
        await loop.shutdown()
    }

    /// A sleep whose loop terminates first throws `.terminated`, and sleeping on a terminated loop throws
    /// `.terminated` at once.
    @Test func aSleepOutlivedByItsLoopThrowsTerminated() async throws {
        let loop = try startedLoop()
        let sleeper = Task { try await loop.sleep(for: .seconds(3600)) }
        #expect(await awaitCondition { loop.pendingTimerCount == 1 })
        await loop.close()
        await #expect(throws: EventLoopError.terminated) { try await sleeper.value }
        await #expect(throws: EventLoopError.terminated) { try await loop.sleep(for: .zero) }
    }

    /// The async close() and waitUntilTerminated() return once the loop has terminated; close() is idempotent.
    @Test func asyncCloseAndWaitUntilTerminatedReturnOnceTheLoopHasTerminated() async throws {
        let loop = try startedLoop()
        let waiter = Task { await loop.waitUntilTerminated(); return loop.state }
        await loop.close()
        #expect(loop.state == .terminated)
        #expect(await waiter.value == .terminated)
        await loop.close() // idempotent
    }
}
