import Glibc
import LoopKit
import Synchronization
import Testing
import TestSupport

/// The fd API: readiness, level triggering, unregistering from handlers, errors, ownership.
/// `register`, `modify` and `unregister` are loop-thread only, so every call here runs inside `perform`
/// (or inside a handler, which runs on the loop thread).
@Suite struct IOTests {
    // MARK: Readiness

    /// Read readiness runs the fd's handler on the loop thread with `.read`, and not before the fd is readable.
    @Test(arguments: LoopBackends.available)
    func readReadinessRunsTheHandlerOnTheLoopThread(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(pipe) }
        let events = OrderLog<IOEvents>()
        let onLoop = OrderLog<Bool>()
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { ready in
                events.append(ready)
                onLoop.append(loop.inEventLoop)
                IOFixture.drain(pipe.read)
            }
        }
        try await IOFixture.afterNextPolls(loop)
        #expect(events.count == 0, "an empty pipe is not readable")

        IOFixture.writeByte(pipe.write)
        #expect(await awaitCondition(seconds: 10) { events.count >= 1 })
        #expect(events.snapshot.first == .read)
        #expect(onLoop.snapshot.allSatisfy { $0 })
        try await loop.perform { try loop.unregister(fd: pipe.read) }
    }

    /// Readiness is level-triggered: the handler is called on every poll until it consumes the data, then no more.
    @Test(arguments: LoopBackends.available)
    func readinessRepeatsUntilTheDataIsConsumed(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(pipe) }
        let calls = Counter()
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in
                calls.increment()
                if calls.count == 3 { IOFixture.drain(pipe.read) } // consume only on the third report
            }
        }
        IOFixture.writeByte(pipe.write)
        #expect(await awaitCondition(seconds: 10) { calls.count >= 3 }, "level-triggered: reported by every poll")
        try await IOFixture.afterNextPolls(loop)
        #expect(calls.count == 3, "no report once the data is read")
    }

    /// modify to `.write` makes the next poll report writability, and modify back to `.read` stops those reports.
    @Test(arguments: LoopBackends.available)
    func writeReadinessAfterModify(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pair = try IOFixture.socketPair()
        defer { loop.shutdownForCleanup(); IOFixture.close(pair) }
        let events = OrderLog<IOEvents>()
        try await loop.perform {
            try loop.register(fd: pair.read, events: .read) { ready in
                events.append(ready)
                if ready.contains(.write) { try? loop.modify(fd: pair.read, events: .read) } // stop the reports
            }
        }
        try await IOFixture.afterNextPolls(loop)
        #expect(events.count == 0, "writable, but .write was not asked for")

        try await loop.perform { try loop.modify(fd: pair.read, events: .write) }
        #expect(await awaitCondition(seconds: 10) { events.count >= 1 })
        #expect(events.snapshot.first == .write)
        try await IOFixture.afterNextPolls(loop)
        #expect(events.count == 1, "modify back to .read (from the handler) ends the .write reports")
    }

    /// A pipe whose writer closes reports `.hangup` to the reader's handler.
    @Test(arguments: LoopBackends.available)
    func hangupWhenTheWriterCloses(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let fds = try IOFixture.pipe()
        let reader = fds.read
        defer { loop.shutdownForCleanup(); Glibc.close(reader) }
        let events = OrderLog<IOEvents>()
        try await loop.perform {
            try loop.register(fd: reader, events: .read) { ready in
                events.append(ready)
                if ready.contains(.hangup) { try? loop.unregister(fd: reader) }
            }
        }
        Glibc.close(fds.write)
        #expect(await awaitCondition(seconds: 10) { events.count >= 1 })
        #expect(events.snapshot.last?.contains(.hangup) == true, "\(events.snapshot)")
    }

    // MARK: Unregistering and registering again

    /// unregister from inside the fd's own handler succeeds and stops its calls at once, though the data stays
    /// unread.
    @Test(arguments: LoopBackends.available)
    func unregisterFromTheFdsOwnHandler(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(pipe) }
        let calls = Counter()
        let errors = OrderLog<EventLoopError>()
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in
                calls.increment()
                do { try loop.unregister(fd: pipe.read) } catch { errors.append(error as! EventLoopError) }
                // The data is left unread: a handler still registered would be called again at once.
            }
        }
        IOFixture.writeByte(pipe.write)
        #expect(await awaitCondition(seconds: 10) { calls.count >= 1 })
        IOFixture.writeByte(pipe.write)
        try await IOFixture.afterNextPolls(loop)
        #expect(calls.count == 1)
        #expect(errors.snapshot.isEmpty)
        await #expect(throws: EventLoopError.notRegistered(fd: pipe.read)) {
            try await loop.perform { try loop.unregister(fd: pipe.read) }
        }
    }

    /// A handler that unregisters another fd reported ready in the same poll keeps that fd's handler from running
    /// for that report.
    @Test(arguments: LoopBackends.available)
    func unregisterAnotherFdReadyInTheSameBatch(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let a = try IOFixture.pipe(), b = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(a); IOFixture.close(b) }
        // Both readable before they are registered, in one task: the next poll reports both.
        IOFixture.writeByte(a.write)
        IOFixture.writeByte(b.write)
        let ran = OrderLog<Int32>()
        let errors = OrderLog<EventLoopError>()
        try await loop.perform {
            for (fd, other) in [(a.read, b.read), (b.read, a.read)] {
                try loop.register(fd: fd, events: .read) { _ in
                    ran.append(fd)
                    do { try loop.unregister(fd: other) } catch { errors.append(error as! EventLoopError) }
                    do { try loop.unregister(fd: fd) } catch { errors.append(error as! EventLoopError) }
                }
            }
        }
        #expect(await awaitCondition(seconds: 10) { ran.count >= 1 })
        try await IOFixture.afterNextPolls(loop)
        #expect(ran.count == 1, "the fd unregistered by the first handler gets no event: \(ran.snapshot)")
        #expect(errors.snapshot.isEmpty)
    }

    /// An fd registered (again) while a poll's events are being dispatched gets nothing from that poll: the event
    /// was for the old registration; the next poll reports it to the new handler.
    @Test(arguments: LoopBackends.available)
    func anFdRegisteredDuringDispatchGetsNothingFromThatPoll(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let a = try IOFixture.pipe(), b = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(a); IOFixture.close(b) }
        IOFixture.writeByte(a.write)
        IOFixture.writeByte(b.write)
        // True from the first handler of a batch until the microtasks after that batch's dispatch.
        let inFirstBatch = Atomic<Bool>(false)
        let replacementCalls = OrderLog<Bool>() // was the batch that reported both still being dispatched?
        let firstCalls = Counter()
        try await loop.perform {
            for (fd, other) in [(a.read, b.read), (b.read, a.read)] {
                try loop.register(fd: fd, events: .read) { _ in
                    firstCalls.increment()
                    inFirstBatch.store(true, ordering: .relaxed)
                    try? loop.queueMicrotask { inFirstBatch.store(false, ordering: .relaxed) }
                    // Replace the other fd's registration: its event in this batch is not for the new one.
                    try? loop.unregister(fd: other)
                    try? loop.register(fd: other, events: .read) { _ in
                        replacementCalls.append(inFirstBatch.load(ordering: .relaxed))
                        IOFixture.drain(other)
                        try? loop.unregister(fd: other)
                    }
                    IOFixture.drain(fd)
                    try? loop.unregister(fd: fd)
                }
            }
        }
        #expect(await awaitCondition(seconds: 10) { replacementCalls.count >= 1 }, "the next poll reports it")
        try await IOFixture.afterNextPolls(loop)
        #expect(firstCalls.count == 1)
        #expect(replacementCalls.snapshot == [false])
    }

    /// An fd registered again after unregister, in the same task, in another task or from inside its handler,
    /// reports its readiness to the new handler only, and unread data is still reported to it.
    @Test(arguments: LoopBackends.available)
    func registerTheSameFdAgainAfterUnregister(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(pipe) }
        let first = Counter(), second = Counter(), third = Counter(), fourth = Counter()

        // In one task: register, unregister, register with another handler.
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in first.increment() }
            try loop.unregister(fd: pipe.read)
            try loop.register(fd: pipe.read, events: .read) { _ in
                second.increment()
                IOFixture.drain(pipe.read)
            }
        }
        IOFixture.writeByte(pipe.write)
        #expect(await awaitCondition(seconds: 10) { second.count >= 1 })

        // In separate tasks.
        try await loop.perform { try loop.unregister(fd: pipe.read) }
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in
                third.increment()
                // From inside the handler: swap in a new handler without reading the data. It must still
                // be reported (level-triggered) to the new handler at the next poll.
                try? loop.unregister(fd: pipe.read)
                try? loop.register(fd: pipe.read, events: .read) { _ in
                    fourth.increment()
                    IOFixture.drain(pipe.read)
                }
            }
        }
        let secondCalls = second.count
        IOFixture.writeByte(pipe.write)
        #expect(await awaitCondition(seconds: 10) { fourth.count >= 1 })
        try await IOFixture.afterNextPolls(loop)
        #expect(first.count == 0)
        #expect(second.count == secondCalls)
        #expect(third.count == 1)
        #expect(fourth.count == 1)
    }

    // MARK: Errors

    /// register of a negative fd throws `.invalidFileDescriptor`.
    @Test(arguments: LoopBackends.available)
    func negativeFdIsInvalid(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdownForCleanup() }
        await #expect(throws: EventLoopError.invalidFileDescriptor(fd: -1)) {
            try await loop.perform { try loop.register(fd: -1, events: .read) { _ in } }
        }
    }

    /// register of a closed fd throws `.invalidFileDescriptor`.
    @Test(arguments: LoopBackends.available)
    func closedFdIsInvalid(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdownForCleanup() }
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        let fd = try IOFixture.highFD(duplicating: pipe.read)
        Glibc.close(fd)
        await #expect(throws: EventLoopError.invalidFileDescriptor(fd: fd)) {
            try await loop.perform { try loop.register(fd: fd, events: .read) { _ in } }
        }
    }

    /// register of an fd already registered throws `.alreadyRegistered` and leaves the first handler in place.
    @Test(arguments: LoopBackends.available)
    func registeringTwiceThrowsAlreadyRegistered(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(pipe) }
        let first = Counter(), second = Counter()
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in
                first.increment()
                IOFixture.drain(pipe.read)
            }
        }
        await #expect(throws: EventLoopError.alreadyRegistered(fd: pipe.read)) {
            try await loop.perform { try loop.register(fd: pipe.read, events: .read) { _ in second.increment() } }
        }
        // The first registration is intact.
        IOFixture.writeByte(pipe.write)
        #expect(await awaitCondition(seconds: 10) { first.count >= 1 })
        try await IOFixture.afterNextPolls(loop)
        #expect(second.count == 0)
    }

    /// unregister and modify of an fd that is not registered (never was, negative, beyond the table) throw
    /// `.notRegistered`.
    @Test(arguments: LoopBackends.available)
    func unknownFdsAreNotRegistered(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(pipe) }
        for fd in [pipe.read, -1, 1_000_000] {
            await #expect(throws: EventLoopError.notRegistered(fd: fd)) {
                try await loop.perform { try loop.unregister(fd: fd) }
            }
            await #expect(throws: EventLoopError.notRegistered(fd: fd)) {
                try await loop.perform { try loop.modify(fd: fd, events: .write) }
            }
        }
        // Registered once, unregistered: unknown again.
        try await loop.perform {
            try loop.register(fd: pipe.read, events: .read) { _ in }
            try loop.unregister(fd: pipe.read)
        }
        await #expect(throws: EventLoopError.notRegistered(fd: pipe.read)) {
            try await loop.perform { try loop.unregister(fd: pipe.read) }
        }
    }

    /// register of a regular file or a directory throws `.notPollable` on both backends.
    @Test(arguments: LoopBackends.available)
    func regularFilesAndDirectoriesAreNotPollable(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let file = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        let directory = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { loop.shutdownForCleanup(); Glibc.close(file); Glibc.close(directory) }
        try #require(file >= 0 && directory >= 0)
        for fd in [file, directory] {
            await #expect(throws: EventLoopError.notPollable(fd: fd)) {
                try await loop.perform { try loop.register(fd: fd, events: .read) { _ in } }
            }
        }
    }

    /// register from a task after shutdown() was requested (the loop is terminating) throws `.terminated`.
    @Test(arguments: LoopBackends.available)
    func registerWhileTerminatingThrowsTerminated(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        let outcome = Locked<EventLoopError?>(nil)
        try loop.submit {
            loop.shutdown() // from inside a task: requests termination and returns
            do {
                try loop.register(fd: pipe.read, events: .read) { _ in }
            } catch {
                outcome.withLock { $0 = error as? EventLoopError }
            }
        }
        await loop.waitUntilTerminated()
        #expect(outcome.withLock { $0 } == .terminated)
    }

    /// After termination a `perform` that would register is refused with `.terminated` and its body never runs.
    @Test(arguments: LoopBackends.available)
    func registerAfterTerminationThrowsTerminated(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        await loop.shutdown()
        let ran = Counter()
        await #expect(throws: EventLoopError.terminated) {
            try await loop.perform {
                ran.increment()
                try loop.register(fd: pipe.read, events: .read) { _ in }
            }
        }
        #expect(ran.count == 0, "the task is refused, not run")
    }

    /// register from a task running in the final drain throws `.terminated`: no fd is watched once termination
    /// began.
    @Test(arguments: LoopBackends.available)
    func registerDuringTheFinalDrainThrowsTerminated(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        let results = OrderLog<EventLoopError?>()
        try loop.submit {
            loop.shutdown() // on the loop thread: requests termination and returns
            // Two hops from the loop thread: the inner task is queued behind the current tick's batch,
            // so it runs in the final drain (`submit` accepts it: every accepted task runs).
            try loop.submit {
                try loop.submit {
                    do {
                        try loop.register(fd: pipe.read, events: .read) { _ in }
                        results.append(nil)
                    } catch {
                        results.append(error as? EventLoopError)
                    }
                }
            }
        }
        await loop.waitUntilTerminated()
        #expect(results.snapshot == [.terminated])
    }

    /// Registering a negative, a closed or an unpollable fd (a regular file, a directory, /dev/null) throws
    /// `.invalidFileDescriptor` or `.notPollable` on both backends, records nothing, and leaves the loop
    /// serving.
    @Test(arguments: LoopBackends.available)
    func registerRefusesNegativeClosedAndUnpollableFds(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdownForCleanup() }
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

    /// Registering an fd that is already registered throws `.alreadyRegistered`, in the same task or a later
    /// one, and the first registration keeps its handler and its interest.
    @Test(arguments: LoopBackends.available)
    func registeringAnFdTwiceThrowsAlreadyRegisteredAndKeepsTheFirst(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pair = try IOFixture.socketPair()
        defer { loop.shutdownForCleanup(); IOFixture.close(pair) }
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
        #expect(await awaitCondition(seconds: 10) { first.count >= 1 })
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
        defer { loop.shutdownForCleanup(); Glibc.close(a.write); IOFixture.close(b) }
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
        #expect(await awaitCondition(seconds: 10) { new.count >= 1 })
        try await loop.perform { try loop.unregister(fd: fd) }
        Glibc.close(fd)
        #expect(old.count == 0)
        try await expectStillServes(loop)
    }

    /// `unregister` inside the fd's own handler stops further calls at once (a second `unregister` there throws
    /// `.notRegistered`); registering the fd again reports its unread bytes to the new handler only.
    @Test(arguments: LoopBackends.available)
    func unregisterInsideItsOwnHandlerStopsItThenRegisteringAgainWorks(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { loop.shutdownForCleanup(); IOFixture.close(pipe) }
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
        #expect(await awaitCondition(seconds: 10) { first.count >= 1 })
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
        #expect(await awaitCondition(seconds: 10) { second.count >= 1 })
        try await IOFixture.afterNextPolls(loop)
        #expect(second.count == 1, "drained: no further report")
        IOFixture.writeByte(pipe.write)
        #expect(await awaitCondition(seconds: 10) { second.count == 2 })
        #expect(first.count == 1)
        try await loop.perform { try loop.unregister(fd: pipe.read) }
        try await expectStillServes(loop)
    }

    // MARK: Ownership

    /// Shutdown closes the fds registered as owned and still registered, and leaves borrowed fds and owned fds
    /// unregistered before it open.
    @Test(arguments: LoopBackends.available)
    func shutdownClosesOwnedFdsAndLeavesBorrowedOnes(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        let pipe = try IOFixture.pipe()
        defer { IOFixture.close(pipe) }
        // Numbers near the top of the fd table: no other test's open() can reuse them once closed, so a
        // closed one stays closed while this test looks at it.
        let owned = try IOFixture.highFD(duplicating: pipe.read)
        let ownedUnregistered = try IOFixture.highFD(duplicating: pipe.read)
        let borrowed = try IOFixture.highFD(duplicating: pipe.read)
        defer { Glibc.close(ownedUnregistered); Glibc.close(borrowed) }
        try await loop.perform {
            try loop.register(fd: owned, events: .read, ownership: .owned) { _ in }
            try loop.register(fd: borrowed, events: .read, ownership: .borrowed) { _ in }
            try loop.register(fd: ownedUnregistered, events: .read, ownership: .owned) { _ in }
            try loop.unregister(fd: ownedUnregistered)
        }
        #expect(fcntl(owned, F_GETFD) >= 0, "open while the loop runs")
        await loop.shutdown()
        errno = 0
        #expect(fcntl(owned, F_GETFD) == -1 && errno == EBADF, "an owned fd is closed by shutdown()")
        #expect(fcntl(borrowed, F_GETFD) >= 0, "a borrowed fd stays open")
        #expect(fcntl(ownedUnregistered, F_GETFD) >= 0, "an owned fd unregistered before shutdown stays open")
    }

    /// After `unregister` and `close`, nothing keeps the file alive: a listening socket refuses connections
    /// at once, on both backends (with io_uring, the cancelled poll request must not hold the file, and the
    /// socket with it, until the loop next enters the ring).
    @Test(arguments: LoopBackends.available)
    func closeAfterUnregisterReleasesTheSocket(backend: PollBackend) async throws {
        let loop = try startedLoop(.testing(backend: backend))
        defer { loop.shutdownForCleanup() }
        var accepted = 0
        let attempts = 100
        for _ in 0..<attempts {
            let (listener, port) = try Loopback.listener(backlog: 16)
            try await loop.perform { try loop.register(fd: listener, events: .read) { _ in } }
            try await IOFixture.afterNextPolls(loop) // a poll request is armed (io_uring)
            try await loop.perform {
                try loop.unregister(fd: listener)
                Glibc.close(listener)
            }
            if !(try EchoClient.refuses(port: port)) { accepted += 1 }
        }
        #expect(accepted == 0, "\(accepted) of \(attempts) connects reached a closed listener")
    }

    // MARK: Backend availability

    /// `PollBackend.isAvailable`: epoll and auto always are; a loop asking for an available backend runs it,
    /// and one asking for io_uring where it is not available fails to start with `.backendUnavailable`.
    @Test func availableBackendsRunAndAnUnavailableOneIsRefused() async throws {
        #expect(PollBackend.epoll.isAvailable)
        #expect(PollBackend.auto.isAvailable)
        for backend in [PollBackend.epoll, .ioUring] {
            let loop = try EventLoop(configuration: .testing(backend: backend))
            if backend.isAvailable {
                try loop.start()
                #expect(loop.backend == backend)
            } else {
                #expect {
                    try loop.start()
                } throws: { error in
                    guard case .backendUnavailable(backend, _)? = error as? EventLoopError else { return false }
                    return true
                }
            }
            await loop.shutdown()
        }
    }

    // MARK: Misuse

    /// register called off the loop thread stops the process (a precondition), checked in a child process.
    @Test func registerOffTheLoopThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            do {
                let loop = try EventLoop()
                try loop.start()
                var fds: [Int32] = [0, 0]
                if pipe(&fds) == 0 {
                    try loop.register(fd: fds[0], events: .read) { _ in } // not on the loop thread
                }
            } catch {}
            exit(0) // reached only if register returned or threw instead of stopping the process
        }
    }
}

/// Pipes, socket pairs and fd helpers for `IOTests`.
enum IOFixture {
    struct Pair: Sendable {
        let read: Int32
        let write: Int32
    }

    /// A pipe whose read end is non-blocking.
    static func pipe() throws -> Pair {
        var fds: [Int32] = [0, 0]
        try #require(Glibc.pipe(&fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        try #require(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0)
        return Pair(read: fds[0], write: fds[1])
    }

    /// A connected, non-blocking Unix stream socket pair (both ends are readable and writable).
    static func socketPair() throws -> Pair {
        var fds: [Int32] = [0, 0]
        let type = Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        try #require(socketpair(AF_UNIX, type, 0, &fds) == 0)
        return Pair(read: fds[0], write: fds[1])
    }

    static func close(_ pair: Pair) {
        Glibc.close(pair.read)
        Glibc.close(pair.write)
    }

    static func writeByte(_ fd: Int32) {
        var byte: UInt8 = 0x2a
        let n = write(fd, &byte, 1)
        precondition(n == 1, "write: errno \(errno)")
    }

    /// Reads until the (non-blocking) fd has nothing left.
    static func drain(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while read(fd, &buffer, buffer.count) > 0 {}
    }

    /// Returns once the loop has polled for I/O at least once after this call, and has dispatched what
    /// that poll reported: the first task runs in some tick; the second, queued after the first ran, runs
    /// in a later tick, and the tick of the first ends with a poll (every tick polls while fds are
    /// registered). A third round trip adds a margin for a backend whose completion lags one poll.
    static func afterNextPolls(_ loop: EventLoop) async throws {
        for _ in 0..<3 { try await loop.perform {} }
    }

    /// `highFileDescriptor(duplicating:)` (TestSupport): a number no concurrent test's open() or socket()
    /// gets, even after it is closed.
    static func highFD(duplicating fd: Int32) throws -> Int32 {
        let target = highFileDescriptor(duplicating: fd)
        try #require(target >= 0, "no high fd: RLIMIT_NOFILE too low, or dup2 failed (errno \(errno))")
        return target
    }
}
