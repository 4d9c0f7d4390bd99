import Synchronization

/// Round trips to a loop that is asleep (an idle gap longer than any spin before each submit) or kept
/// running (a chain of tasks resubmitting themselves). Reports wake syscalls per task.
struct Wakeup: Workload {
    let info = WorkloadInfo(
        name: "Wakeup",
        about: "Round trips to a loop that is asleep (an idle gap before each submit) or kept running by a task chain.",
        metric: "mean round trip ns", fields: Field.latency + [.wakeSyscallsPerOp], latency: true)

    func cases(_ plan: PlanContext) -> [WorkloadCase] {
        let sleepingRounds: Int
        switch plan.suite {
        case .quick: sleepingRounds = 300
        case .full, .expanded, .micro: sleepingRounds = 1_000
        case .scaling: return []
        }
        return [
            plan.everyEntrant([("loop", "sleeping"), ("rounds", "\(sleepingRounds)")]) {
                roundTrips($0, rounds: sleepingRounds, gapNanoseconds: 1_000_000)
            },
            plan.everyEntrant([("loop", "running"), ("rounds", "5000")]) { Self.running($0, rounds: 5_000) },
        ]
    }

    static func running(_ entrant: any Entrant, rounds: Int) -> RunResult {
        let stop = Atomic<Bool>(false)
        let stopped = Atomic<Bool>(false)
        final class Keeper: @unchecked Sendable {
            var step: (@Sendable () -> Void)?
        }
        let keeper = Keeper()
        keeper.step = { [unowned entrant] in
            if stop.load(ordering: .relaxed) { stopped.store(true, ordering: .releasing); return }
            entrant.submit(keeper.step!)
        }
        entrant.submit(keeper.step!)
        let r = roundTrips(entrant, rounds: rounds, gapNanoseconds: 0)
        stop.store(true, ordering: .relaxed)
        spin { stopped.load(ordering: .acquiring) }
        keeper.step = nil
        return r
    }
}
