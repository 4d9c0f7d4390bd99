/// Identifies a scheduled timer for `EventLoop.cancelTimer(_:)`. It names the loop that issued it as well as
/// the timer: numbers are per loop, so another loop's id with the same number is a different id.
public struct TimerID: Hashable, Sendable, CustomStringConvertible {
    let loopID: UInt64
    let raw: UInt64
    /// "TimerID(<number> of loop <loop id>)".
    public var description: String { "TimerID(\(raw) of loop \(loopID))" }
}

/// A binary min-heap of timers ordered by (deadline, sequence), with an index from id to heap slot so a
/// timer can be cancelled in O(log n). Equal deadlines fire in scheduling order (the sequence breaks ties).
/// Not thread-safe: the loop keeps it inside a mutex.
struct TimerHeap {
    struct Entry {
        var deadline: Int64
        var sequence: UInt64
        var id: UInt64
        var job: Job
    }

    private var heap: [Entry] = []
    private var slots: [UInt64: Int] = [:]
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }
    /// The earliest deadline, if any timer is pending.
    var earliestDeadline: Int64? { heap.first?.deadline }

    /// Adds a timer. `id` must not be pending already (the loop issues each id once).
    mutating func insert(id: UInt64, deadline: Int64, job: @escaping Job) {
        let entry = Entry(deadline: deadline, sequence: nextSequence, id: id, job: job)
        nextSequence &+= 1
        heap.append(entry)
        let previous = slots.updateValue(heap.count - 1, forKey: id)
        precondition(previous == nil, "TimerHeap.insert: timer id \(id) is already pending")
        siftUp(heap.count - 1)
    }

    /// The sequence number the next timer inserted will get: timers inserted from now on have this one or
    /// a later one.
    var nextSequenceNumber: UInt64 { nextSequence }

    /// Removes and returns the earliest timer if it is due at `now` and was inserted before the timer with
    /// sequence number `limit` (see `nextSequenceNumber`).
    mutating func popDue(now: Int64, insertedBefore limit: UInt64) -> Entry? {
        guard hasDue(now: now, insertedBefore: limit) else { return nil }
        return remove(at: 0)
    }

    /// Whether `popDue(now:insertedBefore:)` would return a timer.
    func hasDue(now: Int64, insertedBefore limit: UInt64) -> Bool {
        guard let first = heap.first else { return false }
        return first.deadline <= now && first.sequence < limit
    }

    /// Removes the timer `id`; nil if it is not pending.
    mutating func cancel(id: UInt64) -> Entry? {
        guard let slot = slots[id] else { return nil }
        return remove(at: slot)
    }

    /// Removes every timer (their jobs are released without running).
    mutating func removeAll() -> Int {
        let n = heap.count
        heap.removeAll()
        slots.removeAll()
        return n
    }

    private static func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence)
    }

    private mutating func remove(at slot: Int) -> Entry {
        let last = heap.count - 1
        if slot != last { swapAt(slot, last) }
        let removed = heap.removeLast()
        slots[removed.id] = nil
        if slot < heap.count {
            siftDown(slot)
            siftUp(slot)
        }
        return removed
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        heap.swapAt(i, j)
        slots[heap[i].id] = i
        slots[heap[j].id] = j
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var best = left
            let right = left + 1
            if right < heap.count && Self.precedes(heap[right], heap[left]) { best = right }
            guard Self.precedes(heap[best], heap[parent]) else { return }
            swapAt(best, parent)
            parent = best
        }
    }
}
