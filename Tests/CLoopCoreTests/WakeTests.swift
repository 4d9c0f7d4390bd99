import CLoopCore
import Glibc
import Synchronization
import Testing
import TestSupport

/// The sleep/wake handshake: a sleeping loop is never left asleep with work queued, and however many
/// producers wake it, one sleep costs at most one eventfd write.
@Suite struct WakeTests {
    final class Shared: @unchecked Sendable {
        let queue: OpaquePointer
        let wake: OpaquePointer
        /// The round the waiter has opened; producers push one task per round once the waiter sleeps.
        let openRound = Atomic<Int>(-1)
        let failed = Atomic<Bool>(false)
        init() throws {
            var q: OpaquePointer?
            var w: OpaquePointer?
            try #require(lk_mpsc_create(&q) == 0)
            try #require(lk_wake_create(&w) == 0)
            queue = q!
            wake = w!
        }
        deinit {
            lk_mpsc_destroy(queue)
            lk_wake_destroy(wake)
        }
    }

    struct WaiterResult {
        var received = 0
        var parks = 0
        var blockedWaits = 0
        var lostWakeups = 0
        var outOfOrder = 0
        var pollerError: Int32 = 0
    }

    static let cycles = 100_000
    static let producers = 3

    /// Many threads wake a sleeping waiter, round after round; every wait has a deadline, so a lost
    /// wakeup shows up as a wait that times out while tasks are queued. Rounds alternate between two
    /// shapes: in "sleeper" rounds every producer waits until the waiter is SLEEPING and then pushes (a
    /// real sleep, woken by several threads at once: the dedup path); in "racer" rounds producers push
    /// the moment the round opens, racing the waiter's park and re-check (the lost-wakeup window).
    /// `cycles` counts the sleeper rounds, so the waiter sleeps and is woken at least that often.
    @Test(arguments: Backends.available)
    func noLostWakeupAcrossManySleepWakeCycles(backend: lk_backend) throws {
        let shared = try Shared()
        let cycles = Self.cycles, producers = Self.producers
        nonisolated(unsafe) var result = WaiterResult()
        runOnThreads(producers + 1) { index in
            if index == producers {
                result = Self.waiter(shared, backend: backend, cycles: cycles, producers: producers)
            } else {
                Self.producer(shared, id: index, cycles: cycles)
            }
        }
        var requests: UInt64 = 0, syscalls: UInt64 = 0
        lk_wake_counters(shared.wake, &requests, &syscalls)
        #expect(result.pollerError == 0)
        #expect(result.lostWakeups == 0)
        #expect(result.outOfOrder == 0)
        #expect(result.received == 2 * cycles * producers)
        #expect(result.parks >= cycles)
        #expect(result.blockedWaits >= cycles, "every sleeper round blocks in the poller")
        #expect(syscalls <= requests)
        // The pending flag is reset once per park, and only the signaller that flips it writes.
        #expect(syscalls <= UInt64(result.parks) + 1)
        #expect(result.blockedWaits > 0, "the waiter never actually slept; the test exercised nothing")
    }

    static func waiter(_ s: Shared, backend: lk_backend, cycles: Int, producers: Int) -> WaiterResult {
        var r = WaiterResult()
        var poller: OpaquePointer?
        r.pollerError = lk_poller_create_for_testing(&poller, backend, lk_wake_fd(s.wake), nil)
        guard r.pollerError == 0 else {
            s.failed.store(true, ordering: .relaxed)
            return r
        }
        defer { lk_poller_destroy(poller) }
        var next = [UInt](repeating: 0, count: producers)
        var task = lk_task()
        var events = [lk_poll_event](repeating: lk_poll_event(), count: 4)
        lk_wake_state_store(s.wake, LK_STATE_RUNNING)
        outer: for round in 0..<(2 * cycles) {
            var got = 0
            s.openRound.store(round, ordering: .releasing)
            while got < producers {
                switch lk_mpsc_pop(s.queue, &task) {
                case LK_POP_OK:
                    let id = Int(task.words.0)
                    if task.words.1 != next[id] { r.outOfOrder += 1 }
                    next[id] = task.words.1 + 1
                    got += 1
                    r.received += 1
                    continue
                case LK_POP_BUSY:
                    continue
                default:
                    break
                }
                guard lk_wake_prepare_park(s.wake) else { r.pollerError = -1; break outer }
                r.parks += 1
                if !lk_mpsc_is_empty(s.queue) { // the re-check after announcing SLEEPING
                    lk_wake_finish_park(s.wake)
                    continue
                }
                r.blockedWaits += 1
                var woken = false
                let deadline = TestDeadline(seconds: 20)
                while !woken && !deadline.hasExpired {
                    let n = lk_poller_wait(poller, deadline.remainingNanoseconds, &events, 4, &woken)
                    if n < 0 { r.pollerError = n; break outer }
                }
                lk_wake_finish_park(s.wake)
                if !woken {
                    if !lk_mpsc_is_empty(s.queue) || got < producers { r.lostWakeups += 1 } // slept through its deadline
                    break outer
                }
            }
        }
        if r.pollerError != 0 || r.lostWakeups != 0 { s.failed.store(true, ordering: .relaxed) }
        s.openRound.store(Int.max, ordering: .releasing)
        return r
    }

    static func producer(_ s: Shared, id: Int, cycles: Int) {
        for round in 0..<(2 * cycles) {
            let sleeperRound = round % 2 == 0
            while !s.failed.load(ordering: .relaxed) {
                let open = s.openRound.load(ordering: .acquiring)
                if open > round { break }
                if open == round && (!sleeperRound || lk_wake_state_load(s.wake) == LK_STATE_SLEEPING) { break }
                sched_yield()
            }
            if s.failed.load(ordering: .relaxed) { return }
            var task = lk_task()
            task.words.0 = UInt(id)
            task.words.1 = UInt(round)
            guard lk_mpsc_push(s.queue, &task) >= 0 else { s.failed.store(true, ordering: .relaxed); return }
            _ = lk_wake_notify(s.wake)
        }
    }

    /// Only a RUNNING loop parks; a notify wakes a sleeping loop once: further notifies and signals before the next
    /// park write nothing to the eventfd.
    @Test func signalIsDeduplicatedUntilTheNextPark() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        #expect(lk_wake_state_load(w) == LK_STATE_AWAKE)
        #expect(lk_wake_notify(w) == 0, "an awake loop needs no wakeup")
        #expect(lk_wake_prepare_park(w) == false, "only a RUNNING loop can park")
        lk_wake_state_store(w, LK_STATE_RUNNING)
        #expect(lk_wake_prepare_park(w))
        #expect(lk_wake_state_load(w) == LK_STATE_SLEEPING)
        #expect(lk_wake_notify(w) == 1)
        #expect(lk_wake_notify(w) == 0)
        #expect(lk_wake_signal(w) == 0)
        lk_wake_finish_park(w)
        #expect(lk_wake_state_load(w) == LK_STATE_RUNNING)
        #expect(lk_wake_notify(w) == 0, "a running loop needs no wakeup")
        #expect(lk_wake_prepare_park(w))
        #expect(lk_wake_notify(w) == 1, "the flag was reset for the new sleep")
        lk_wake_finish_park(w)
        var requests: UInt64 = 0, syscalls: UInt64 = 0
        lk_wake_counters(w, &requests, &syscalls)
        #expect(requests == 4)
        #expect(syscalls == 2)
    }

    /// finish_park does not overwrite a state that shutdown moved on from SLEEPING (TERMINATING stays), and a state
    /// CAS from the wrong state fails.
    @Test func finishParkLeavesAStateMovedOnByShutdown() throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        lk_wake_state_store(w, LK_STATE_RUNNING)
        #expect(lk_wake_prepare_park(w))
        #expect(lk_wake_state_cas(w, LK_STATE_SLEEPING, LK_STATE_TERMINATING))
        lk_wake_finish_park(w)
        #expect(lk_wake_state_load(w) == LK_STATE_TERMINATING)
        #expect(lk_wake_state_cas(w, LK_STATE_RUNNING, LK_STATE_SLEEPING) == false)
    }

    /// A signal made while the loop was running, whose eventfd write a non-blocking poll then harvested,
    /// must not stop the next sleep from being woken.
    @Test(arguments: Backends.available)
    func staleSignalDoesNotSuppressTheNextWakeup(backend: lk_backend) throws {
        var w: OpaquePointer?
        try #require(lk_wake_create(&w) == 0)
        defer { lk_wake_destroy(w) }
        var p: OpaquePointer?
        try #require(lk_poller_create_for_testing(&p, backend, lk_wake_fd(w), nil) == 0)
        defer { lk_poller_destroy(p) }
        var events = [lk_poll_event](repeating: lk_poll_event(), count: 4)
        var woken = false
        _ = lk_poller_wait(p, 0, &events, 4, &woken) // arms the wake poll (io_uring)
        lk_wake_state_store(w, LK_STATE_RUNNING)
        #expect(lk_wake_signal(w) == 1) // while running: sets pending
        woken = false
        #expect(lk_poller_wait(p, 0, &events, 4, &woken) == 0)
        #expect(woken, "the write is reported")
        #expect(lk_wake_prepare_park(w))
        #expect(lk_wake_notify(w) == 1, "the new sleep's wakeup is written despite the stale flag")
        woken = false
        let deadline = TestDeadline(seconds: 10)
        while !woken && !deadline.hasExpired {
            _ = lk_poller_wait(p, deadline.remainingNanoseconds, &events, 4, &woken)
        }
        lk_wake_finish_park(w)
        #expect(woken)
    }
}
