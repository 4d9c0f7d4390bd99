import ArgumentParser
import CBenchSupport
import Glibc
import LoopKit

/// loopbench: runs the tournament and writes raw results as JSON lines. It prints nothing else to stdout;
/// the report (summary.csv, report.md) is generated from raw.jsonl by bench/report.py.
@main
struct LoopBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loopbench",
        abstract: "LoopKit's benchmark tournament. Writes <out>/raw.jsonl.")

    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case quick, full, micro, expanded, scaling
    }

    @Option(help: "quick | full | micro | expanded | scaling")
    var suite: Suite = .quick

    @Option(help: "Runs per entrant and workload (default: 3 quick, 5 full/micro/scaling, 10 expanded).")
    var runs: Int?

    @Option(help: "Directory to write raw.jsonl into (created if missing).")
    var out: String

    @Option(help: "Only entrants whose name contains one of these comma-separated strings.")
    var entrants: String?

    @Option(help: "Only workloads with one of these comma-separated names (e.g. PingPong,Burst).")
    var workloads: String?

    @Option(help: "Producer counts for MultiProducer, comma-separated (default by suite).")
    var producers: String?

    @Flag(help: "Print one progress line per measurement to standard error.")
    var progress = false

    func run() throws {
        let runs = self.runs ?? [.quick: 3, .full: 5, .micro: 5, .expanded: 10, .scaling: 5][suite]!
        guard runs >= 1 else { throw BenchError.usage("--runs must be at least 1") }
        mkdir(out, 0o755)
        let writer = try JSONLWriter(path: out + "/raw.jsonl")
        let backends = availableBackends()
        writer.write(header(runs: runs, defaultEntrant: LoopKitEntrant.defaultName(backends: backends)))

        var kinds = LoopKitEntrant.kinds(backends: backends) + PeerKinds.all
        if let filter = entrants?.split(separator: ",").map(String.init) {
            kinds = kinds.filter { kind in filter.contains { kind.name.contains($0) } }
        }
        var plan = Plan(suite: suite, producers: producerCounts())
        if let names = workloads?.split(separator: ",").map(String.init) {
            plan.workloads = plan.workloads.filter { names.contains($0.name) }
            if !names.contains("BatchBudget") { plan.budgets = [] }
            if !names.contains("CoreMicro") { plan.coreMicro = false }
        }
        var index = 0
        let total = plan.workloads.count * runs * kinds.count + plan.budgets.count * runs
            + (plan.coreMicro ? CoreMicro.operations.count * runs : 0)

        for workload in plan.workloads {
            for run in 0..<runs {
                for kind in kinds {
                    index += 1
                    report(progress, "\(index)/\(total) \(workload.name) \(kind.name) run \(run)")
                    let entrant = try kind.make()
                    try entrant.start()
                    let result = workload.body(entrant)
                    entrant.shutdown()
                    writer.write(line(entrant: kind.name, family: kind.family.rawValue, workload: workload, run: run, result))
                }
            }
        }
        for budget in plan.budgets {
            let workload = Workloads.batchBudget(budget: budget, tasks: plan.batchBudgetTasks)
            for run in 0..<runs {
                index += 1
                report(progress, "\(index)/\(total) BatchBudget \(budget) run \(run)")
                let entrant = LoopKitEntrant.withBudget(budget)
                try entrant.start()
                let result = workload.body(entrant)
                entrant.shutdown()
                writer.write(line(entrant: entrant.name, family: "loopkit", workload: workload, run: run, result))
            }
        }
        if plan.coreMicro {
            // Interleaved (run-major): a floor and the costs compared with it are measured close in time, so
            // a machine that changes mode mid-suite shifts them together.
            for run in 0..<runs {
                for (operation, measure) in CoreMicro.operations {
                    index += 1
                    report(progress, "\(index)/\(total) CoreMicro \(operation) run \(run)")
                    let value = measure()
                    guard value >= 0 else { continue } // backend unavailable here
                    let workload = Workload(name: "CoreMicro", params: [("op", operation)]) { _ in RunResult(nsPerOp: 0) }
                    writer.write(line(entrant: "CLoopCore", family: "loopkit", workload: workload, run: run, RunResult(nsPerOp: value)))
                }
            }
        }
    }

    func producerCounts() -> [Int]? {
        producers?.split(separator: ",").compactMap { Int($0) }
    }

    func availableBackends() -> [PollBackend] {
        var result: [PollBackend] = [.epoll]
        var c = EventLoop.Configuration()
        c.backend = .ioUring
        if let loop = try? EventLoop(configuration: c), (try? loop.start()) != nil {
            loop.shutdown()
            result.append(.ioUring)
        }
        return result
    }

    func header(runs: Int, defaultEntrant: String) -> JSON {
        .object([
            ("kind", .string("header")),
            ("machine", .object([
                ("id", .string("\(Machine.hostname())/\(Machine.cores)x \(Machine.cpuModel())")),
                ("cpu", .string(Machine.cpuModel())),
                ("cores", .int(Machine.cores)),
                ("kernel", .string(Machine.kernel())),
                ("hostname", .string(Machine.hostname())),
            ])),
            ("toolchain", .string(Machine.environment("LOOPBENCH_TOOLCHAIN") ?? "unknown")),
            ("commit", .string(Machine.environment("LOOPBENCH_COMMIT") ?? "unknown")),
            ("date", .string(Machine.utcTimestamp())),
            ("command", .string(CommandLine.arguments.joined(separator: " "))),
            ("suite", .string(suite.rawValue)),
            ("runs", .int(runs)),
            ("default_entrant", .string(defaultEntrant)),
        ])
    }

    func line(entrant: String, family: String, workload: Workload, run: Int, _ r: RunResult) -> JSON {
        var fields: [(String, JSON)] = [
            ("kind", .string("run")),
            ("entrant", .string(entrant)),
            ("family", .string(family)),
            ("workload", .string(workload.name)),
            ("params", .object(workload.params.map { ($0.0, .string($0.1)) })),
            ("run", .int(run)),
            ("ns_per_op", .number(r.nsPerOp)),
        ]
        if let v = r.p50 { fields.append(("p50_ns", .number(v))) }
        if let v = r.p99 { fields.append(("p99_ns", .number(v))) }
        if let v = r.p999 { fields.append(("p999_ns", .number(v))) }
        if let v = r.allocsPerOp { fields.append(("allocs_per_op", .number(v))) }
        if let v = r.wakeSyscallsPerOp { fields.append(("wake_syscalls_per_op", .number(v))) }
        for (k, v) in r.extra { fields.append((k, .number(v))) }
        return .object(fields)
    }

    func report(_ enabled: Bool, _ message: String) {
        guard enabled else { return }
        var m = message + "\n"
        m.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

/// Which workloads a suite runs.
struct Plan {
    var workloads: [Workload] = []
    var budgets: [Int] = []
    var batchBudgetTasks = 300_000
    var coreMicro = false

    init(suite: LoopBench.Suite, producers: [Int]?) {
        switch suite {
        case .quick:
            workloads = [
                Workloads.pingPong(tasks: 500_000),
                Workloads.pingPongLatency(rounds: 10_000),
                Workloads.burst(burst: 1_000, bursts: 300),
            ] + (producers ?? [1, 2, 4, 10]).map { Workloads.multiProducer(producers: $0, perProducer: 400_000 / $0) }
                + [Workloads.wakeup(sleeping: true, rounds: 300), Workloads.wakeup(sleeping: false, rounds: 5_000)]
                + [Workloads.paced(rate: 1_000, tasks: 500), Workloads.paced(rate: 10_000, tasks: 3_000),
                   Workloads.paced(rate: 50_000, tasks: 10_000)]
            budgets = [64, 256, 1024, 4096]
            batchBudgetTasks = 200_000
            coreMicro = true
        case .full, .expanded:
            workloads = [
                Workloads.pingPong(tasks: 500_000),
                Workloads.pingPongLatency(rounds: 20_000),
                Workloads.burst(burst: 1_000, bursts: 300),
            ] + (producers ?? [1, 2, 4, 8, 10, 16, 32]).map { Workloads.multiProducer(producers: $0, perProducer: 400_000 / $0) }
                + [Workloads.wakeup(sleeping: true, rounds: 1_000), Workloads.wakeup(sleeping: false, rounds: 5_000)]
                + [Workloads.paced(rate: 1_000, tasks: 1_000), Workloads.paced(rate: 10_000, tasks: 10_000),
                   Workloads.paced(rate: 50_000, tasks: 25_000)]
            budgets = [64, 256, 1024, 4096]
            coreMicro = true
        case .micro:
            workloads = [Workloads.wakeup(sleeping: true, rounds: 1_000), Workloads.wakeup(sleeping: false, rounds: 5_000)]
            budgets = [64, 256, 1024, 4096]
            coreMicro = true
        case .scaling:
            workloads = (producers ?? [1, 2, 4, 8, 10, 16, 32]).map { Workloads.multiProducer(producers: $0, perProducer: 400_000 / $0) }
        }
    }
}
