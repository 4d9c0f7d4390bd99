import Glibc

/// What the soak runs: every setting from the environment (`SOAK_*`), overridden by a command-line flag.
struct Options: Sendable {
    /// How `SOAK_BACKEND` picks each epoch's poll backend.
    enum BackendChoice: String, Sendable {
        case alternate  // epoll and io_uring by turns (epoll only where io_uring cannot be set up)
        case epoll
        case ioUring = "io_uring"
        case auto
    }

    var tasks = 100_000_000
    var producers = Swift.max(8, 2 * Options.cores)
    /// Unless set: `defaultEpochTasks(tasks:)`.
    var epochTasks = 2_000_000
    var window = 4_096
    var overrun = 10_000
    var backend = BackendChoice.alternate
    var timeoutSeconds = 1_800
    var stallSeconds = 120
    var selfTest = SelfTest.none
    /// Arm the core's fault-injection points at random for the whole run (Faults.swift).
    var faults = false
    /// Pin malloc's thresholds (see Memory.pinMallocThresholds); false: glibc's defaults.
    var pinMalloc = true

    static var cores: Int { Swift.max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    static let usage = """
        loopkit-soak: P producer threads submit N tasks across many event loops, each shut down while the
        producers are still submitting; a rejected task is retried on the next loop. Checks that every task
        runs exactly once, in per-thread order on each lane, and that RSS stays flat. Exit 0 only on PASS.

        Environment (a flag of the same name overrides it, e.g. --tasks=1000000):
          SOAK_TASKS        --tasks        tasks in all (default 100000000; 1e8 and 100_000_000 accepted)
          SOAK_PRODUCERS    --producers    producer threads (default max(8, 2 x cores))
          SOAK_EPOCH_TASKS  --epoch-tasks  tasks accepted per loop before its shutdown begins (default
                                           tasks/50 within 10000...2000000: ~50 loops, 2000000 for 1e8)
          SOAK_WINDOW       --window       most tasks a producer has accepted but not yet run (default 4096)
          SOAK_OVERRUN      --overrun      tasks a producer submits at full speed to a loop whose shutdown has
                                           begun; then one per ~50 us until refused, so that the drain ends
                                           and the gate closes under live submits (default 10000)
          SOAK_BACKEND      --backend      alternate | epoll | io_uring | auto (default alternate)
          SOAK_TIMEOUT_S    --timeout      whole-run deadline in seconds (default 1800), then exit 3
          SOAK_STALL_S      --stall        seconds without any task running before giving up (default 120)
          SOAK_MALLOC       --malloc       pinned | default: pin glibc malloc's trim/mmap thresholds at 128 KiB
                                           so RSS follows the live heap (default pinned; see Memory.swift)
          SOAK_SELFTEST     --selftest     drop | reorder | duplicate: inject that fault once, to prove the
                                           checks catch it (the run must then FAIL)
          SOAK_FAULTS       --faults       off | on: a fault thread arms the core's fault-injection points
                                           (lk_fault.h) at random for the whole run, one every ~1 ms with a
                                           small count: EINTR/EAGAIN/EIO on the wake eventfd, EINTR on the
                                           poll waits, allocation failures of the queues. Every refusal must
                                           be .outOfMemory (retried), every wake failure EIO/EAGAIN, and
                                           every accepted task must still run exactly once (default off)
        LOOPKIT_BACKEND, if set, overrides every loop's backend (the library reads it).
        """

    /// Reads the environment, then `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> Options {
        var o = Options()
        func env(_ name: String) -> String? {
            guard let v = getenv(name) else { return nil }
            let s = String(cString: v)
            return s.isEmpty ? nil : s
        }
        let keys: [(env: String, flag: String)] = [
            ("SOAK_TASKS", "tasks"), ("SOAK_PRODUCERS", "producers"), ("SOAK_EPOCH_TASKS", "epoch-tasks"),
            ("SOAK_WINDOW", "window"), ("SOAK_OVERRUN", "overrun"), ("SOAK_BACKEND", "backend"),
            ("SOAK_TIMEOUT_S", "timeout"), ("SOAK_STALL_S", "stall"), ("SOAK_SELFTEST", "selftest"),
            ("SOAK_MALLOC", "malloc"), ("SOAK_FAULTS", "faults"),
        ]
        var values: [String: String] = [:]
        for key in keys { if let v = env(key.env) { values[key.flag] = v } }
        for argument in arguments {
            if argument == "-h" || argument == "--help" { throw UsageError(message: nil) }
            guard argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") else {
                throw UsageError(message: "unexpected argument '\(argument)' (flags are --name=value)")
            }
            let name = String(argument[argument.index(argument.startIndex, offsetBy: 2)..<eq])
            guard keys.contains(where: { $0.flag == name }) else { throw UsageError(message: "unknown flag --\(name)") }
            values[name] = String(argument[argument.index(after: eq)...])
        }
        func number(_ flag: String, _ minimum: Int, _ maximum: Int = Int.max) throws(UsageError) -> Int? {
            guard let text = values[flag] else { return nil }
            guard let n = Options.integer(text), n >= minimum, n <= maximum else {
                throw UsageError(message: "--\(flag) (or its SOAK_ variable) must be an integer in \(minimum)...\(maximum), not '\(text)'")
            }
            return n
        }
        if let n = try number("tasks", 1, 1 << 40) { o.tasks = n }
        if let n = try number("producers", 1, Token.maxProducers) { o.producers = n }
        if let n = try number("epoch-tasks", 1) { o.epochTasks = n } else { o.epochTasks = defaultEpochTasks(tasks: o.tasks) }
        if let n = try number("window", 1) { o.window = n }
        if let n = try number("overrun", 1) { o.overrun = n }
        if let n = try number("timeout", 1) { o.timeoutSeconds = n }
        if let n = try number("stall", 1) { o.stallSeconds = n }
        if let text = values["backend"] {
            guard let b = BackendChoice(rawValue: text) else {
                throw UsageError(message: "--backend must be alternate, epoll, io_uring or auto, not '\(text)'")
            }
            o.backend = b
        }
        if let text = values["malloc"] {
            guard text == "pinned" || text == "default" else {
                throw UsageError(message: "--malloc must be pinned or default, not '\(text)'")
            }
            o.pinMalloc = text == "pinned"
        }
        if let text = values["faults"] {
            guard text == "on" || text == "off" else {
                throw UsageError(message: "--faults must be on or off, not '\(text)'")
            }
            o.faults = text == "on"
        }
        if let text = values["selftest"] {
            guard let s = SelfTest(rawValue: text) else {
                throw UsageError(message: "--selftest must be drop, reorder or duplicate, not '\(text)'")
            }
            o.selfTest = s
        }
        return o
    }

    /// About 50 loops whatever the task count (2000000 tasks per loop for the default 10^8), so that a short
    /// soak still rotates backend x ingress x idle strategy and has enough loops for the RSS verdict.
    static func defaultEpochTasks(tasks: Int) -> Int { Swift.min(2_000_000, Swift.max(10_000, tasks / 50)) }

    /// "100000000", "100_000_000" or "1e8".
    static func integer(_ text: String) -> Int? {
        let plain = text.filter { $0 != "_" }
        if let n = Int(plain) { return n }
        if plain.contains(where: { $0 == "e" || $0 == "E" }), let d = Double(plain), d >= 0, d <= 1e15,
           d == d.rounded() {
            return Int(d)
        }
        return nil
    }
}

struct UsageError: Error {
    let message: String?
}
