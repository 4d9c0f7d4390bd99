import CBenchSupport
import Dispatch
import LoopKit
import NIOCore
import NIOPosix

/// `await actor.method()` round trips: from a task on the global executor (a default actor's) to an actor on
/// the executor under test (`task-to-actor`), and from one actor to another on the same executor
/// (`actor-to-actor`). Entrants:
/// actors pinned to a LoopKit loop (default configuration), actors pinned to a SwiftNIO event loop, and
/// default actors on the global concurrent executor.
struct ActorHop: Workload {
    let info = WorkloadInfo(
        name: "ActorHop",
        about: "await actor.method() round trips, from a global-executor task to an actor and between two actors on one executor.",
        metric: "ns per hop", fields: [.allocsPerOp, .wakeSyscallsPerOp])

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let hops: Int
        switch plan.suite {
        case .quick: hops = 100_000
        case .full, .expanded: hops = 1_000_000
        case .micro, .scaling: return []
        }
        return HopMode.allCases.map { mode in
            WorkloadCase(params: [("mode", mode.rawValue), ("hops", "\(hops)")],
                         contestants: HopExecutor.all(plan).map { executor in
                             Contestant(name: executor.name, family: executor.family) {
                                 executor.measure(mode: mode, hops: hops)
                             }
                         })
        }
    }
}

enum HopMode: String, CaseIterable, Sendable {
    case taskToActor = "task-to-actor"
    case actorToActor = "actor-to-actor"
}

/// An executor the hops are measured on, made fresh for every run.
struct HopExecutor: Sendable {
    let name: String
    let family: EntrantKind.Family
    let measure: @Sendable (HopMode, Int) -> RunResult

    func measure(mode: HopMode, hops: Int) -> RunResult { measure(mode, hops) }

    static func all(_ plan: PlanContext) -> [HopExecutor] {
        [
            HopExecutor(name: "LoopKit", family: .loopkit) { mode, hops in
                let loop: LoopKit.EventLoop
                do { loop = try LoopKit.EventLoop(); try loop.start() } catch { fatalError("EventLoop: \(error)") }
                defer { loop.shutdown() }
                return hopRun(mode: mode, hops: hops, make: { PinnedActor(executor: loop) },
                              wakeSyscalls: { loop.wakeStatistics.syscalls })
            },
            HopExecutor(name: "SwiftNIO", family: .peer) { mode, hops in
                let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                defer { try? group.syncShutdownGracefully() }
                let executor = group.next().executor
                return hopRun(mode: mode, hops: hops, make: { PinnedActor(executor: executor) })
            },
            HopExecutor(name: "default actor", family: .peer) { mode, hops in
                hopRun(mode: mode, hops: hops, make: { DefaultActor() })
            },
        ]
    }
}

/// An actor that can be hopped to and can drive hops to another of its kind.
protocol HopTarget: Actor {
    func hop()
    func drive(_ other: Self, hops: Int) async
}

/// An actor pinned to the executor under test.
actor PinnedActor: HopTarget {
    private let executor: any SerialExecutor
    private var count = 0
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(executor: any SerialExecutor) { self.executor = executor }

    func hop() { count &+= 1 }

    func drive(_ other: PinnedActor, hops: Int) async {
        for _ in 0..<hops {
            await other.hop()
            count &+= 1 // back in this actor's isolation after each call, as the task-to-actor driver is
        }
    }
}

/// A default actor: the global concurrent executor runs it.
actor DefaultActor: HopTarget {
    private var count = 0

    func hop() { count &+= 1 }

    func drive(_ other: DefaultActor, hops: Int) async {
        for _ in 0..<hops {
            await other.hop()
            count &+= 1 // back in this actor's isolation after each call
        }
    }
}

/// The caller of the task-to-actor hops: a default actor, so its task runs on the global executor and every
/// call returns there. It touches its own state after each call: with nothing isolated after a call, the
/// optimizer drops the hop back and leaves the caller on the target's thread, and the loop would measure
/// calls, not round trips.
actor Driver {
    private var returns = 0

    func drive<A: HopTarget>(_ target: A, hops: Int) async {
        for _ in 0..<hops {
            await target.hop()
            returns &+= 1 // needs the driver's isolation: the hop back cannot be optimised away
        }
    }
}

/// One run: a warm-up, the timed hops (wake syscalls counted around them where the executor counts them),
/// then a shorter untimed pass that counts allocations per hop.
func hopRun<A: HopTarget>(mode: HopMode, hops: Int, make: @escaping @Sendable () -> A,
                          wakeSyscalls: @escaping @Sendable () -> UInt64? = { nil }) -> RunResult {
    awaitFromThread {
        let first = make()
        let second = make()
        let driver = Driver()
        @Sendable func pass(_ n: Int) async {
            switch mode {
            case .taskToActor: await driver.drive(first, hops: n)
            case .actorToActor: await first.drive(second, hops: n)
            }
        }
        await pass(Swift.min(hops, 10_000))
        let wakesBefore = wakeSyscalls()
        let start = now()
        await pass(hops)
        let elapsed = now() - start
        let wakesAfter = wakeSyscalls()
        let counted = Swift.min(hops, 10_000)
        lkb_alloc_enable(1)
        let before = lkb_alloc_count()
        await pass(counted)
        let after = lkb_alloc_count()
        lkb_alloc_enable(0)
        var result = RunResult(nsPerOp: Double(elapsed) / Double(hops))
        result.set(.allocsPerOp, Double(after - before) / Double(counted))
        if let wakesBefore, let wakesAfter { result.set(.wakeSyscallsPerOp, Double(wakesAfter - wakesBefore) / Double(hops)) }
        return result
    }
}

/// Runs `body` as a task on the global executor and blocks the calling (non-cooperative) thread until it
/// returns: the workloads' runner is synchronous. The wait is outside the timed region, which `body` holds.
func awaitFromThread<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// The result of a task, handed to the thread that waited for it (the semaphore orders the two).
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
