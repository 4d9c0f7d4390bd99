import Glibc
import LoopKit

/// How one epoch's loop is configured and shut down. The settings rotate so that every combination of
/// backend × ingress × idle strategy occurs (every 12 epochs), and a third of the shutdowns are requested
/// from inside a task.
struct EpochPlan {
    enum ShutdownMode: String { case external = "shutdown()", inLoop = "shutdown-in-task" }

    let number: Int
    let backend: PollBackend
    let ingress: IngressKind
    let idle: IdleStrategy
    let shutdown: ShutdownMode

    init(number: Int, choice: Options.BackendChoice, ioUringAvailable: Bool) {
        let e = number - 1
        self.number = number
        switch choice {
        case .alternate: backend = ioUringAvailable && e % 2 == 1 ? .ioUring : .epoll
        case .epoll: backend = .epoll
        case .ioUring: backend = .ioUring
        case .auto: backend = .auto
        }
        ingress = IngressKind.allCases[(e / 2) % IngressKind.allCases.count]
        idle = (e / 6) % 2 == 0 ? .default : .park
        shutdown = e % 3 == 2 ? .inLoop : .external
    }

    var configuration: EventLoop.Configuration {
        var c = EventLoop.Configuration()
        c.backend = backend
        c.ingress = ingress
        c.idleStrategy = idle
        // Wake failures (injected under SOAK_FAULTS=on) are counted apart from everything else, which FAILs.
        c.errorHandler = { error in soakLoopErrors.record(error) }
        return c
    }

    var ingressName: String { ingress.description }
    var idleName: String { idle == .park ? "park" : "spin" }
}

/// The soak's running totals at one instant. An epoch's counts are the difference between the totals after
/// its shutdown and those before its loop was published.
struct EpochCounts {
    var accepted = 0, ran = 0, rejected = 0, acceptedAfterShutdownBegan = 0, overrunReached = 0
    /// Child tasks spawned minus child tasks run.
    var childrenUnbalanced = 0
    /// Submits refused with `.outOfMemory` and retried, and wakeups that failed (SOAK_FAULTS=on).
    var refusedOutOfMemory = 0, wakeFailures = 0

    private static var fields: [WritableKeyPath<EpochCounts, Int>] {
        [\.accepted, \.ran, \.rejected, \.acceptedAfterShutdownBegan, \.overrunReached, \.childrenUnbalanced,
         \.refusedOutOfMemory, \.wakeFailures]
    }

    private init() {}

    /// The totals now: from the producers' slots, the loop thread's ledger (read only while no loop runs
    /// tasks) and the loop error handler's log.
    init(slots: [ProducerSlot]) {
        accepted = Self.sum(slots) { $0.accepted.load(ordering: .relaxed) }
        rejected = Self.sum(slots) { $0.rejected.load(ordering: .relaxed) }
        acceptedAfterShutdownBegan = Self.sum(slots) { $0.acceptedAfterShutdownBegan.load(ordering: .relaxed) }
        overrunReached = Self.sum(slots) { $0.overrunReached.load(ordering: .relaxed) }
        refusedOutOfMemory = Self.sum(slots, \.refusedOutOfMemoryTotal)
        ran = soakChecker.ranTotal
        childrenUnbalanced = soakChecker.childrenSpawned - soakChecker.childrenRan
        wakeFailures = soakLoopErrors.wakeFailures
    }

    /// `field` summed over the producers' slots.
    static func sum(_ slots: [ProducerSlot], _ field: (ProducerSlot) -> Int) -> Int {
        slots.reduce(0) { $0 + field($1) }
    }

    static func - (after: Self, before: Self) -> Self {
        var difference = Self()
        for field in fields { difference[keyPath: field] = after[keyPath: field] - before[keyPath: field] }
        return difference
    }
}

/// What one epoch did. Its counts read as fields: `record.ran`.
@dynamicMemberLookup
struct EpochRecord {
    let plan: EpochPlan
    let backendUsed: String
    let counts: EpochCounts
    let shutdownSeconds: Double
    let residentBytes: Int

    subscript(dynamicMember field: KeyPath<EpochCounts, Int>) -> Int { counts[keyPath: field] }
}

/// A loop the soak no longer uses, watched without keeping it alive: at the end every one must be freed.
final class WeakLoop {
    weak var loop: EventLoop?
    init(_ loop: EventLoop) { self.loop = loop }
}

/// Runs the epochs on the calling thread: create a loop, start it, publish it, let the producers fill it
/// until `epochTasks` tasks were accepted, then shut it down while they are still submitting. Repeats until
/// every producer has had all its tasks accepted; the last loop's shutdown runs the last of them.
struct Controller {
    let options: Options
    let world: World
    let slots: [ProducerSlot]
    /// The fault thread (SOAK_FAULTS=on): disarmed before the last loop's shutdown.
    let faults: FaultInjector?

    func run(ioUringAvailable: Bool) -> (records: [EpochRecord], loops: [WeakLoop], creationsRefused: Int) {
        var creationsRefused = 0 // loops whose creation was refused with .outOfMemory (SOAK_FAULTS=on), then retried
        var records: [EpochRecord] = []
        var loops: [WeakLoop] = []
        var number = 0
        while true {
            number += 1
            let plan = EpochPlan(number: number, choice: options.backend, ioUringAvailable: ioUringAvailable)
            world.phase.store(World.Phase.creatingLoop.rawValue, ordering: .relaxed)
            let loop: EventLoop
            do {
                var created: EventLoop?
                while created == nil {
                    do {
                        created = try EventLoop(configuration: plan.configuration)
                    } catch EventLoopError.outOfMemory where faults != nil {
                        creationsRefused += 1 // an injected allocation failure: nothing was created
                        usleep(100)
                    }
                }
                loop = created!
                soakChecker.loop = loop // before the loop thread exists: it happens-before every task
                try loop.start()
            } catch {
                say("loopkit-soak: epoch \(number): cannot start a loop (\(plan.backend)): \(error)")
                exit(2)
            }
            loops.append(WeakLoop(loop))
            let backendUsed = loop.backend.map { "\($0)" } ?? "none"
            // Nothing runs on the new loop before it is published: the ledger is still ours to read.
            let before = EpochCounts(slots: slots)

            world.phase.store(World.Phase.running.rawValue, ordering: .relaxed)
            world.publish(loop, epoch: number)
            while EpochCounts.sum(slots, { $0.accepted.load(ordering: .relaxed) }) - before.accepted < options.epochTasks
                && world.producersDone.load(ordering: .acquiring) < slots.count {
                usleep(200)
            }

            // The last loop (every producer is done): nothing may stay armed through its shutdown or the verdict.
            if world.producersDone.load(ordering: .acquiring) == slots.count { faults?.disarm() }

            // The producers are still submitting: shut the loop down under them.
            world.phase.store(World.Phase.shuttingDown.rawValue, ordering: .relaxed)
            world.closing.store(number, ordering: .relaxed)
            let t0 = monotonicSeconds()
            switch plan.shutdown {
            case .external:
                loop.shutdown()
            case .inLoop:
                do { try loop.submitInternal { loop.shutdown() } } catch { loop.shutdown() }
                loop.waitUntilTerminated()
            }
            let shutdownSeconds = monotonicSeconds() - t0
            let allDone = world.producersDone.load(ordering: .acquiring) == slots.count

            let record = EpochRecord(plan: plan, backendUsed: backendUsed, counts: EpochCounts(slots: slots) - before,
                                     shutdownSeconds: shutdownSeconds, residentBytes: Memory.residentBytes())
            records.append(record)
            say("epoch \(number): \(backendUsed) \(plan.ingressName) \(plan.idleName) \(plan.shutdown.rawValue)"
                + " ran=\(record.ran) rejected=\(record.rejected) after_shutdown_began=\(record.acceptedAfterShutdownBegan)"
                + (record.overrunReached > 0 ? " overrun_reached=\(record.overrunReached)" : "")
                + (record.childrenUnbalanced != 0 ? " CHILDREN_UNBALANCED=\(record.childrenUnbalanced)" : "")
                + (record.refusedOutOfMemory > 0 ? " refused_oom=\(record.refusedOutOfMemory)" : "")
                + (record.wakeFailures > 0 ? " wake_failures=\(record.wakeFailures)" : "")
                + " shutdown_ms=\(String(format1: shutdownSeconds * 1000)) rss_mib=\(Memory.mib(record.residentBytes))")
            if allDone { break }
        }
        world.phase.store(World.Phase.verifying.rawValue, ordering: .relaxed)
        world.unpublish()
        world.finished.store(true, ordering: .releasing)
        return (records, loops, creationsRefused)
    }
}
