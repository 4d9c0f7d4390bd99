import CBenchSupport
import CLoopCore
import LoopKit

/// The C-level microbenchmarks of the core, measured directly (no entrant): each run calls the op's C
/// function once. Interleaved, so a floor and the costs compared with it are measured close in time.
struct CoreMicro: Workload {
    let info = WorkloadInfo(
        name: "CoreMicro", about: "The C core's operations, each timed by a C loop around it.",
        metric: "ns per operation", layout: .operations)

    var order: RunOrder { .interleaved }

    /// The ops; those with a backend run only where that backend works.
    static let operations: [(name: String, backend: PollBackend?, measure: @Sendable () -> Double)] = [
        ("floor_handoff", nil, { lkb_floor_handoff_ns() }),
        ("floor_round_trip", nil, { lkb_floor_round_trip_ns() }),
        ("ingress_per_producer_handoff", nil, { lkb_ingress_handoff_ns(Int32(LK_INGRESS_PER_PRODUCER.rawValue)) }),
        ("ingress_per_producer_fenced_handoff", nil, { lkb_ingress_handoff_fenced_ns() }),
        ("ingress_per_producer_notify_each_handoff", nil, { lkb_ingress_handoff_notify_each_ns() }),
        ("submit_handoff", nil, { lkb_submit_handoff_ns() }),
        ("ingress_lock_free_handoff", nil, { lkb_ingress_handoff_ns(Int32(LK_INGRESS_LOCK_FREE.rawValue)) }),
        ("ingress_chunked_handoff", nil, { lkb_ingress_handoff_ns(Int32(LK_INGRESS_CHUNKED.rawValue)) }),
        ("mpsc_push_pop", nil, { lkb_mpsc_push_pop_ns() }),
        ("chunkq_push_pop", nil, { lkb_chunkq_push_pop_ns(1) }),
        ("chunkq_push_pop_batch64", nil, { lkb_chunkq_push_pop_ns(64) }),
        ("ring_push_pop", nil, { lkb_ring_push_pop_ns() }),
        ("ingress_lock_free_push_pop", nil, { lkb_ingress_push_pop_ns(1) }),
        ("ingress_chunked_push_pop", nil, { lkb_ingress_push_pop_ns(0) }),
        ("wake_syscall_epoll", .epoll, { lkb_wake_syscall_ns(0) }),
        ("wake_syscall_io_uring", .ioUring, { lkb_wake_syscall_ns(1) }),
        ("wake_round_trip_epoll", .epoll, { lkb_wake_round_trip_ns(0) }),
        ("wake_round_trip_io_uring", .ioUring, { lkb_wake_round_trip_ns(1) }),
    ]

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        switch plan.suite {
        case .quick, .full, .expanded, .micro: break
        case .scaling: return []
        }
        return Self.operations.filter { $0.backend.map(plan.backends.contains) ?? true }.map { op in
            let measure = op.measure
            // A negative value is the C function saying it measured nothing (e.g. a wake count that did
            // not add up); that run writes no line.
            let core = Contestant(name: "CLoopCore", family: .loopkit) {
                let value = measure()
                return value >= 0 ? RunResult(nsPerOp: value) : nil
            }
            return WorkloadCase(params: [("op", op.name)], contestants: [core])
        }
    }
}
