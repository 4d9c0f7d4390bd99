/// The workloads of one loopbench invocation and their cases: the registry's workloads in its order, each
/// with the cases it plans for the suite, narrowed by `--workloads` and `--entrants`. A case left with no
/// contestant, and a workload left with no case, are dropped, so the header lists exactly what is measured.
struct Plan {
    let items: [(workload: any Workload, cases: [WorkloadCase])]

    init(context: PlanContext, workloads names: [String]?, entrants filter: [String]?) {
        var items: [(workload: any Workload, cases: [WorkloadCase])] = []
        for workload in WorkloadRegistry.all where names?.contains(workload.info.name) ?? true {
            var cases = workload.cases(context)
            if let filter {
                for index in cases.indices {
                    cases[index].contestants.removeAll { contestant in !filter.contains { contestant.name.contains($0) } }
                }
            }
            cases.removeAll { $0.contestants.isEmpty }
            if !cases.isEmpty { items.append((workload, cases)) }
        }
        self.items = items
    }

    /// Measurements in all: one per contestant, case and run.
    func measurements(runs: Int) -> Int {
        items.reduce(0) { total, item in total + item.cases.reduce(0) { $0 + $1.contestants.count } * runs }
    }
}
