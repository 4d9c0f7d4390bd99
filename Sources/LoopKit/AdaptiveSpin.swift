/// How long an idle loop polls for work before it parks, under
/// `IdleStrategy.spinThenPark(maximum:adaptive: true)`.
///
/// Spinning pays off when the next task arrives before the spin ends and sooner than a park would have
/// cost the loop thread in CPU: it is then both faster (the task is picked up in well under a microsecond
/// instead of after a thread wake-up) and cheaper. So a budget is at most the smaller of the configured
/// maximum and the measured CPU cost of a park (`threshold`), and the loop spins only while the gaps it
/// observes fit in it. Each idle period ends with the gap between the start of idling and the arrival of
/// work: the spin's own elapsed time when the spin caught it, or the timestamp the waking producer took
/// (`lk_wake_last_signal_ns`) when the loop had parked. A gap within the threshold sets the budget to the
/// threshold; any longer gap (or a wake by I/O or a timer, whose gap is unknown) halves it, down to zero:
/// then the loop parks at once, and a short gap brings spinning back.
///
/// There are two budgets, one for each way the previous idle period ended (`Ending`), because the way it
/// ended moves the next gap. A producer that paces its work by the clock, or waits for each task's result
/// before the next, sees the loop pick a task up a wake-up's latency later when the loop slept: the next
/// task then comes that much sooner after the loop goes idle, and a spin catches it; after a task picked
/// up at once the next one is a full period away. One budget would learn the average of the two and pay a
/// spin that misses for every one that catches (more CPU than parking at every idle); two learn to spin
/// after a wake-up and park after a prompt pickup, which costs less than parking every time.
///
/// Pure state, no clock: the loop feeds it measurements (tests feed it numbers).
struct AdaptiveSpin: Sendable, Equatable {
    /// How an idle period ended.
    enum Ending: Sendable, Equatable {
        /// The work was picked up at once: the spin caught it, or the check before sleeping found it.
        case prompt
        /// The loop slept and was woken (by a producer, I/O, a timer or a state change).
        case woken
    }

    /// The configured maximum spin, ns.
    let maximum: Int64
    /// The spin budget after a prompt pickup, ns (0: park at once).
    private(set) var budgetAfterPrompt: Int64
    /// The spin budget after a wake-up, ns (0: park at once).
    private(set) var budgetAfterWake: Int64
    /// How the last idle period ended: it chooses the budget the next one spends.
    private(set) var lastEnding: Ending = .prompt
    /// Estimated CPU cost of one park (sleep and wake-up) on the loop thread, ns: a moving average.
    private(set) var parkCost: Int64

    /// Budgets below this are not worth a spin: the budget drops to zero.
    static let minimumBudget: Int64 = 500

    init(maximum: Int64) {
        self.maximum = maximum
        parkCost = maximum / 4 // until measured
        budgetAfterPrompt = Swift.min(maximum, parkCost)
        budgetAfterWake = budgetAfterPrompt
    }

    /// The longest spin that is still cheaper than a park.
    var threshold: Int64 { Swift.min(maximum, parkCost) }

    /// The budget of the next idle period, ns (0: park at once).
    var budget: Int64 { lastEnding == .prompt ? budgetAfterPrompt : budgetAfterWake }

    /// The spin found work `gap` ns after the loop went idle.
    mutating func caught(after gap: Int64) {
        if gap > threshold { miss() }
        lastEnding = .prompt
    }

    /// The loop was about to sleep; `slept` tells whether it did. `gap`: ns from going idle until the
    /// work arrived (for a wake-up, until the producer that woke the loop published it), or nil when the
    /// loop woke for I/O, a timer or a state change.
    mutating func parked(gap: Int64?, slept: Bool = true) {
        if let gap, gap <= threshold {
            setBudget(threshold)
        } else {
            miss()
        }
        lastEnding = slept ? .woken : .prompt
    }

    /// A measured CPU cost of one park, ns.
    mutating func recordParkCost(_ cost: Int64) {
        parkCost += (Swift.max(0, cost) - parkCost) / 8
        budgetAfterPrompt = Swift.min(budgetAfterPrompt, threshold)
        budgetAfterWake = Swift.min(budgetAfterWake, threshold)
    }

    /// Halves the budget the period that just ended spent.
    private mutating func miss() {
        var halved = budget / 2
        if halved < Self.minimumBudget { halved = 0 }
        setBudget(halved)
    }

    private mutating func setBudget(_ value: Int64) {
        switch lastEnding {
        case .prompt: budgetAfterPrompt = value
        case .woken: budgetAfterWake = value
        }
    }
}
