/// The verdict and the result block: `key=value` lines (machine-readable), the failures as `reason=` lines,
/// then one human sentence. PASS only when every task ran exactly once, in order, and RSS stayed flat.
/// Under SOAK_FAULTS=on also: every refusal was `.terminated` or `.outOfMemory`, no more `.outOfMemory` than
/// allocation faults were injected, every wake failure EIO/EAGAIN and backed by injected eventfd faults, and
/// nothing else reached a loop's error handler.
struct Report {
    let options: Options
    let quotas: [Int]
    let slots: [ProducerSlot]
    let records: [EpochRecord]
    let mallocPinned: Bool
    let loopsNotFreed: Int
    let seconds: Double
    /// The fault thread's counts (SOAK_FAULTS=on), taken after it disarmed everything.
    let faults: FaultInjector.Snapshot?
    /// Loop creations refused with `.outOfMemory` and retried (SOAK_FAULTS=on).
    let loopCreationsRefused: Int

    func render() -> (text: String, passed: Bool) {
        let c = soakChecker!
        let losses = (0..<quotas.count).reduce(0) { $0 + c.missing(producer: $1) }
        let acceptedTotal = slots.reduce(0) { $0 + $1.accepted.load(ordering: .relaxed) }
        let perProducerWrong = (0..<quotas.count).filter { c.ranCount(producer: $0) != quotas[$0] }
        let total = { (f: (ProducerSlot) -> Int) in slots.reduce(0) { $0 + f($1) } }
        let rejected = total { $0.rejected.load(ordering: .relaxed) }
        let oomByChannel = RefusalChannel.allCases.map { ch in total { $0.refusedOutOfMemory[ch.rawValue].value.load(ordering: .relaxed) } }
        let refusedOutOfMemory = oomByChannel.reduce(0, +)
        let refusedOther = total { $0.refusedOther.load(ordering: .relaxed) }
        let refusedUntyped = total { $0.refusedUntyped.load(ordering: .relaxed) }
        let submitErrors = refusedOutOfMemory + refusedOther + refusedUntyped
        let errors = soakLoopErrors
        let wakeEIO = errors.wakeEIO.load(ordering: .relaxed), wakeEAGAIN = errors.wakeEAGAIN.load(ordering: .relaxed)
        let wakeOther = errors.wakeOther.load(ordering: .relaxed), wakeFailures = errors.wakeFailures
        let loopErrorsOther = errors.other.load(ordering: .relaxed)
        let allOutOfMemory = refusedOutOfMemory + c.childrenRefusedOutOfMemory + loopCreationsRefused
        let acceptedAfterRefusal = total { $0.acceptedAfterRefusal.load(ordering: .relaxed) }
        let unrun = total { $0.unrunAtTermination.load(ordering: .relaxed) }
        let unbalancedEpochs = records.filter { $0.childrenUnbalanced != 0 }.count
        let memory = Memory.verdict(samples: records.map(\.residentBytes))
        let maxRSS = Memory.maxResidentBytes()
        let shutdownMs = records.map { $0.shutdownSeconds * 1000 }.sorted()

        var reasons: [String] = []
        if c.ranTotal != options.tasks { reasons.append("\(c.ranTotal) distinct tasks ran, not \(options.tasks)") }
        if losses > 0 { reasons.append("\(losses) task(s) never ran") }
        if c.duplicates > 0 { reasons.append("\(c.duplicates) task run(s) were duplicates") }
        if c.orderViolations > 0 { reasons.append("\(c.orderViolations) per-producer order violation(s)") }
        if c.childOrderViolations > 0 { reasons.append("\(c.childOrderViolations) order violation(s) among the loop thread's own tasks") }
        if !perProducerWrong.isEmpty { reasons.append("per-producer run counts differ from the quotas for producer(s) \(perProducerWrong.prefix(8).map(String.init).joined(separator: ","))") }
        if acceptedTotal != options.tasks { reasons.append("\(acceptedTotal) tasks accepted, not \(options.tasks)") }
        if c.childrenSpawned != c.childrenRan { reasons.append("\(c.childrenSpawned) child tasks accepted on the loop thread, \(c.childrenRan) ran") }
        if unbalancedEpochs > 0 { reasons.append("child tasks unbalanced at the end of \(unbalancedEpochs) epoch(s)") }
        if c.childrenRejected > 0 { reasons.append("the loop thread's own submits were refused \(c.childrenRejected) time(s) while it was running tasks") }
        if c.offLoopThread > 0 { reasons.append("\(c.offLoopThread) task(s) ran off the loop thread") }
        if c.outOfRange > 0 { reasons.append("\(c.outOfRange) unknown task(s) ran") }
        if refusedOther > 0 { reasons.append("\(refusedOther) submit(s) refused with an EventLoopError other than .terminated and .outOfMemory") }
        if refusedUntyped > 0 { reasons.append("\(refusedUntyped) submit(s) threw an error that is not an EventLoopError") }
        if loopErrorsOther > 0 { reasons.append("the loops' error handlers got \(loopErrorsOther) error(s) other than a wake failure (a task threw or a poll failed)") }
        if wakeOther > 0 { reasons.append("\(wakeOther) wake failure(s) with an errno other than EIO/EAGAIN") }
        if let f = faults {
            if allOutOfMemory > f.allocationInjected {
                reasons.append("\(allOutOfMemory) .outOfMemory refusal(s) but only \(f.allocationInjected) allocation fault(s) injected")
            }
            let writes = f.injected[FaultTable.eventfdWritePoint] ?? 0
            if wakeFailures * Int(FaultTable.wakeWriteAttempts) > writes {
                reasons.append("\(wakeFailures) wake failure(s) but only \(writes) eventfd write fault(s) injected (\(FaultTable.wakeWriteAttempts) per failure)")
            }
        } else {
            if allOutOfMemory > 0 { reasons.append("\(allOutOfMemory) .outOfMemory refusal(s) without fault injection") }
            if wakeEIO + wakeEAGAIN > 0 { reasons.append("\(wakeEIO + wakeEAGAIN) wake failure(s) without fault injection") }
        }
        if acceptedAfterRefusal > 0 { reasons.append("a loop accepted \(acceptedAfterRefusal) submit(s) after refusing one") }
        if unrun != 0 { reasons.append("\(unrun) accepted task(s) had not run when their loop terminated (found at epoch switches)") }
        if loopsNotFreed > 0 { reasons.append("\(loopsNotFreed) of \(records.count) loops were never freed") }
        if memory.stable == false {
            reasons.append("RSS grew: last-quarter max \(Memory.mib(memory.lastQuarterMax)) MiB > limit \(Memory.mib(memory.limit)) MiB")
        }
        let passed = reasons.isEmpty

        func tally(_ names: [String]) -> String {
            var order: [String] = [], counts: [String: Int] = [:]
            for n in names { if counts[n] == nil { order.append(n) }; counts[n, default: 0] += 1 }
            return order.map { "\($0):\(counts[$0]!)" }.joined(separator: ",")
        }
        var lines = ["", "==== loopkit-soak result ===="]
        func kv(_ key: String, _ value: Any) { lines.append("\(key)=\(value)") }
        kv("tasks", options.tasks)
        kv("tasks_ran", c.ranTotal)
        kv("producers", options.producers)
        kv("cores", Options.cores)
        kv("epochs", records.count)
        kv("epoch_tasks", options.epochTasks)
        kv("window", options.window)
        kv("duration_s", String(format1: seconds))
        kv("tasks_per_s", Int(Double(c.ranTotal) / Swift.max(seconds, 1e-9)))
        kv("rejected_and_retried", rejected)
        kv("accepted_after_shutdown_began", records.reduce(0) { $0 + $1.acceptedAfterShutdownBegan })
        kv("epochs_with_rejections", records.filter { $0.rejected > 0 }.count)
        kv("overrun_reached", records.reduce(0) { $0 + $1.overrunReached })
        kv("lane_external", c.laneRan[0])
        kv("lane_internal", c.laneRan[1])
        kv("lane_microtask", c.laneRan[2])
        kv("children_spawned", c.childrenSpawned)
        kv("children_ran", c.childrenRan)
        kv("children_refused", c.childrenRejected)
        kv("losses", losses)
        kv("duplicates", c.duplicates)
        kv("order_violations", c.orderViolations + c.childOrderViolations)
        kv("off_loop_thread", c.offLoopThread)
        kv("submit_errors", submitErrors)
        kv("refused_out_of_memory", refusedOutOfMemory)
        for ch in RefusalChannel.allCases { kv("refused_out_of_memory_\(ch.name)", oomByChannel[ch.rawValue]) }
        kv("refused_other", refusedOther)
        kv("refused_untyped", refusedUntyped)
        kv("children_refused_out_of_memory", c.childrenRefusedOutOfMemory)
        kv("loop_creations_refused_out_of_memory", loopCreationsRefused)
        kv("wake_failures", wakeFailures)
        kv("wake_failures_eio", wakeEIO)
        kv("wake_failures_eagain", wakeEAGAIN)
        kv("wake_failures_other", wakeOther)
        kv("loop_errors_other", loopErrorsOther)
        kv("accepted_after_refusal", acceptedAfterRefusal)
        kv("shutdown_ms_median", String(format1: shutdownMs.isEmpty ? 0 : shutdownMs[shutdownMs.count / 2]))
        kv("shutdown_ms_max", String(format1: shutdownMs.last ?? 0))
        kv("backends", tally(records.map(\.backendUsed)))
        kv("ingress", tally(records.map(\.plan.ingressName)))
        kv("idle", tally(records.map(\.plan.idleName)))
        kv("shutdown_modes", tally(records.map(\.plan.shutdown.rawValue)))
        kv("rss_first_mib", Memory.mib(records.first?.residentBytes ?? 0))
        kv("rss_last_mib", Memory.mib(records.last?.residentBytes ?? 0))
        kv("rss_first_quarter_max_mib", Memory.mib(memory.firstQuarterMax))
        kv("rss_last_quarter_max_mib", Memory.mib(memory.lastQuarterMax))
        kv("rss_rule", "last-quarter max <= first-quarter max x \(Memory.slackFactor) + \(Memory.slackBytes / 1_048_576) MiB (needs >= \(Memory.minimumEpochs) epochs)")
        kv("malloc", mallocPinned ? "pinned-thresholds" : "glibc-default")
        kv("rss_stable", memory.stable.map { $0 ? "yes" : "no" } ?? "skipped")
        kv("rss_max_sampled_mib", Memory.mib(records.map(\.residentBytes).max() ?? 0))
        kv("maxrss_mib", Memory.mib(maxRSS))
        kv("loops_not_freed", loopsNotFreed)
        kv("selftest", options.selfTest.rawValue)
        kv("faults", faults == nil ? "off" : "on")
        if let f = faults {
            kv("faults_injected", f.total)
            kv("fault_points_hit", "\(f.pointsHit) of \(FaultTable.points.count)")
            kv("wake_nudges", f.nudges)
            for p in FaultTable.points {
                kv("fault_\(p.name.lowercased())_injected", f.injected[p.point] ?? 0)
                kv("fault_\(p.name.lowercased())_armed", f.armed(p.point))
            }
        }
        kv("result", passed ? "PASS" : "FAIL")
        for r in reasons { kv("reason", r) }
        for p in c.problems { lines.append("problem: \(p)") }
        for n in unexpectedRefusals.all + errors.notes.all { lines.append("problem: \(n)") }
        if let f = faults {
            lines.append("")
            lines.append("faults (one of \(FaultTable.kinds.count) kinds armed every ~\(FaultInjector.intervalMicroseconds / 1000) ms, random skip, count 1-3; EIO \(FaultTable.wakeWriteAttempts)):")
            func pad(_ t: String, _ n: Int) -> String { t.count >= n ? t : t + String(repeating: " ", count: n - t.count) }
            for p in FaultTable.points {
                let counted: String
                switch p.name {
                case "EVENTFD_WRITE": counted = "wake failures \(wakeFailures) (EIO \(wakeEIO), EAGAIN \(wakeEAGAIN)), nudged \(f.nudges)"
                case "SEGMENT_ALLOC", "PRODUCER_ALLOC":
                    counted = "refused .outOfMemory: external/per-producer \(oomByChannel[RefusalChannel.externalPerProducer.rawValue]) (both points)"
                case "NODE_ALLOC":
                    counted = "refused .outOfMemory: external/lock-free \(oomByChannel[RefusalChannel.externalLockFree.rawValue]), internal \(oomByChannel[RefusalChannel.internal.rawValue])"
                case "CHUNK_ALLOC":
                    counted = "refused .outOfMemory: external/chunked \(oomByChannel[RefusalChannel.externalChunked.rawValue])"
                case "RING_OVERFLOW_ALLOC":
                    counted = "refused .outOfMemory: microtask \(oomByChannel[RefusalChannel.microtask.rawValue]), loop-thread children \(c.childrenRefusedOutOfMemory)"
                default: counted = "retried (nothing to count)"
                }
                lines.append("  \(pad(p.name, 20)) injected \(pad("\(f.injected[p.point] ?? 0)", 7)) armed \(pad(f.armed(p.point), 26)) \(counted)")
            }
            lines.append("  loop creations refused .outOfMemory (any allocation point) and retried: \(loopCreationsRefused)")
        }
        if options.selfTest != .none {
            lines.append("(self-test '\(options.selfTest.rawValue)': a fault was injected on purpose; this run must FAIL)")
        }
        let summary = "\(c.ranTotal) of \(options.tasks) tasks from \(options.producers) producers, \(records.count) loops,"
            + " \(String(format1: seconds)) s (\(Int(Double(c.ranTotal) / Swift.max(seconds, 1e-9))) tasks/s), \(rejected) refused at shutdown and retried;"
            + " RSS \(Memory.mib(records.first?.residentBytes ?? 0)) -> \(Memory.mib(records.last?.residentBytes ?? 0)) MiB, peak \(Memory.mib(maxRSS)) MiB"
        let faultSummary = faults.map { f in
            " faults ON: \(f.total) injected at \(f.pointsHit) points, \(allOutOfMemory) refused .outOfMemory and retried, \(wakeFailures) wake failures;"
        } ?? " faults off;"
        lines.append(passed ? "PASS: \(summary);\(faultSummary) every task ran exactly once, in order."
                            : "FAIL: \(summary);\(faultSummary) \(reasons.joined(separator: "; ")).")
        return (lines.joined(separator: "\n"), passed)
    }
}
