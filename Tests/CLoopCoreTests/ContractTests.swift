// Contract checks of the C core in debug builds (LK_DEBUG, debug_impl.h): a queue's consumer side, a wake
// handshake's park and a poller belong to one thread; a call from another thread stops the process with a
// message naming the call, unless the owner handed the consumer side over first. Release builds compile
// the checks out, so these tests exist only in debug builds (`make test`).

#if DEBUG
import CLoopCore
import Glibc
import Testing
import TestSupport

/// One object of each kind, used by `first` on the calling thread and then by `second` on a new thread.
enum ContractProbe {
    /// Runs `body` on a new thread and waits for it.
    static func onAnotherThread(_ body: @escaping @Sendable () -> Void) {
        runOnThreads(1) { _ in body() }
    }

    static func mpsc(handOver: Bool) {
        var q: OpaquePointer?
        precondition(lk_mpsc_create(&q) == 0)
        var task = makeTask(0)
        _ = lk_mpsc_push(q, &task)
        _ = lk_mpsc_pop(q, &task)
        if handOver { lk_mpsc_consumer_hand_over(q) }
        let shared = SharedHandle(q!)
        onAnotherThread { _ = lk_mpsc_is_empty(shared.pointer) }
        lk_mpsc_destroy(q)
    }

    static func ring(handOver: Bool) {
        var r: OpaquePointer?
        precondition(lk_ring_create(&r) == 0)
        var task = makeTask(0)
        _ = lk_ring_push(r, &task)
        _ = lk_ring_pop(r, &task)
        if handOver { lk_ring_consumer_hand_over(r) }
        let shared = SharedHandle(r!)
        onAnotherThread {
            var out = blankTask
            _ = lk_ring_pop(shared.pointer, &out)
        }
        lk_ring_destroy(r)
    }

    static func chunked(handOver: Bool) {
        var q: OpaquePointer?
        precondition(lk_chunkq_create(&q) == 0)
        var task = makeTask(0)
        _ = lk_chunkq_push(q, &task)
        _ = lk_chunkq_pop(q, &task)
        if handOver { lk_chunkq_consumer_hand_over(q) }
        let shared = SharedHandle(q!)
        onAnotherThread {
            var out = blankTask
            _ = lk_chunkq_pop_batch(shared.pointer, &out, 1)
        }
        lk_chunkq_destroy(q)
    }

    static func spsc(handOver: Bool) {
        var q: OpaquePointer?
        precondition(lk_spscq_create(&q) == 0)
        var task = makeTask(0)
        _ = lk_spscq_push(q, &task)
        _ = lk_spscq_pop_batch(q, &task, 1)
        if handOver { lk_spscq_consumer_hand_over(q) }
        let shared = SharedHandle(q!)
        onAnotherThread { _ = lk_spscq_is_empty(shared.pointer) }
        lk_spscq_destroy(q)
    }

    static func ingress(_ kind: lk_ingress_kind, handOver: Bool) {
        var q: OpaquePointer?
        precondition(lk_ingress_create(&q, kind, nil) == 0)
        var task = makeTask(0)
        _ = lk_ingress_push(q, &task, nil)
        _ = lk_ingress_pop(q, &task)
        if handOver { lk_ingress_consumer_hand_over(q) }
        let shared = SharedHandle(q!)
        onAnotherThread {
            var out = blankTask
            _ = lk_ingress_pop_batch(shared.pointer, &out, 1, nil)
            lk_ingress_prepare_park(shared.pointer)
            lk_ingress_finish_park(shared.pointer)
        }
        lk_ingress_destroy(q)
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

@Suite struct ContractTests {
    @Test func aSecondMPSCConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.mpsc(handOver: false) }
    }

    @Test func aSecondRingConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.ring(handOver: false) }
    }

    @Test func aSecondChunkedQueueConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.chunked(handOver: false) }
    }

    @Test func aSecondSPSCConsumerStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.spsc(handOver: false) }
    }

    @Test func aSecondConsumerOfAPerProducerIngressStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.ingress(LK_INGRESS_PER_PRODUCER, handOver: false) }
    }

    @Test func aSecondConsumerOfALockFreeIngressStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.ingress(LK_INGRESS_LOCK_FREE, handOver: false) }
    }

    @Test func aSecondConsumerOfAChunkedIngressStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.ingress(LK_INGRESS_CHUNKED, handOver: false) }
    }

    @Test func parkingFromASecondThreadStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.parkOnTwoThreads() }
    }

    @Test func pollingFromAThreadOtherThanTheCreatorStopsTheProcess() async {
        await #expect(processExitsWith: .failure) { ContractProbe.pollFromAnotherThread() }
    }

    /// The documented hand-over moves the consumer side; the ingress's hand-over covers the queue inside it.
    @Test func aHandedOverConsumerSideMayBeUsedByAnotherThread() {
        ContractProbe.mpsc(handOver: true)
        ContractProbe.ring(handOver: true)
        ContractProbe.chunked(handOver: true)
        ContractProbe.spsc(handOver: true)
        for kind in [LK_INGRESS_PER_PRODUCER, LK_INGRESS_LOCK_FREE, LK_INGRESS_CHUNKED] {
            ContractProbe.ingress(kind, handOver: true)
        }
    }
}
#endif
