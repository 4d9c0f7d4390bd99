/// How long an idle loop polls for work before it parks, under
/// `IdleStrategy.spinThenPark(maximum:adaptive: true)`.
///
/// Spinning pays off when the next task arrives before the spin ends and sooner than a park would have
/// cost the loop thread in CPU: it is then both faster (the task is picked up in well under a microsecond
/// instead of after a thread wake-up) and cheaper. So the budget is at most the smaller of the configured
/// maximum and the measured CPU cost of a park (`threshold`), and the loop spins only while the gaps it
/// observes fit in it. Each idle period ends with the gap between the start of idling and the arrival of
/// work: the spin's own elapsed time when the spin caught it, or the timestamp the waking producer took
/// (`lk_wake_last_signal_ns`) when the loop had parked. A gap within the threshold sets the budget to the
/// threshold; any longer gap (or a wake by I/O or a timer, whose gap is unknown) halves it, down to zero:
/// then the loop parks at once, and a short gap brings spinning back.
///
/// Pure state, no clock: the loop feeds it measurements (tests feed it numbers).
struct AdaptiveSpin: Sendable, Equatable {
    /// The configured maximum spin, ns.
    let maximum: Int64
    /// The current spin budget, ns (0: park at once).
    private(set) var budget: Int64
    /// Estimated CPU cost of one park (sleep and wake-up) on the loop thread, ns: a moving average.
    private(set) var parkCost: Int64

    /// Budgets below this are not worth a spin: the budget drops to zero.
    static let minimumBudget: Int64 = 500

    init(maximum: Int64) {
        self.maximum = maximum
        parkCost = maximum / 4 // until measured
        budget = Swift.min(maximum, parkCost)
    }

    /// The longest spin that is still cheaper than a park.
    var threshold: Int64 { Swift.min(maximum, parkCost) }

    /// The spin found work `gap` ns after the loop went idle.
    mutating func caught(after gap: Int64) {
        if gap > threshold { miss() }
    }

    /// A park ended. `gap`: ns from going idle until the producer that woke the loop published its work,
    /// or nil when the loop woke for I/O, a timer or a state change.
    mutating func parked(gap: Int64?) {
        if let gap, gap <= threshold {
            budget = threshold
        } else {
            miss()
        }
    }

    /// A measured CPU cost of one park, ns.
    mutating func recordParkCost(_ cost: Int64) {
        parkCost += (Swift.max(0, cost) - parkCost) / 8
        if budget > threshold { budget = threshold }
    }

    private mutating func miss() {
        budget /= 2
        if budget < Self.minimumBudget { budget = 0 }
    }
}
