import CLoopCore.FaultInjection
import Glibc
import LoopKit
import LoopKitConcurrencyHelpers
import Synchronization

/// One kind of fault the fault thread arms (`SOAK_FAULTS=on`): a point of lk_fault.h, the errno its calls
/// then fail with (allocation points fail with NULL whatever the errno), how often it is picked relative to
/// the others, and the ranges its `count` and `skip` are drawn from.
struct FaultKind: Sendable {
    let point: Int       // an lk_fault_point
    let error: Int32
    let errorName: String
    let weight: Int
    let counts: ClosedRange<UInt32>
    let skips: ClosedRange<UInt32>
}

/// The points the soak arms and what each one's faults become. LK_FAULT_MEMBARRIER is never armed: a
/// persistent membarrier failure aborts the process by design (docs/reliability.md). LK_FAULT_EPOLL_CTL and
/// the io_uring submission points are left alone: the soak registers no fds.
enum FaultTable {
    /// A wakeup is reported failed after this many failed eventfd writes (LK_WAKE_WRITE_ATTEMPTS, wake.c); an
    /// EIO arming of fewer calls is absorbed by the retries and never reaches the error handler.
    static let wakeWriteAttempts: UInt32 = 4

    struct Point: Sendable {
        let point: Int
        let name: String
        /// What an injected fault at this point turns into, for the report.
        let outcome: String
    }

    static func raw(_ p: lk_fault_point) -> Int { Int(p.rawValue) }
    static let eventfdWritePoint = raw(LK_FAULT_EVENTFD_WRITE)

    static let points: [Point] = [
        Point(point: raw(LK_FAULT_EVENTFD_WRITE), name: "EVENTFD_WRITE",
              outcome: "EINTR, EAGAIN retried; 4 failed writes: a wake failure (the task stays queued)"),
        Point(point: raw(LK_FAULT_EVENTFD_READ), name: "EVENTFD_READ", outcome: "EINTR retried"),
        Point(point: raw(LK_FAULT_EPOLL_WAIT), name: "EPOLL_WAIT", outcome: "EINTR retried"),
        Point(point: raw(LK_FAULT_URING_WAIT), name: "URING_WAIT", outcome: "EINTR retried"),
        Point(point: raw(LK_FAULT_SEGMENT_ALLOC), name: "SEGMENT_ALLOC", outcome: ".outOfMemory: external/per-producer"),
        Point(point: raw(LK_FAULT_PRODUCER_ALLOC), name: "PRODUCER_ALLOC", outcome: ".outOfMemory: external/per-producer"),
        Point(point: raw(LK_FAULT_NODE_ALLOC), name: "NODE_ALLOC", outcome: ".outOfMemory: external/lock-free, internal"),
        Point(point: raw(LK_FAULT_CHUNK_ALLOC), name: "CHUNK_ALLOC", outcome: ".outOfMemory: external/chunked"),
        Point(point: raw(LK_FAULT_RING_OVERFLOW_ALLOC), name: "RING_OVERFLOW_ALLOC", outcome: ".outOfMemory: microtask, loop-thread children"),
    ]

    /// The allocation points: each refusal with `.outOfMemory` needs at least one fault injected at one of them.
    static let allocationPoints: [Int] = [
        raw(LK_FAULT_SEGMENT_ALLOC), raw(LK_FAULT_PRODUCER_ALLOC), raw(LK_FAULT_NODE_ALLOC),
        raw(LK_FAULT_CHUNK_ALLOC), raw(LK_FAULT_RING_OVERFLOW_ALLOC),
    ]

    static let kinds: [FaultKind] = {
        let syscallSkips: ClosedRange<UInt32> = 0...15, allocSkips: ClosedRange<UInt32> = 0...3
        var k = [
            FaultKind(point: raw(LK_FAULT_EVENTFD_WRITE), error: EINTR, errorName: "EINTR", weight: 4, counts: 1...3, skips: 0...7),
            FaultKind(point: raw(LK_FAULT_EVENTFD_WRITE), error: EAGAIN, errorName: "EAGAIN", weight: 4, counts: 1...3, skips: 0...7),
            // Occasionally, and exactly as many failures as make one reported wake failure.
            FaultKind(point: raw(LK_FAULT_EVENTFD_WRITE), error: EIO, errorName: "EIO", weight: 1,
                      counts: wakeWriteAttempts...wakeWriteAttempts, skips: 0...7),
            FaultKind(point: raw(LK_FAULT_EVENTFD_READ), error: EINTR, errorName: "EINTR", weight: 2, counts: 1...3, skips: 0...3),
            FaultKind(point: raw(LK_FAULT_EPOLL_WAIT), error: EINTR, errorName: "EINTR", weight: 4, counts: 1...3, skips: syscallSkips),
            FaultKind(point: raw(LK_FAULT_URING_WAIT), error: EINTR, errorName: "EINTR", weight: 4, counts: 1...3, skips: syscallSkips),
        ]
        for p in allocationPoints {
            k.append(FaultKind(point: p, error: ENOMEM, errorName: "ENOMEM", weight: 4, counts: 1...3, skips: allocSkips))
        }
        return k
    }()

    static let totalWeight = kinds.reduce(0) { $0 + $1.weight }

    static func name(of point: Int) -> String { points.first { $0.point == point }?.name ?? "point \(point)" }

    @inline(__always) static func cPoint(_ point: Int) -> lk_fault_point { lk_fault_point(rawValue: numericCast(point)) }

    static func injected(_ point: Int) -> Int { Int(lk_fault_injected(cPoint(point))) }
}

/// The fault thread (`SOAK_FAULTS=on`): every ~1 ms it arms one fault kind, drawn at random by weight, with a
/// random skip and a small count (an arming replaces the point's earlier one, consumed or not), so faults
/// stay rare next to the millions of submits a second. It also gives a loop whose wakeup failed (reported to
/// the error handler, counted in `soakLoopErrors`) the next wakeup the library documents it waits for: one
/// empty task submitted to the current loop. It runs until the soak has finished; `disarm()` stops the arming.
final class FaultInjector: Sendable {
    let world: World
    private let injectedAtStart: [Int]
    /// Whether the thread still arms, and how often it armed each kind (indexed as FaultTable.kinds).
    private let state = Mutex<(arming: Bool, armings: [Int])>((true, Array(repeating: 0, count: FaultTable.kinds.count)))
    /// Empty tasks submitted after reported wake failures.
    let nudges = Atomic<Int>(0)

    init(world: World) {
        self.world = world
        injectedAtStart = (0..<Int(LK_FAULT_POINT_COUNT.rawValue)).map { FaultTable.injected($0) }
    }

    static let intervalMicroseconds: UInt32 = 1_000

    /// Starts the fault thread; it ends once the soak has finished.
    func start() -> ThreadGroup {
        ThreadGroup(1, name: "soak-faults") { _ in self.run() }
    }

    /// Stops the arming and disarms every point; idempotent. Called before the last loop's shutdown and
    /// before the verdict, so that nothing armed is left behind.
    func disarm() {
        state.withLock { s in
            s.arming = false
            lk_fault_disarm_all()
        }
    }

    private func run() {
        var rng = SystemRandomNumberGenerator()
        var wakeFailuresSeen = 0
        var nudgePending = false
        while !world.finished.load(ordering: .acquiring) {
            state.withLock { s in
                guard s.arming else { return }
                var pick = Int.random(in: 0..<FaultTable.totalWeight, using: &rng)
                var k = 0
                while pick >= FaultTable.kinds[k].weight { pick -= FaultTable.kinds[k].weight; k += 1 }
                let kind = FaultTable.kinds[k]
                lk_fault_arm(FaultTable.cPoint(kind.point), kind.error,
                             UInt32.random(in: kind.skips, using: &rng), UInt32.random(in: kind.counts, using: &rng))
                s.armings[k] += 1
            }
            // A failed wakeup leaves its task queued until the loop's next wakeup: bring one, from here (the
            // error handler must not submit). A loop that has terminated needs none.
            let failures = soakLoopErrors.wakeFailures
            if failures != wakeFailuresSeen { wakeFailuresSeen = failures; nudgePending = true }
            if nudgePending {
                if let loop = world.currentLoop.loop {
                    do {
                        try loop.submit {}
                        nudges.wrappingAdd(1, ordering: .relaxed)
                        nudgePending = false
                    } catch EventLoopError.terminated {
                        nudgePending = false
                    } catch {
                        // .outOfMemory (an armed allocation point): again next round.
                    }
                } else {
                    nudgePending = false
                }
            }
            usleep(Self.intervalMicroseconds)
        }
    }

    struct Snapshot {
        /// Faults injected per point since the soak began (lk_fault_injected), indexed by point.
        let injected: [Int: Int]
        /// Armings per kind (FaultTable.kinds order).
        let armings: [Int]
        let nudges: Int

        var total: Int { injected.values.reduce(0, +) }
        var allocationInjected: Int { FaultTable.allocationPoints.reduce(0) { $0 + (injected[$1] ?? 0) } }
        var pointsHit: Int { injected.values.filter { $0 > 0 }.count }

        /// "EINTR:12,EAGAIN:10,EIO:3" for `point`.
        func armed(_ point: Int) -> String {
            FaultTable.kinds.indices.filter { FaultTable.kinds[$0].point == point }
                .map { "\(FaultTable.kinds[$0].errorName):\(armings[$0])" }.joined(separator: ",")
        }

        /// "EVENTFD_WRITE 85, NODE_ALLOC 12, ..." (points with faults injected).
        var perPoint: String {
            FaultTable.points.filter { (injected[$0.point] ?? 0) > 0 }
                .map { "\($0.name) \(injected[$0.point]!)" }.joined(separator: ", ")
        }
    }

    func snapshot() -> Snapshot {
        var injected: [Int: Int] = [:]
        for p in FaultTable.points { injected[p.point] = FaultTable.injected(p.point) - injectedAtStart[p.point] }
        return Snapshot(injected: injected, armings: state.withLock { $0.armings }, nudges: nudges.load(ordering: .relaxed))
    }
}
