// Contract checks of the C core in debug builds (LK_DEBUG, debug_impl.h): a queue's consumer side, a wake
// handshake's park and a poller belong to one thread; a call from another thread stops the process with a
// message naming the call, unless the owner handed the consumer side over first. Release builds compile
// the checks out, so these tests exist only in debug builds (`make test`).

#if DEBUG
import CLoopCore
import Glibc
import Testing
import TestSupport

/// One object of each kind, used on the calling thread (which becomes its owner) and then on another thread.
enum ContractProbe {
    /// Runs `body` on a new thread and waits for it.
    static func onAnotherThread(_ body: @escaping @Sendable () -> Void) {
        runOnThreads(1) { _ in body() }
    }

    /// A queue's consumer side as the probe drives it: `own` pushes and pops one task on the calling thread
    /// (so the debug build records it as the consumer), `use` is a consumer-side call made on another thread.
    struct Queue: Sendable {
        let create: @Sendable () -> OpaquePointer
        let own: @Sendable (OpaquePointer) -> Void
        let handOver: @Sendable (OpaquePointer) -> Void
        let use: @Sendable (OpaquePointer) -> Void
        let destroy: @Sendable (OpaquePointer) -> Void
    }

    /// Owns `queue` here, hands its consumer side over when asked to, then uses it from another thread.
    static func consume(_ queue: Queue, handOver: Bool) {
        let q = queue.create()
        queue.own(q)
        if handOver { queue.handOver(q) }
        let shared = SharedHandle(q)
        onAnotherThread { queue.use(shared.pointer) }
        queue.destroy(q)
    }

    /// An object from a `create(&pointer)` call that must succeed.
    static func created(_ create: (UnsafeMutablePointer<OpaquePointer?>) -> Int32) -> OpaquePointer {
        var p: OpaquePointer?
        precondition(create(&p) == 0)
        return p!
    }

    static func parkOnTwoThreads() {
        var w: OpaquePointer?
        precondition(lk_wake_create(&w) == 0)
        lk_wake_state_store(w, LK_STATE_RUNNING)
        if lk_wake_prepare_park(w) { lk_wake_finish_park(w) }
        let shared = SharedHandle(w!)
        onAnotherThread { if lk_wake_prepare_park(shared.pointer) { lk_wake_finish_park(shared.pointer) } }
        lk_wake_destroy(w)
    }

    static func pollFromAnotherThread() {
        var w: OpaquePointer?
        precondition(lk_wake_create(&w) == 0)
        var p: OpaquePointer?
        precondition(lk_poller_create(&p, LK_BACKEND_AUTO, lk_wake_fd(w)) == 0)
        let shared = SharedHandle(p!)
        onAnotherThread {
            var events = lk_poll_event()
            var woken = false
            _ = lk_poller_wait(shared.pointer, 0, &events, 1, &woken)
        }
        lk_poller_destroy(p)
        lk_wake_destroy(w)
    }
}

extension ContractProbe.Queue {
    static let mpsc = Self(
        create: { ContractProbe.created(lk_mpsc_create) },
        own: { var t = makeTask(0); _ = lk_mpsc_push($0, &t); _ = lk_mpsc_pop($0, &t) },
        handOver: lk_mpsc_consumer_hand_over, use: { _ = lk_mpsc_is_empty($0) }, destroy: lk_mpsc_destroy)

    static let ring = Self(
        create: { ContractProbe.created(lk_ring_create) },
        own: { var t = makeTask(0); _ = lk_ring_push($0, &t); _ = lk_ring_pop($0, &t) },
        handOver: lk_ring_consumer_hand_over, use: { var t = blankTask; _ = lk_ring_pop($0, &t) }, destroy: lk_ring_destroy)

    static let chunked = Self(
        create: { ContractProbe.created(lk_chunkq_create) },
        own: { var t = makeTask(0); _ = lk_chunkq_push($0, &t); _ = lk_chunkq_pop($0, &t) },
        handOver: lk_chunkq_consumer_hand_over, use: { var t = blankTask; _ = lk_chunkq_pop_batch($0, &t, 1) },
        destroy: lk_chunkq_destroy)

    static let spsc = Self(
        create: { ContractProbe.created(lk_spscq_create) },
        own: { var t = makeTask(0); _ = lk_spscq_push($0, &t); _ = lk_spscq_pop_batch($0, &t, 1) },
        handOver: lk_spscq_consumer_hand_over, use: { _ = lk_spscq_is_empty($0) }, destroy: lk_spscq_destroy)

    /// The consumer side of an ingress: pop_batch and the park calls.
    static func ingress(_ kind: lk_ingress_kind) -> Self {
        Self(
            create: { ContractProbe.created { lk_ingress_create($0, kind, nil) } },
            own: { var t = makeTask(0); _ = lk_ingress_push($0, &t, nil); _ = lk_ingress_pop($0, &t) },
            handOver: lk_ingress_consumer_hand_over,
            use: { q in
                var t = blankTask
                _ = lk_ingress_pop_batch(q, &t, 1, nil)
                lk_ingress_prepare_park(q)
                lk_ingress_finish_park(q)
            },
            destroy: lk_ingress_destroy)
    }

}

@Suite struct ContractTests {
    /// An MPSC queue's consumer side used from a second thread, without a hand-over, stops the process (debug
    /// builds).
    @Test func aSecondMPSCConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.consume(.mpsc, handOver: false) }
    }

    /// A ring's consumer side used from a second thread, without a hand-over, stops the process (debug builds).
    @Test func aSecondRingConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.consume(.ring, handOver: false) }
    }

    /// A chunked queue's consumer side used from a second thread, without a hand-over, stops the process (debug
    /// builds).
    @Test func aSecondChunkedQueueConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.consume(.chunked, handOver: false) }
    }

    /// An SPSC queue's consumer side used from a second thread, without a hand-over, stops the process (debug
    /// builds).
    @Test func aSecondSPSCConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.consume(.spsc, handOver: false) }
    }

    /// A per-producer ingress's consumer side (pop, park) used from a second thread, without a hand-over, stops the
    /// process (debug builds).
    @Test func aSecondConsumerOfAPerProducerIngressStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.consume(.ingress(LK_INGRESS_PER_PRODUCER), handOver: false) }
    }

    /// A lock-free ingress's consumer side used from a second thread, without a hand-over, stops the process (debug
    /// builds).
    @Test func aSecondConsumerOfALockFreeIngressStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.consume(.ingress(LK_INGRESS_LOCK_FREE), handOver: false) }
    }

    /// A chunked ingress's consumer side used from a second thread, without a hand-over, stops the process (debug
    /// builds).
    @Test func aSecondConsumerOfAChunkedIngressStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.consume(.ingress(LK_INGRESS_CHUNKED), handOver: false) }
    }

    /// The wake handshake's park (prepare/finish) made by a second thread stops the process (debug builds).
    @Test func parkingFromASecondThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.parkOnTwoThreads() }
    }

    /// A poller waited on by a thread other than the one that created it stops the process (debug builds).
    @Test func pollingFromAThreadOtherThanTheCreatorStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.pollFromAnotherThread() }
    }

    /// The documented hand-over moves the consumer side; the ingress's hand-over covers the queue inside it.
    @Test func aHandedOverConsumerSideMayBeUsedByAnotherThread() {
        ContractProbe.consume(.mpsc, handOver: true)
        ContractProbe.consume(.ring, handOver: true)
        ContractProbe.consume(.chunked, handOver: true)
        ContractProbe.consume(.spsc, handOver: true)
        for kind in [LK_INGRESS_PER_PRODUCER, LK_INGRESS_LOCK_FREE, LK_INGRESS_CHUNKED] {
            ContractProbe.consume(.ingress(kind), handOver: true)
        }
    }
}
#endif
