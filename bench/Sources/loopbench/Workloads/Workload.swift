import LoopKit

/// A tournament workload. Its file holds everything about it: what it measures, the parameters it runs with
/// in each suite, the entrants it applies to and the measured body; `WorkloadRegistry.all` lists it.
protocol Workload: Sendable {
    /// What the report needs to know about this workload, written to the raw.jsonl header.
    var info: WorkloadInfo { get }

    /// The parameter sets this workload measures in `plan`'s suite, each with the contestants it applies
    /// to; none when the workload is not part of that suite.
    func cases(_ plan: PlanContext) -> [WorkloadCase]

    /// The order of its runs (default `.grouped`).
    var order: RunOrder { get }
}

extension Workload {
    var order: RunOrder { .grouped }
}

enum RunOrder: Sendable {
    /// Every run of one case, then the next case.
    case grouped
    /// Run 0 of every case, then run 1, ...: figures compared with one another are measured close in
    /// time, so a machine that changes mode mid-suite shifts them together.
    case interleaved
}

/// The description of a workload that the raw.jsonl header carries; report.py, plots.py and verify.py
/// read it there instead of keeping lists of their own.
struct WorkloadInfo: Sendable {
    let name: String
    /// One sentence: what one run does.
    let about: String
    /// What `ns_per_op` means for this workload (a plot axis label).
    let metric: String
    /// The per-run figures it reports beside `ns_per_op`.
    var fields: [Field] = []
    /// Records a latency distribution per run (`percentiles_ns`): the report plots percentile curves.
    var latency = false
    /// A numeric parameter the figures are plotted against, when the workload sweeps one.
    var sweep: Sweep? = nil
    /// `.ranked`: one table per parameter set, entrants ranked; `.operations`: one table, a row per `op`.
    var layout: Layout = .ranked

    enum Layout: String, Sendable { case ranked, operations = "ops" }
}

/// A parameter swept across a workload's cases, and the figures plotted against it.
struct Sweep: Sendable {
    let parameter: String
    /// The axis label, e.g. "producers".
    let label: String
    /// `ns_per_op` and/or `Field` keys, one plot panel each.
    let figures: [String]
}

/// One parameter set of a workload and the contestants measured with it.
struct WorkloadCase: Sendable {
    let params: [(String, String)]
    var contestants: [Contestant]
}

/// One entrant of a case, and how to measure one run of it.
struct Contestant: Sendable {
    let name: String
    let family: EntrantKind.Family
    /// One measured run; nil when this run measured nothing (no line is written).
    let measure: @Sendable () throws -> RunResult?
}

extension Contestant {
    /// A fresh entrant of `kind` per run: started, measured by `body` (the timed part), shut down.
    init(kind: EntrantKind, _ body: @escaping @Sendable (any Entrant) -> RunResult) {
        self.init(name: kind.name, family: kind.family) {
            let entrant = try kind.make()
            try entrant.start()
            let result = body(entrant)
            entrant.shutdown()
            return result
        }
    }
}

/// What a workload plans its cases from.
struct PlanContext: Sendable {
    let suite: Suite
    /// `--producers`, when given.
    let producers: [Int]?
    /// Every entrant kind of the tournament on this machine: LoopKit's configurations, then the peers.
    let entrants: [EntrantKind]
    /// The poll backends that work here.
    let backends: [PollBackend]

    /// A case that measures every entrant kind with `body`.
    func everyEntrant(_ params: [(String, String)], _ body: @escaping @Sendable (any Entrant) -> RunResult) -> WorkloadCase {
        WorkloadCase(params: params, contestants: entrants.map { Contestant(kind: $0, body) })
    }
}
