import Glibc
import LoopKit
import LoopKitConcurrencyHelpers

/// Ends the soak if it runs past its deadline, or if no task has run for `stallSeconds` (a hang): prints
/// what every thread was doing and a FAIL result, then exits 3. The soak always ends by itself.
struct Watchdog: Sendable {
    let options: Options
    let world: World
    let slots: [ProducerSlot]
    let quotas: [Int]
    let started: Double
    let faults: FaultInjector?

    func start() {
        let copy = self
        do {
            try startDetachedThread(name: "soak-watchdog") { copy.watch() } // exits the process or idles
        } catch {
            fatalError("loopkit-soak: \(error)") // the soak does not run unwatched
        }
    }

    private func progress() -> Int {
        soakChecker.ran.reduce(0) { $0 + $1.value.load(ordering: .relaxed) } &+ world.epoch.load(ordering: .relaxed)
    }

    private func watch() {
        var lastProgress = progress(), lastChange = monotonicSeconds()
        while !world.finished.load(ordering: .acquiring) {
            sleep(1)
            let now = monotonicSeconds()
            let p = progress()
            if p != lastProgress { lastProgress = p; lastChange = now }
            if now - started > Double(options.timeoutSeconds) {
                fail("the soak ran past its deadline of \(options.timeoutSeconds) s (SOAK_TIMEOUT_S)")
            }
            let phase = World.Phase(rawValue: world.phase.load(ordering: .relaxed)) ?? .starting
            if phase != .verifying && now - lastChange > Double(options.stallSeconds) {
                fail("no task ran for \(options.stallSeconds) s (SOAK_STALL_S): a hang")
            }
        }
    }

    private func fail(_ reason: String) -> Never {
        let elapsed = monotonicSeconds() - started
        let phase = World.Phase(rawValue: world.phase.load(ordering: .relaxed)) ?? .starting
        let current = world.currentLoop
        var lines = ["", "WATCHDOG after \(String(format1: elapsed)) s: \(reason)",
                     "controller: \(phase.name), epoch \(current.epoch) (shutdown begun for epoch \(world.closing.load(ordering: .relaxed)))"]
        if let loop = current.loop {
            lines.append("loop of epoch \(current.epoch): state \(loop.state), backend \(loop.backend.map { "\($0)" } ?? "none"), ingress \(loop.configuration.ingress)")
        }
        for (p, slot) in slots.enumerated() {
            let state = ProducerSlot.State(rawValue: slot.state.load(ordering: .relaxed)) ?? .submitting
            lines.append("producer \(p): \(state.name), epoch \(slot.epoch.load(ordering: .relaxed)), accepted \(slot.accepted.load(ordering: .relaxed))/\(quotas[p]), ran \(soakChecker.ran[p].value.load(ordering: .relaxed)), rejected \(slot.rejected.load(ordering: .relaxed))")
        }
        if let f = faults?.snapshot() {
            lines.append("faults on: \(f.total) injected (\(f.perPoint)); wake failures \(soakLoopErrors.wakeFailures), nudges \(f.nudges)")
        }
        lines += ["", "==== loopkit-soak result ====", "result=FAIL", "reason=watchdog: \(reason)",
                  "duration_s=\(String(format1: elapsed))", "FAIL: \(reason)"]
        say(lines.joined(separator: "\n"))
        _exit(3)
    }
}
