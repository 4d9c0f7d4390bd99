import ArgumentParser
import Glibc
import LoopKit

/// loopbench: runs the tournament and writes raw results as JSON lines. It prints nothing to stdout; progress
/// goes to stderr (`--progress`), and the report (summary.csv, report.md, plots) is generated from raw.jsonl
/// by bench/report.py and bench/plots.py.
@main
struct LoopBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loopbench",
        abstract: "LoopKit's benchmark tournament. Writes <out>/raw.jsonl.")

    @Option(help: "quick | full | micro | expanded | scaling")
    var suite: Suite = .quick

    @Option(help: "Runs per entrant and case (default: 3 quick, 5 full/micro/scaling, 10 expanded).")
    var runs: Int?

    @Option(help: "Directory to write raw.jsonl into (created if missing).")
    var out: String

    @Option(help: "Only entrants whose name contains one of these comma-separated strings.")
    var entrants: String?

    @Option(help: "Only workloads with one of these comma-separated names (e.g. PingPong,Burst).")
    var workloads: String?

    @Option(help: "Producer counts for MultiProducer, comma-separated (default by suite).")
    var producers: String?

    @Option(help: "Progress on stderr: auto (a live line on a terminal, plain lines otherwise) | live | lines | off.")
    var progress: Progress.Mode = .auto

    func run() throws {
        let runs = self.runs ?? suite.defaultRuns
        guard runs >= 1 else { throw BenchError.usage("--runs must be at least 1") }
        let backends = availableBackends()
        let plan = Plan(
            context: PlanContext(suite: suite, producers: producers?.split(separator: ",").compactMap { Int($0) },
                                 entrants: LoopKitEntrant.kinds(backends: backends) + PeerKinds.all, backends: backends),
            workloads: workloads?.split(separator: ",").map(String.init),
            entrants: entrants?.split(separator: ",").map(String.init))
        guard !plan.items.isEmpty else { throw BenchError.usage("no workload of suite \(suite) matches the filters") }
        mkdir(out, 0o755)
        let writer = try JSONLWriter(path: out + "/raw.jsonl")
        writer.write(RawRecord.header(suite: suite, runs: runs, plan: plan,
                                      defaultEntrant: LoopKitEntrant.defaultName(backends: backends)))
        let progress = Progress(mode: self.progress, total: plan.measurements(runs: runs))
        for (workload, cases) in plan.items {
            for (item, run) in Self.schedule(cases.count, runs: runs, workload.order) {
                let params = cases[item].params
                for contestant in cases[item].contestants {
                    progress.begin(workload: workload.info.name, params: params.map { "\($0.0)=\($0.1)" }.joined(separator: " "),
                                   entrant: contestant.name, run: run, runs: runs)
                    if let result = try contestant.measure() {
                        writer.write(RawRecord.run(contestant, workload: workload.info.name, params: params, run: run, result))
                    }
                }
            }
        }
        progress.finish()
    }

    /// (case index, run) pairs in the workload's order.
    static func schedule(_ cases: Int, runs: Int, _ order: RunOrder) -> [(Int, Int)] {
        switch order {
        case .grouped: return (0..<cases).flatMap { item in (0..<runs).map { (item, $0) } }
        case .interleaved: return (0..<runs).flatMap { run in (0..<cases).map { ($0, run) } }
        }
    }

    func availableBackends() -> [PollBackend] { [.epoll, .ioUring].filter(\.isAvailable) }
}
