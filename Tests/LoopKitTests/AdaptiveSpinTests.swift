@testable import LoopKit
import Testing

/// The adaptive spin's decisions, fed measured numbers (no clock, no threads): it spins while the gaps fit
/// within the cheaper of the maximum and a park's CPU cost, backs off to parking at once when they do not,
/// comes back when a short gap shows up again, and learns separately what follows a wake-up and what
/// follows a prompt pickup.
@Suite struct AdaptiveSpinTests {
    static let maximum: Int64 = 50_000

    /// A spin is worth at most what a park costs: the budget never exceeds the measured park cost.
    @Test func theBudgetIsCappedByTheCheaperOfMaximumAndParkCost() {
        var spin = AdaptiveSpin(maximum: Self.maximum)
        #expect(spin.budget == Self.maximum / 4, "before any measurement: a quarter of the maximum")
        for _ in 0..<64 { spin.recordParkCost(6_000) }
        #expect(abs(spin.parkCost - 6_000) < 200)
        #expect(spin.budget <= spin.parkCost)
        spin.parked(gap: 1_000, slept: false)
        #expect(spin.budget == spin.threshold)
        for _ in 0..<64 { spin.recordParkCost(400_000) }
        spin.parked(gap: 1_000, slept: false)
        #expect(spin.budget == Self.maximum, "an expensive park: the maximum caps the spin")
    }

    /// Gaps longer than the threshold (a task every 100 µs with a ~6 µs park): the spin backs off to zero
    /// within a few idle periods and stays there, so the loop costs what `.park` costs.
    @Test func longGapsTurnTheSpinOff() {
        var spin = AdaptiveSpin(maximum: Self.maximum)
        for _ in 0..<16 { spin.recordParkCost(6_000) }
        var spinsPaid: [Int64] = []
        for _ in 0..<20 {
            spinsPaid.append(spin.budget)
            spin.parked(gap: 100_000)
        }
        #expect(spin.budget == 0)
        #expect(spinsPaid.filter { $0 > 0 }.count <= 5, "budgets paid: \(spinsPaid)")
    }

    /// Back-to-back work (gaps of a microsecond) keeps the spin on at the threshold.
    @Test func shortGapsKeepTheSpinOn() {
        var spin = AdaptiveSpin(maximum: Self.maximum)
        for _ in 0..<16 { spin.recordParkCost(6_000) }
        for _ in 0..<100 {
            spin.caught(after: 800)
            #expect(spin.budget > 0)
        }
        spin.parked(gap: 2_000, slept: false)
        #expect(spin.budget == spin.threshold)
    }

    /// After backing off, one short gap (seen through the waking producer's timestamp) restores the spin.
    @Test func aShortGapBringsTheSpinBack() {
        var spin = AdaptiveSpin(maximum: Self.maximum)
        for _ in 0..<16 { spin.recordParkCost(6_000) }
        for _ in 0..<20 { spin.parked(gap: 1_000_000) }
        #expect(spin.budget == 0)
        spin.parked(gap: 3_000)
        #expect(spin.budget == spin.threshold)
    }

    /// A wake by I/O, a timer or a state change says nothing about the next task: it counts as a miss.
    @Test func aWakeWithoutASignalCountsAsAMiss() {
        var spin = AdaptiveSpin(maximum: Self.maximum)
        let before = spin.budget
        spin.parked(gap: nil, slept: false)
        #expect(spin.budget == before / 2)
    }

    /// A producer paced by the clock (a task every 20 µs, each waited for) against a loop whose wake-up
    /// takes 17 µs: after a wake-up the next task comes 3 µs after the loop goes idle, after a prompt pickup
    /// 19 µs. A spin that catches the short gap and then pays for missing the long one costs more CPU than
    /// parking every time; the spin must learn to catch the first and park at once for the second, so that
    /// over the run it costs less than `.park` and still picks up half the tasks at once.
    @Test func gapsThatDependOnHowTheLastIdleEndedAreLearnedApart() {
        let parkCost: Int64 = 6_000
        var spin = AdaptiveSpin(maximum: Self.maximum)
        for _ in 0..<16 { spin.recordParkCost(parkCost) }
        var slept = true
        var cost: Int64 = 0
        var caught = 0
        let warmUp = 40, measured = 160
        for period in 0..<(warmUp + measured) {
            let gap: Int64 = slept ? 3_000 : 19_000
            let budget = spin.budget
            let thisCost: Int64
            if budget >= gap {
                thisCost = gap
                spin.caught(after: gap)
                slept = false
                if period >= warmUp { caught += 1 }
            } else {
                thisCost = budget + parkCost
                spin.parked(gap: gap)
                slept = true
            }
            if period >= warmUp { cost += thisCost }
        }
        let parkOnly = Int64(measured) * parkCost
        #expect(cost * 10 <= parkOnly * 8, "spin CPU \(cost) ns against \(parkOnly) ns for parking every time")
        #expect(caught >= measured * 2 / 5, "caught \(caught) of \(measured) at once")
        #expect(spin.budgetAfterPrompt == 0, "after a prompt pickup the next gap is long: park at once")
        #expect(spin.budgetAfterWake == spin.threshold, "after a wake-up the next gap is short: spin")
    }
}
