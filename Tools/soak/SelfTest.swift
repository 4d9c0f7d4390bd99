/// A fault the soak injects on purpose, once, to prove its checks catch it (`SOAK_SELFTEST`). The run must
/// then report FAIL: a soak that cannot fail proves nothing.
///
/// All three act on producer 0, near the middle of its tasks, on the external lane:
/// - `drop`: one task is counted as accepted but never submitted (a lost task);
/// - `reorder`: two consecutive external tasks are submitted in swapped order (an order violation);
/// - `duplicate`: one task is submitted twice (a task that runs twice).
enum SelfTest: String, Sendable {
    case none
    case drop
    case reorder
    case duplicate

    /// Where producer `producer`'s fault goes: the sequence number it acts on, or nil for no fault.
    func faultSequence(producer: Int, quota: Int) -> Int? {
        guard self != .none, producer == 0, quota >= 4 else { return nil }
        // The first s at or after the middle where tasks s and s + 1 are both plain external ones.
        var s = quota / 2
        while s + 1 < quota {
            if TaskMix.kind(producer: producer, seq: s) == .external
                && TaskMix.kind(producer: producer, seq: s + 1) == .external { return s }
            s += 1
        }
        return nil
    }

    /// The task identity producer 0 submits at position `seq` (the reorder swaps `fault` and `fault + 1`).
    func submittedSequence(_ seq: Int, fault: Int?) -> Int {
        guard self == .reorder, let fault else { return seq }
        if seq == fault { return fault + 1 }
        if seq == fault + 1 { return fault }
        return seq
    }
}
