/// The lines of raw.jsonl: one header, then one line per measured run. The header describes the machine and
/// the plan: every workload measured, with what the report needs to know about it (`WorkloadInfo`), its
/// parameter sets and its entrants, and the per-run fields with their column labels, in column order.
enum RawRecord {
    static func header(suite: Suite, runs: Int, plan: Plan, defaultEntrant: String) -> JSON {
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
            ("fields", .array(Field.allCases.map { .object([("key", .string($0.rawValue)), ("label", .string($0.label))]) })),
            ("workloads", .array(plan.items.map { workload(info: $0.workload.info, cases: $0.cases) })),
        ])
    }

    static func workload(info: WorkloadInfo, cases: [WorkloadCase]) -> JSON {
        var entrants: [String] = []
        for contestant in cases.flatMap(\.contestants) where !entrants.contains(contestant.name) {
            entrants.append(contestant.name)
        }
        let sweep: JSON = info.sweep.map {
            .object([("param", .string($0.parameter)), ("label", .string($0.label)),
                     ("figures", .array($0.figures.map(JSON.string)))])
        } ?? .null
        return .object([
            ("name", .string(info.name)),
            ("about", .string(info.about)),
            ("metric", .string(info.metric)),
            ("layout", .string(info.layout.rawValue)),
            ("latency", .bool(info.latency)),
            ("sweep", sweep),
            ("fields", .array(info.fields.map { .string($0.rawValue) })),
            ("params", .array(cases.map { item in .object(item.params.map { ($0.0, .string($0.1)) }) })),
            ("entrants", .array(entrants.map(JSON.string))),
        ])
    }

    static func run(_ contestant: Contestant, workload: String, params: [(String, String)], run: Int, _ r: RunResult) -> JSON {
        var fields: [(String, JSON)] = [
            ("kind", .string("run")),
            ("entrant", .string(contestant.name)),
            ("family", .string(contestant.family.rawValue)),
            ("workload", .string(workload)),
            ("params", .object(params.map { ($0.0, .string($0.1)) })),
            ("run", .int(run)),
            ("ns_per_op", .number(r.nsPerOp)),
        ]
        fields += r.fields.map { ($0.0.rawValue, .number($0.1)) }
        if let curve = r.percentiles {
            fields.append(("percentiles_ns", .object(curve.map { ($0.0, .number($0.1)) })))
        }
        return .object(fields)
    }
}
