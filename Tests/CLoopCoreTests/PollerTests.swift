import CLoopCore
import Glibc
import Testing
import TestSupport

/// Both backends behind one contract: readiness for read, write, hangup and error; add / modify / remove;
/// bad input answered with an errno, never a crash. io_uring cases run only where io_uring works.
@Suite struct PollerTests {
    /// A poller with its wake handshake, created on the calling thread (io_uring rings are single-issuer).
    final class Harness {
        let wake: OpaquePointer
        let poller: OpaquePointer
        var events = [lk_poll_event](repeating: lk_poll_event(), count: 16)

        init(_ backend: lk_backend) throws {
            var w: OpaquePointer?
            try #require(lk_wake_create(&w) == 0)
            var p: OpaquePointer?
            let rc = lk_poller_create_for_testing(&p, backend, lk_wake_fd(w), nil)
            if rc != 0 { lk_wake_destroy(w) }
            try #require(rc == 0)
            wake = w!
            poller = p!
        }

        deinit {
            lk_poller_destroy(poller)
            lk_wake_destroy(wake)
        }

        /// One wait; returns the events reported for `fd` (0 if none) and whether the wake fd fired.
        func poll(_ fd: Int32, timeoutNanoseconds: Int64 = 0) -> (events: UInt32, woken: Bool) {
            var woken = false
            let n = lk_poller_wait(poller, timeoutNanoseconds, &events, Int32(events.count), &woken)
            precondition(n >= 0, "lk_poller_wait failed: \(n)")
            var mask: UInt32 = 0
            for e in events.prefix(Int(n)) where e.fd == fd { mask |= e.events }
            return (mask, woken)
        }

        /// Waits (bounded) until `fd` reports any of `wanted`; returns everything it reported.
        func waitFor(_ fd: Int32, _ wanted: UInt32) -> UInt32 {
            let deadline = TestDeadline(seconds: 10)
            while !deadline.hasExpired {
                let r = poll(fd, timeoutNanoseconds: min(deadline.remainingNanoseconds, 100_000_000))
                if r.events & wanted != 0 { return r.events }
            }
            return 0
        }
    }

    static let read = UInt32(LK_POLL_READ), write = UInt32(LK_POLL_WRITE)
    static let error = UInt32(LK_POLL_ERROR), hangup = UInt32(LK_POLL_HANGUP)

    static func makePipe() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        return (fds[0], fds[1])
    }

    static func makeSocketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    /// A poller reports the backend it runs, the one it was asked for.
    @Test(arguments: Backends.available)
    func reportsTheBackendItRuns(backend: lk_backend) throws {
        let h = try Harness(backend)
        #expect(lk_poller_backend(h.poller) == backend)
    }

    /// Read readiness is level-triggered on both backends: an unread byte is reported by every wait until it is
    /// consumed, then the fd is quiet.
    @Test(arguments: Backends.available)
    func readReadinessIsLevelTriggered(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (r, w) = Self.makePipe()
        defer { close(r); close(w) }
        #expect(lk_poller_add(h.poller, r, Self.read) == 0)
        #expect(h.poll(r).events == 0, "an empty pipe is not readable")
        var byte: UInt8 = 7
        #expect(Glibc.write(w, &byte, 1) == 1)
        #expect(h.waitFor(r, Self.read) & Self.read != 0)
        // Not consumed: reported again on the next wait (level-triggered).
        #expect(h.waitFor(r, Self.read) & Self.read != 0)
        #expect(Glibc.read(r, &byte, 1) == 1)
        #expect(h.poll(r, timeoutNanoseconds: 20_000_000).events == 0, "consumed: quiet again")
        #expect(lk_poller_remove(h.poller, r) == 0)
    }

    /// modify changes the interest at once: write readiness is reported after switching to write, not after
    /// switching back to read, and read readiness then is.
    @Test(arguments: Backends.available)
    func writeReadinessAndModify(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (a, b) = Self.makeSocketPair()
        defer { close(a); close(b) }
        #expect(lk_poller_add(h.poller, a, Self.read) == 0)
        #expect(h.poll(a).events == 0)
        #expect(lk_poller_modify(h.poller, a, Self.write) == 0)
        #expect(h.waitFor(a, Self.write) & Self.write != 0)
        #expect(lk_poller_modify(h.poller, a, Self.read) == 0)
        #expect(h.poll(a, timeoutNanoseconds: 20_000_000).events == 0, "no longer interested in writability")
        var byte: UInt8 = 1
        #expect(Glibc.write(b, &byte, 1) == 1)
        #expect(h.waitFor(a, Self.read) == Self.read)
    }

    /// A pipe whose writer closes reports a hangup to the reader.
    @Test(arguments: Backends.available)
    func hangupWhenTheWriterCloses(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (r, w) = Self.makePipe()
        defer { close(r) }
        #expect(lk_poller_add(h.poller, r, Self.read) == 0)
        close(w)
        #expect(h.waitFor(r, Self.hangup) & Self.hangup != 0)
    }

    /// A socket peer's half-close (shutdown for writing) is reported as a hangup when a hangup was asked for.
    @Test(arguments: Backends.available)
    func peerHalfCloseIsAHangup(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (a, b) = Self.makeSocketPair()
        defer { close(a); close(b) }
        #expect(lk_poller_add(h.poller, a, Self.read | Self.hangup) == 0)
        #expect(shutdown(b, Int32(SHUT_WR)) == 0)
        #expect(h.waitFor(a, Self.hangup) & Self.hangup != 0)
    }

    /// A pipe's write end reports an error when the reader closes, even with no write interest (errors always
    /// come).
    @Test(arguments: Backends.available)
    func errorWhenTheReaderCloses(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (r, w) = Self.makePipe()
        defer { close(w) }
        #expect(lk_poller_add(h.poller, w, Self.read) == 0, "no write interest: the error comes anyway")
        close(r)
        #expect(h.waitFor(w, Self.error) & Self.error != 0)
    }

    /// A removed fd reports nothing, even with readiness pending and its poll already armed in the kernel; added
    /// again, it reports the pending readiness.
    @Test(arguments: Backends.available)
    func removedFdsReportNothing(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (r, w) = Self.makePipe()
        defer { close(r); close(w) }
        #expect(lk_poller_add(h.poller, r, Self.read) == 0)
        _ = h.poll(r) // armed in the kernel (io_uring) before removal
        #expect(lk_poller_remove(h.poller, r) == 0)
        var byte: UInt8 = 1
        #expect(Glibc.write(w, &byte, 1) == 1)
        #expect(h.poll(r, timeoutNanoseconds: 20_000_000).events == 0)
        // Re-adding works and sees the pending byte.
        #expect(lk_poller_add(h.poller, r, Self.read) == 0)
        #expect(h.waitFor(r, Self.read) & Self.read != 0)
    }

    /// With more ready fds than a wait can return, successive waits report every ready fd, each exactly as ready,
    /// and never an fd that is not.
    @Test(arguments: Backends.available)
    func manyFdsAtOnce(backend: lk_backend) throws {
        let h = try Harness(backend)
        let pipes = (0..<40).map { _ in Self.makePipe() }
        defer { for p in pipes { close(p.read); close(p.write) } }
        for p in pipes { #expect(lk_poller_add(h.poller, p.read, Self.read) == 0) }
        var byte: UInt8 = 1
        for p in pipes.enumerated() where p.offset % 2 == 0 { _ = Glibc.write(p.element.write, &byte, 1) }
        var seen = Set<Int32>()
        var events = [lk_poll_event](repeating: lk_poll_event(), count: 7) // fewer than ready: spread over waits
        let deadline = TestDeadline(seconds: 10)
        while seen.count < 20 && !deadline.hasExpired {
            var woken = false
            let n = lk_poller_wait(h.poller, 50_000_000, &events, 7, &woken)
            try #require(n >= 0)
            for e in events.prefix(Int(n)) { seen.insert(e.fd) }
        }
        let expected = Set(pipes.enumerated().filter { $0.offset % 2 == 0 }.map { $0.element.read })
        #expect(seen == expected)
    }

    /// A wait with nothing to report lasts at least its timeout and reports neither events nor a wakeup.
    @Test(arguments: Backends.available)
    func timeoutIsHonoured(backend: lk_backend) throws {
        let h = try Harness(backend)
        let start = lk_clock_now_ns()
        let r = h.poll(-1, timeoutNanoseconds: 30_000_000)
        let elapsed = lk_clock_now_ns() - start
        #expect(r.events == 0 && !r.woken)
        #expect(elapsed >= 30_000_000, "a wait must not end before its timeout")
    }

    /// A signal on the wake handshake ends a wait with `woken` set.
    @Test(arguments: Backends.available)
    func wakeFdWakesAWait(backend: lk_backend) throws {
        let h = try Harness(backend)
        #expect(lk_wake_signal(h.wake) == 1)
        var woken = false
        let deadline = TestDeadline(seconds: 10)
        while !woken && !deadline.hasExpired { woken = h.poll(-1, timeoutNanoseconds: 100_000_000).woken }
        #expect(woken)
    }

    // MARK: bad input: an errno, never a crash

    /// add refuses bad input with an errno and registers nothing: a negative or closed fd (-EBADF), the wake fd
    /// (-EEXIST), a regular file (-EPERM), unknown event bits (-EINVAL).
    @Test(arguments: Backends.available)
    func badFdsAreRejected(backend: lk_backend) throws {
        let h = try Harness(backend)
        #expect(lk_poller_add(h.poller, -1, Self.read) == -EBADF)
        let (r, w) = Self.makePipe()
        // Closed at a number no concurrent test's open() can take (a low one could be another test's fd by now).
        let closed = highFileDescriptor(duplicating: r)
        close(r); close(w)
        try #require(closed >= 0, "no high fd (errno \(errno))")
        close(closed)
        #expect(lk_poller_add(h.poller, closed, Self.read) == -EBADF, "closed fd")
        #expect(lk_poller_add(h.poller, lk_wake_fd(h.wake), Self.read) == -EEXIST, "the wake fd is taken")
        let file = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        #expect(lk_poller_add(h.poller, file, Self.read) == -EPERM, "regular files cannot be polled")
        let (r2, w2) = Self.makePipe()
        defer { close(r2); close(w2) }
        #expect(lk_poller_add(h.poller, r2, 1 << 9) == -EINVAL, "unknown event bits")
    }

    /// Adding a registered fd is -EEXIST; modifying or removing an fd that is not registered (never added, removed
    /// already, negative, beyond the table) is -ENOENT.
    @Test(arguments: Backends.available)
    func doubleAddAndUnknownFdsAreErrors(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (r, w) = Self.makePipe()
        defer { close(r); close(w) }
        #expect(lk_poller_remove(h.poller, r) == -ENOENT)
        #expect(lk_poller_modify(h.poller, r, Self.read) == -ENOENT)
        #expect(lk_poller_add(h.poller, r, Self.read) == 0)
        #expect(lk_poller_add(h.poller, r, Self.read) == -EEXIST)
        #expect(lk_poller_remove(h.poller, r) == 0)
        #expect(lk_poller_remove(h.poller, r) == -ENOENT)
        #expect(lk_poller_remove(h.poller, -5) == -ENOENT)
        #expect(lk_poller_remove(h.poller, 1 << 20) == -ENOENT)
    }

    // MARK: backend choice

    /// The override "epoll" forces the epoll backend whatever was asked for.
    @Test func epollCanAlwaysBeForced() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        var p: OpaquePointer?
        #expect(lk_poller_create_for_testing(&p, LK_BACKEND_AUTO, lk_wake_fd(w), "epoll") == 0)
        #expect(lk_poller_backend(p) == LK_BACKEND_EPOLL)
        lk_poller_destroy(p)
    }

    /// AUTO runs io_uring where a ring can be set up and epoll otherwise; the override "auto" turns an io_uring
    /// request into that choice.
    @Test func autoPrefersIoUringWhereItWorks() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        var p: OpaquePointer?
        #expect(lk_poller_create_for_testing(&p, LK_BACKEND_IO_URING, lk_wake_fd(w), "auto") == 0 || !Backends.ioUringAvailable)
        lk_poller_destroy(p)
        p = nil
        #expect(lk_poller_create_for_testing(&p, LK_BACKEND_AUTO, lk_wake_fd(w), nil) == 0)
        #expect(lk_poller_backend(p) == (Backends.ioUringAvailable ? LK_BACKEND_IO_URING : LK_BACKEND_EPOLL))
        lk_poller_destroy(p)
    }

    /// The override replaces the requested backend; an unknown override value or backend is -EINVAL, and a negative
    /// wake fd is -EBADF.
    @Test func overrideReplacesTheRequest() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        var p: OpaquePointer?
        #expect(lk_poller_create_for_testing(&p, LK_BACKEND_IO_URING, lk_wake_fd(w), "epoll") == 0)
        #expect(lk_poller_backend(p) == LK_BACKEND_EPOLL)
        lk_poller_destroy(p)
        #expect(lk_poller_create_for_testing(&p, LK_BACKEND_AUTO, lk_wake_fd(w), "kqueue") == -EINVAL)
        #expect(lk_poller_create_for_testing(&p, lk_backend(rawValue: 9), lk_wake_fd(w), nil) == -EINVAL)
        #expect(lk_poller_create_for_testing(&p, LK_BACKEND_EPOLL, -1, nil) == -EBADF)
    }

    /// lk_backend_probe answers as creating a poller of that backend would: epoll and auto always work,
    /// io_uring exactly where a poller of it can be created, and an unknown backend is -EINVAL.
    @Test func probeAnswersAsPollerCreationWould() throws {
        #expect(lk_backend_probe(LK_BACKEND_EPOLL) == 0)
        #expect(lk_backend_probe(LK_BACKEND_AUTO) == 0)
        #expect(lk_backend_probe(lk_backend(rawValue: 9)) == -EINVAL)
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        var p: OpaquePointer?
        let created = lk_poller_create_for_testing(&p, LK_BACKEND_IO_URING, lk_wake_fd(w), nil)
        if created == 0 { lk_poller_destroy(p) }
        #expect(lk_backend_probe(LK_BACKEND_IO_URING) == created)
    }

    /// The probe does not consult LOOPKIT_BACKEND: with a value that makes every poller creation fail, the
    /// probe still answers for the backend asked about. In a child process, which may change its environment.
    @Test func probeIgnoresTheEnvironmentOverride() async {
        await #expect(processExitsWith: .success) {
            setenv("LOOPKIT_BACKEND", "kqueue", 1)
            var w: OpaquePointer?
            precondition(lk_wake_create(&w) == 0)
            var p: OpaquePointer?
            precondition(lk_poller_create(&p, LK_BACKEND_EPOLL, lk_wake_fd(w)) == -EINVAL, "the override is not in force")
            exit(lk_backend_probe(LK_BACKEND_EPOLL) == 0 && lk_backend_probe(LK_BACKEND_AUTO) == 0 ? 0 : 1)
        }
    }

    /// Where io_uring can be set up, the suite really runs it: it is among the backends tested, and asking for it
    /// explicitly gets it.
    @Test("io_uring backend is exercised here", .enabled(if: Backends.ioUringAvailable,
          Comment(rawValue: Backends.ioUringUnavailableReason ?? "")))
    func ioUringIsExercised() throws {
        #expect(Backends.available.contains(LK_BACKEND_IO_URING))
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        var p: OpaquePointer?
        #expect(lk_poller_create_for_testing(&p, LK_BACKEND_IO_URING, lk_wake_fd(w), "io_uring") == 0)
        #expect(lk_poller_backend(p) == LK_BACKEND_IO_URING)
        lk_poller_destroy(p)
    }
}
