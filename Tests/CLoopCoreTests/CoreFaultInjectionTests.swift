import CLoopCore
import CLoopCore.FaultInjection
import Glibc
import Synchronization
import Testing
import TestSupport

/// Faults injected at the core's system calls and allocations (lk_fault.h): each one ends in a retry or a
/// documented -errno, never in a lost task, a lost wakeup or a hang. Every wait is bounded.
@Suite(.serialized, .enabled(if: faultTestsEnabled, "fault injection is process-global: make test runs it alone"))
final class CoreFaultInjectionTests {
    init() { lk_fault_disarm_all() }
    deinit { lk_fault_disarm_all() }

    // MARK: Wake eventfd

    /// The counter of an eventfd (consuming it); 0 when it is 0.
    static func drain(_ fd: Int32) -> UInt64 {
        var value: UInt64 = 0
        return read(fd, &value, 8) == 8 ? value : 0
    }

    /// An eventfd write interrupted by EINTR is retried: the signal still reports success and the counter holds
    /// exactly one wakeup.
    @Test func eventfdWriteInterruptedIsRetried() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        let before = lk_fault_injected(LK_FAULT_EVENTFD_WRITE)
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EINTR, 0, 3)
        #expect(lk_wake_signal(w) == 1)
        #expect(lk_fault_injected(LK_FAULT_EVENTFD_WRITE) == before + 3)
        #expect(Self.drain(lk_wake_fd(w)) == 1)
    }

    /// EAGAIN from the write (a saturated counter) is answered with a read that resets it, then the write.
    @Test func eventfdWriteAgainResetsTheCounterAndWrites() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        let readsBefore = lk_fault_injected(LK_FAULT_EVENTFD_READ)
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EAGAIN, 0, 1)
        lk_fault_arm(LK_FAULT_EVENTFD_READ, EINTR, 0, 2) // the reset read is interrupted too, and retried
        #expect(lk_wake_signal(w) == 1)
        #expect(lk_fault_injected(LK_FAULT_EVENTFD_READ) == readsBefore + 2)
        #expect(Self.drain(lk_wake_fd(w)) == 1)
    }

    /// A counter that something saturates again after every reset: the signal gives up after its attempts
    /// and reports EAGAIN instead of spinning.
    @Test func eventfdThatStaysSaturatedIsReported() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        let before = lk_fault_injected(LK_FAULT_EVENTFD_WRITE)
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EAGAIN, 0, LK_FAULT_FOREVER)
        #expect(lk_wake_signal(w) == -EAGAIN)
        #expect(lk_fault_injected(LK_FAULT_EVENTFD_WRITE) == before + 4)
    }

    /// A real saturated counter (no hook involved): a sleeping poller must still see the next signal. The
    /// edge of the saturating write is consumed first, as a loop that woke and went back to sleep would.
    @Test(arguments: Backends.available)
    func saturatedEventfdStillWakesTheSleeper(backend: lk_backend) throws {
        let h = try Harness(backend)
        let (w, p) = (h.wake, h.poller)
        var events = [lk_poll_event](repeating: lk_poll_event(), count: 4)
        var woken = false
        #expect(lk_poller_wait(p, 0, &events, 4, &woken) == 0) // arms the wake poll (io_uring)
        var max: UInt64 = 0xffff_ffff_ffff_fffe
        try #require(write(lk_wake_fd(w), &max, 8) == 8)
        woken = false
        #expect(lk_poller_wait(p, 1_000_000_000, &events, 4, &woken) == 0)
        try #require(woken, "the saturating write itself wakes the poller")
        var one: UInt64 = 1
        #expect(write(lk_wake_fd(w), &one, 8) == -1 && errno == EAGAIN, "the counter is saturated")
        woken = false
        #expect(lk_poller_wait(p, 0, &events, 4, &woken) == 0)
        #expect(!woken, "a failed write is no event")

        #expect(lk_wake_signal(w) == 1)
        woken = false
        #expect(lk_poller_wait(p, 5_000_000_000, &events, 4, &woken) == 0)
        #expect(woken, "the signal after saturation reaches the sleeper")
    }

    /// A write that keeps failing is retried, then reported; the pending flag is cleared so the next signal
    /// writes (the work it announced is not withdrawn and is seen at that next wakeup).
    @Test func eventfdWriteFailureIsReportedAndTheNextSignalWrites() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EIO, 0, 3)
        #expect(lk_wake_signal(w) == 1, "three failures are within the retries")
        lk_wake_state_store(w, LK_STATE_RUNNING)
        #expect(lk_wake_prepare_park(w), "a new sleep: the pending flag is reset")
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EIO, 0, LK_FAULT_FOREVER)
        #expect(lk_wake_signal(w) == -EIO)
        lk_fault_disarm(LK_FAULT_EVENTFD_WRITE)
        #expect(lk_wake_signal(w) == 1, "the failed signal left no pending flag behind")
        #expect(Self.drain(lk_wake_fd(w)) == 2)
    }

    // MARK: Pollers

    /// A poller, its wake handshake and a pipe whose read end the tests register.
    final class Harness {
        let base: PollerTests.Harness
        let fds: (read: Int32, write: Int32) = PollerTests.makePipe()
        var events = [lk_poll_event](repeating: lk_poll_event(), count: 16)

        init(_ backend: lk_backend) throws { base = try PollerTests.Harness(backend) }

        deinit {
            close(fds.read)
            close(fds.write)
        }

        var wake: OpaquePointer { base.wake }
        var poller: OpaquePointer { base.poller }
        var readEnd: Int32 { fds.read }

        func makeReadable() {
            var byte: UInt8 = 1
            _ = write(fds.write, &byte, 1)
        }

        /// One wait: (return value, events for the read end, woken).
        func wait(timeoutNanoseconds: Int64) -> (rc: Int32, events: UInt32, woken: Bool) {
            var woken = false
            let n = lk_poller_wait(poller, timeoutNanoseconds, &events, Int32(events.count), &woken)
            var mask: UInt32 = 0
            for e in events.prefix(Int(max(n, 0))) where e.fd == readEnd { mask |= e.events }
            return (n, mask, woken)
        }
    }

    /// An epoll_ctl failure (ENOSPC, ENOMEM) is returned by add, modify and remove and changes nothing: a failed
    /// add registers nothing, a failed modify keeps the old interest, a failed remove keeps the fd; a retry
    /// succeeds.
    @Test func epollCtlFailureIsReturnedAndChangesNothing() throws {
        let h = try Harness(LK_BACKEND_EPOLL)
        lk_fault_arm(LK_FAULT_EPOLL_CTL, ENOSPC, 0, 1)
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == -ENOSPC)
        #expect(lk_poller_remove(h.poller, h.readEnd) == -ENOENT, "the failed add registered nothing")
        lk_fault_arm(LK_FAULT_EPOLL_CTL, ENOMEM, 0, 1)
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == -ENOMEM)
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == 0)
        lk_fault_arm(LK_FAULT_EPOLL_CTL, ENOMEM, 0, 1)
        #expect(lk_poller_modify(h.poller, h.readEnd, UInt32(LK_POLL_WRITE)) == -ENOMEM)
        h.makeReadable()
        #expect(h.wait(timeoutNanoseconds: 5_000_000_000).events & UInt32(LK_POLL_READ) != 0,
                "the failed modify kept the old interest")
        lk_fault_arm(LK_FAULT_EPOLL_CTL, ENOMEM, 0, 1)
        #expect(lk_poller_remove(h.poller, h.readEnd) == -ENOMEM)
        #expect(h.wait(timeoutNanoseconds: 0).events & UInt32(LK_POLL_READ) != 0, "the failed remove kept it")
        #expect(lk_poller_remove(h.poller, h.readEnd) == 0)
    }

    /// epoll_ctl interrupted by EINTR is retried until it succeeds, and the registration works.
    @Test func epollCtlInterruptedIsRetried() throws {
        let h = try Harness(LK_BACKEND_EPOLL)
        let before = lk_fault_injected(LK_FAULT_EPOLL_CTL)
        lk_fault_arm(LK_FAULT_EPOLL_CTL, EINTR, 0, 5)
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == 0)
        #expect(lk_fault_injected(LK_FAULT_EPOLL_CTL) == before + 5)
        h.makeReadable()
        #expect(h.wait(timeoutNanoseconds: 5_000_000_000).events & UInt32(LK_POLL_READ) != 0)
    }

    /// EINTR from the wait is retried with the time left: a signal never ends a wait early or loses the
    /// wakeup that is pending. Any other failure is returned as -errno.
    @Test(arguments: Backends.available)
    func waitInterruptedIsRetriedAndOtherFailuresReturned(backend: lk_backend) throws {
        let h = try Harness(backend)
        let point = backend == LK_BACKEND_EPOLL ? LK_FAULT_EPOLL_WAIT : LK_FAULT_URING_WAIT
        _ = h.wait(timeoutNanoseconds: 0)
        #expect(lk_wake_signal(h.wake) == 1)
        let before = lk_fault_injected(point)
        lk_fault_arm(point, EINTR, 0, 4)
        let r = h.wait(timeoutNanoseconds: -1)
        #expect(r.rc == 0 && r.woken)
        #expect(lk_fault_injected(point) == before + 4)

        lk_fault_arm(point, EINTR, 0, 3)
        let start = monotonicNanoseconds()
        #expect(h.wait(timeoutNanoseconds: 20_000_000).rc == 0)
        #expect(monotonicNanoseconds() - start >= 20_000_000, "interrupted waits do not end the timeout early")

        lk_fault_arm(point, EINVAL, 0, 1)
        #expect(h.wait(timeoutNanoseconds: -1).rc == -EINVAL)
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == 0)
        h.makeReadable()
        #expect(h.wait(timeoutNanoseconds: 5_000_000_000).events & UInt32(LK_POLL_READ) != 0, "the poller still works")
    }

    /// io_uring: a full submission queue that cannot be flushed. The wait must not block (it could miss the
    /// fd or the wakeup it failed to arm); once the queue drains, everything is armed and reported.
    @Test(.enabled(if: Backends.ioUringAvailable, "io_uring is refused here"))
    func uringFullSubmissionQueueNeverBlocksAndRecovers() throws {
        let h = try Harness(LK_BACKEND_IO_URING)
        _ = h.wait(timeoutNanoseconds: 0) // the wake poll is armed
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == 0)
        lk_fault_arm(LK_FAULT_URING_SQE, EBUSY, 0, LK_FAULT_FOREVER)
        lk_fault_arm(LK_FAULT_URING_SUBMIT, EBUSY, 0, LK_FAULT_FOREVER)
        h.makeReadable()
        let start = monotonicNanoseconds()
        let r = h.wait(timeoutNanoseconds: 3_000_000_000)
        #expect(r.rc == 0)
        #expect(monotonicNanoseconds() - start < 1_000_000_000, "a wait with an unarmed fd does not block")
        lk_fault_disarm_all()
        #expect(h.wait(timeoutNanoseconds: 5_000_000_000).events & UInt32(LK_POLL_READ) != 0)
        #expect(lk_wake_signal(h.wake) == 1)
        #expect(h.wait(timeoutNanoseconds: 5_000_000_000).woken, "the wake poll still works")
    }

    /// io_uring: one full-queue answer is handled by submitting and taking the next entry.
    @Test(.enabled(if: Backends.ioUringAvailable, "io_uring is refused here"))
    func uringFullSubmissionQueueIsFlushed() throws {
        let h = try Harness(LK_BACKEND_IO_URING)
        _ = h.wait(timeoutNanoseconds: 0)
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == 0)
        let (sqeBefore, submitBefore) = (lk_fault_injected(LK_FAULT_URING_SQE), lk_fault_injected(LK_FAULT_URING_SUBMIT))
        lk_fault_arm(LK_FAULT_URING_SQE, EBUSY, 0, 1)
        lk_fault_arm(LK_FAULT_URING_SUBMIT, EINTR, 0, 2) // the flush is interrupted, and retried
        h.makeReadable()
        #expect(h.wait(timeoutNanoseconds: 5_000_000_000).events & UInt32(LK_POLL_READ) != 0)
        #expect(lk_fault_injected(LK_FAULT_URING_SQE) == sqeBefore + 1)
        #expect(lk_fault_injected(LK_FAULT_URING_SUBMIT) == submitBefore + 2)
    }

    /// io_uring: the cancellation of a removed fd's poll whose submission fails goes in with the next wait.
    /// Until it does, the kernel holds the file; afterwards it is released (a write to the pipe then finds
    /// no reader).
    @Test(.enabled(if: Backends.ioUringAvailable, "io_uring is refused here"))
    func uringCancellationWhoseSubmitFailsGoesInWithTheNextWait() throws {
        signal(SIGPIPE, SIG_IGN) // the write to a pipe without a reader must fail with EPIPE, not kill us
        let h = try Harness(LK_BACKEND_IO_URING)
        let pipe = PollerTests.makePipe()
        defer { close(pipe.write) }
        #expect(lk_poller_add(h.poller, pipe.read, UInt32(LK_POLL_READ)) == 0)
        #expect(h.wait(timeoutNanoseconds: 0).rc == 0) // the poll is now in the kernel
        let before = lk_fault_injected(LK_FAULT_URING_SUBMIT)
        lk_fault_arm(LK_FAULT_URING_SUBMIT, ENOMEM, 0, 1)
        #expect(lk_poller_remove(h.poller, pipe.read) == 0)
        #expect(lk_fault_injected(LK_FAULT_URING_SUBMIT) == before + 1, "the cancellation's submission failed")
        close(pipe.read)
        var byte: UInt8 = 1
        #expect(write(pipe.write, &byte, 1) == 1, "the kernel still holds the read end")
        #expect(h.wait(timeoutNanoseconds: 0).rc == 0) // submits the cancellation and reaps it
        #expect(write(pipe.write, &byte, 1) == -1 && errno == EPIPE, "the read end is released")
    }

    /// io_uring: EAGAIN / EBUSY from the wait (the kernel could not take the submissions) is no error.
    @Test(.enabled(if: Backends.ioUringAvailable, "io_uring is refused here"))
    func uringWaitBusyIsNoError() throws {
        let h = try Harness(LK_BACKEND_IO_URING)
        #expect(lk_poller_add(h.poller, h.readEnd, UInt32(LK_POLL_READ)) == 0)
        h.makeReadable()
        lk_fault_arm(LK_FAULT_URING_WAIT, EAGAIN, 0, 1)
        #expect(h.wait(timeoutNanoseconds: -1).rc == 0)
        lk_fault_arm(LK_FAULT_URING_WAIT, EBUSY, 0, 1)
        #expect(h.wait(timeoutNanoseconds: -1).rc == 0)
        #expect(h.wait(timeoutNanoseconds: 5_000_000_000).events & UInt32(LK_POLL_READ) != 0)
    }

    // MARK: Memory for queued work

    /// Pushes until the push fails with -ENOMEM, then checks that everything accepted pops, in order, and
    /// that pushing works again once memory is back. Returns how many were accepted.
    static func exhaust(push: (inout lk_task) -> Int32, pop: (inout lk_task) -> lk_pop_status,
                        isEmpty: () -> Bool, point: lk_fault_point, limit: Int) -> Int {
        lk_fault_arm(point, ENOMEM, 1, LK_FAULT_FOREVER) // the first allocation succeeds
        var accepted = 0
        while accepted < limit {
            var task = makeTask(accepted)
            let rc = push(&task)
            if rc < 0 {
                #expect(rc == -ENOMEM)
                break
            }
            accepted += 1
        }
        #expect(accepted > 0 && accepted < limit, "the second allocation failed")
        lk_fault_disarm(point)
        var refused = makeTask(accepted)
        #expect(push(&refused) >= 0, "pushing works again")
        var task = blankTask
        for expected in 0...accepted {
            #expect(pop(&task) == LK_POP_OK)
            #expect(sequenceOf(task) == expected)
        }
        #expect(pop(&task) == LK_POP_EMPTY)
        #expect(isEmpty())
        return accepted
    }

    /// An MPSC push whose node allocation fails returns -ENOMEM and queues nothing; whatever was accepted before
    /// pops out intact and in order.
    @Test func mpscNodeAllocationFailureQueuesNothing() throws {
        var q: OpaquePointer?
        try #require(lk_mpsc_create(&q) == 0)
        defer { lk_mpsc_destroy(q) }
        lk_fault_arm(LK_FAULT_NODE_ALLOC, ENOMEM, 0, LK_FAULT_FOREVER)
        var task = makeTask(0)
        #expect(lk_mpsc_push(q, &task) == -ENOMEM)
        #expect(lk_mpsc_is_empty(q))
        _ = Self.exhaust(push: { lk_mpsc_push(q, &$0) }, pop: { lk_mpsc_pop(q, &$0) },
                         isEmpty: { lk_mpsc_is_empty(q) }, point: LK_FAULT_NODE_ALLOC, limit: 1 << 20)
    }

    /// A chunked-queue push whose chunk allocation fails returns -ENOMEM and queues nothing; what was accepted pops
    /// out intact and in order.
    @Test func chunkAllocationFailureQueuesNothing() throws {
        var q: OpaquePointer?
        try #require(lk_chunkq_create(&q) == 0)
        defer { lk_chunkq_destroy(q) }
        _ = Self.exhaust(push: { lk_chunkq_push(q, &$0) }, pop: { lk_chunkq_pop(q, &$0) },
                         isEmpty: { lk_chunkq_is_empty(q) }, point: LK_FAULT_CHUNK_ALLOC, limit: 1 << 20)
    }

    /// A ring push that needs its overflow to grow and cannot returns -ENOMEM and queues nothing: the ring's slots
    /// and the overflow's first block take tasks, and every accepted task pops out in order.
    @Test func ringOverflowAllocationFailureQueuesNothing() throws {
        var r: OpaquePointer?
        try #require(lk_ring_create_for_testing(&r, 4, UInt64.max - 2) == 0)
        defer { lk_ring_destroy(r) }
        let accepted = Self.exhaust(push: { lk_ring_push(r, &$0) }, pop: { lk_ring_pop(r, &$0) },
                                    isEmpty: { lk_ring_is_empty(r) }, point: LK_FAULT_RING_OVERFLOW_ALLOC, limit: 1 << 20)
        #expect(accepted == 8, "4 ring slots and a first overflow of 4")
        #expect(lk_ring_length(r) == 0)
    }

    /// An SPSC queue without memory for its first segment is not created; a push that needs a new segment and
    /// cannot get one returns -ENOMEM and queues nothing.
    @Test func spscSegmentAllocationFailureQueuesNothing() throws {
        var q: OpaquePointer?
        lk_fault_arm(LK_FAULT_SEGMENT_ALLOC, ENOMEM, 0, 1)
        #expect(lk_spscq_create(&q) == -ENOMEM, "no first segment, no queue")
        try #require(lk_spscq_create(&q) == 0)
        defer { lk_spscq_destroy(q) }
        let accepted = Self.exhaust(push: { lk_spscq_push(q, &$0) },
                                    pop: { lk_spscq_pop_batch(q, &$0, 1) == 1 ? LK_POP_OK : LK_POP_EMPTY },
                                    isEmpty: { lk_spscq_is_empty(q) }, point: LK_FAULT_SEGMENT_ALLOC, limit: 1 << 20)
        #expect(accepted == 2 * Int(LK_SPSCQ_SEGMENT_SLOTS), "the queue's segment and one more")
    }

    /// The per-producer ingress: a producer's first push fails cleanly when its record cannot be allocated
    /// (and the next push registers it), and a push that needs a new segment fails cleanly when there is none.
    @Test func perProducerAllocationFailuresQueueNothing() throws {
        var g: OpaquePointer?
        try #require(lk_ingress_create(&g, LK_INGRESS_PER_PRODUCER, nil) == 0)
        let q = try #require(g)
        defer { lk_ingress_destroy(q) }
        lk_fault_arm(LK_FAULT_PRODUCER_ALLOC, ENOMEM, 0, 1)
        var first = makeTask(0)
        #expect(lk_ingress_push(q, &first, nil) == -ENOMEM)
        #expect(lk_ingress_is_empty(q))
        #expect(lk_ingress_producer_count(q) == 0)
        lk_fault_arm(LK_FAULT_SEGMENT_ALLOC, ENOMEM, 0, 1)
        #expect(lk_ingress_push(q, &first, nil) == -ENOMEM, "the record's first segment failed")
        #expect(lk_ingress_producer_count(q) == 0)
        _ = Self.exhaust(push: { lk_ingress_push(q, &$0, nil) }, pop: { lk_ingress_pop(q, &$0) },
                         isEmpty: { lk_ingress_is_empty(q) }, point: LK_FAULT_SEGMENT_ALLOC, limit: 1 << 20)
        #expect(lk_ingress_producer_count(q) == 1)
    }

    /// A producer whose announcement could not wake the loop (the eventfd write failed) notifies again on
    /// its next push, although the loop "holds" its record: that push is the next signal which wakes the loop
    /// for the work already queued.
    @Test func perProducerRepeatsAFailedNotification() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        let wake = try #require(w)
        defer { lk_wake_destroy(wake) }
        lk_wake_state_store(wake, LK_STATE_SLEEPING)
        var g: OpaquePointer?
        try #require(lk_ingress_create(&g, LK_INGRESS_PER_PRODUCER, wake) == 0)
        let q = try #require(g)
        defer { lk_ingress_destroy(q) }
        var results: [Int32] = []
        func push(_ i: Int) {
            var task = makeTask(i)
            var wakeResult: Int32 = 99
            #expect(lk_ingress_push(q, &task, &wakeResult) == 0, "queued whatever the wakeup did")
            results.append(wakeResult)
        }
        lk_fault_arm(LK_FAULT_EVENTFD_WRITE, EIO, 0, LK_FAULT_FOREVER)
        push(0) // announces; the write fails
        push(1) // held, but notifies again; fails again
        lk_fault_disarm(LK_FAULT_EVENTFD_WRITE)
        push(2) // notifies again: the write goes through
        push(3) // held, and the last notification worked: nothing
        #expect(results == [-EIO, -EIO, 1, 0])
        var drained: [Int] = []
        var out = blankTask
        while lk_ingress_pop(q, &out) == LK_POP_OK { drained.append(sequenceOf(out)) }
        #expect(drained == [0, 1, 2, 3])
    }

    // MARK: Admission gate

    /// membarrier failing transiently (ENOMEM for the kernel's cpumask, EINTR) is retried: the gate still
    /// closes only after the submitter inside has published, and admits nobody afterwards.
    @Test(.enabled(if: lk_gate_uses_membarrier(), "fence mode makes no membarrier call"))
    func gateRetriesATransientMembarrierFailure() throws {
        var g: OpaquePointer?
        try #require(lk_gate_create(&g) == 0)
        let gate = SharedHandle(g!)
        let inside = Atomic<Bool>(false), release = Atomic<Bool>(false)
        let published = Atomic<Int>(0), seenAtClose = Atomic<Int>(-1), closed = Atomic<Bool>(false)
        // A closer still spinning when the test gives up must not find the gate freed under it.
        defer { if closed.load(ordering: .acquiring) { lk_gate_destroy(g) } }
        let before = lk_fault_injected(LK_FAULT_MEMBARRIER)
        lk_fault_arm(LK_FAULT_MEMBARRIER, ENOMEM, 0, 3)
        try startDetachedThread { // the closer: detached, so that a close that never returns fails the test
            _ = waitUntil { inside.load(ordering: .acquiring) }
            release.store(true, ordering: .releasing)
            lk_gate_close(gate.pointer)
            seenAtClose.store(published.load(ordering: .relaxed), ordering: .relaxed)
            closed.store(true, ordering: .releasing)
        }
        runOnThreads(1) { _ in // the submitter
            precondition(lk_gate_enter(gate.pointer, nil))
            inside.store(true, ordering: .releasing)
            let released = waitUntil { release.load(ordering: .acquiring) }
            #expect(released, "the closer started")
            published.store(1, ordering: .relaxed)
            lk_gate_exit()
        }
        let didClose = waitUntil(seconds: 10) { closed.load(ordering: .acquiring) }
        #expect(didClose, "the gate closed")
        let seen = seenAtClose.load(ordering: .relaxed)
        #expect(seen == 1, "close returned after the submitter published")
        #expect(lk_fault_injected(LK_FAULT_MEMBARRIER) == before + 3)
        #expect(!lk_gate_enter(g, nil), "a closed gate admits nobody")
    }
}
