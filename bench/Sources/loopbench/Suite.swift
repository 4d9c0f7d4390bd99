import ArgumentParser

/// A named set of workloads and sizes. Each workload says what it runs in each suite (its `cases`).
enum Suite: String, ExpressibleByArgument, CaseIterable, Sendable {
    case quick, full, micro, expanded, scaling

    /// Runs per entrant and case when `--runs` is not given.
    var defaultRuns: Int {
        switch self {
        case .quick: return 3
        case .full, .micro, .scaling: return 5
        case .expanded: return 10
        }
    }
}
