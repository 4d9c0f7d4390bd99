// loopkit-soak: `make soak`. Producers submit SOAK_TASKS tasks across many event loops, each shut down while
// the producers are still submitting; checks exactly-once, per-lane order and flat RSS. See Options.usage.
import Glibc
import LoopKit
import LoopKitConcurrencyHelpers

let options: Options
do {
    options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    if let message = error.message { say("loopkit-soak: \(message)\n") }
    say(Options.usage)
    exit(error.message == nil ? 0 : 2)
}

let mallocPinned = options.pinMalloc && Memory.pinMallocThresholds()
let started = monotonicSeconds()
let quotas = (0..<options.producers).map { options.tasks / options.producers + ($0 < options.tasks % options.producers ? 1 : 0) }
soakChecker = LoopChecker(quotas: quotas)
let world = World()
let slots = quotas.map { _ in ProducerSlot() }

let ioUring = options.backend == .alternate ? PollBackend.ioUring.isAvailable : false
say("loopkit-soak: \(options.tasks) tasks, \(options.producers) producers on \(Options.cores) cores, "
    + "~\(options.epochTasks) tasks per loop, window \(options.window), backend \(options.backend.rawValue)"
    + (options.backend == .alternate && !ioUring ? " (io_uring unavailable here: epoll only)" : "")
    + (getenv("LOOPKIT_BACKEND").map { ", LOOPKIT_BACKEND=\(String(cString: $0)) overrides it" } ?? "")
    + ", malloc \(mallocPinned ? "pinned" : "default"), deadline \(options.timeoutSeconds) s"
    + (options.selfTest != .none ? ", SELF-TEST \(options.selfTest.rawValue)" : "")
    + (options.faults ? ", FAULTS on (\(FaultTable.kinds.count) kinds at \(FaultTable.points.count) points, one armed every ~1 ms)" : ""))

// After the io_uring probe: the faults are armed from here to the last loop's shutdown.
let faults = options.faults ? FaultInjector(world: world) : nil
let faultThread = faults?.start()
Watchdog(options: options, world: world, slots: slots, quotas: quotas, started: started, faults: faults).start()
let producers = (0..<options.producers).map { p in
    Producer(index: p, quota: quotas[p], options: options, world: world, slot: slots[p], ran: soakChecker.ran[p])
}
let producerThreads = ThreadGroup(producers.count, name: "soak-prod") { p in producers[p].run() }
let (records, loops, creationsRefused) = Controller(options: options, world: world, slots: slots, faults: faults)
    .run(ioUringAvailable: ioUring)
producerThreads.join()
faults?.disarm() // done before the last shutdown already; nothing may stay armed for the verdict
faultThread?.join() // it ends once the soak has finished
let seconds = monotonicSeconds() - started
soakChecker.loop = nil
// The last loop's thread lets go of its loop just after the loop terminated: give it a moment.
var loopsNotFreed = loops.filter { $0.loop != nil }.count
for _ in 0..<200 where loopsNotFreed > 0 {
    usleep(10_000)
    loopsNotFreed = loops.filter { $0.loop != nil }.count
}

let alive = loops.enumerated().filter { $0.element.loop != nil }.map { "\($0.offset + 1)" }
if !alive.isEmpty { say("loops not freed: epoch(s) \(alive.joined(separator: ","))") }
let report = Report(options: options, quotas: quotas, slots: slots, records: records, mallocPinned: mallocPinned,
                    loopsNotFreed: loopsNotFreed, seconds: seconds, faults: faults?.snapshot(),
                    loopCreationsRefused: creationsRefused).render()
say(report.text)
exit(report.passed ? 0 : 1)
