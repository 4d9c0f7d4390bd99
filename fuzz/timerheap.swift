// fuzz/timerheap.swift — libFuzzer harness for the timer heap (`TimerHeap`, Sources/LoopKit/Timers.swift),
// compiled together with the real Timers.swift and checked after every operation against a sorted list.
//
// Input: operations, each an opcode byte b (operation b % 7, variant b / 7) followed by its operands:
//   0 insert one timer under a fresh id (the previous id + 1 + u8), deadline as below
//   1 popDue(now: deadline as below, insertedBefore: limit): one pop (even variants) or every due timer (odd
//     variants); the limit is UInt64.max (variants 0, 1 mod 4) or the heap's nextSequenceNumber minus u8,
//     clamped at 0 (variants 2, 3 mod 4), as a tick that runs only the timers scheduled before it began
//   2 cancel the pending timer number u8 % pending
//   3 cancel an id that has fired, been cancelled or been removed (u8 picks it): must find nothing
//   4 cancel an id that was never used (0, or above every id so far): must find nothing
//   5 removeAll
//   6 insert a burst of 1 + u8 % 64 timers with deadlines from a small range (many equal deadlines)
// A deadline operand is a selector byte s and, for some selectors, more bytes: s % 8 is
//   0..2: u8 - 128 (small: equal deadlines are common)   3: Int64.min   4: Int64.max
//   5: Int64.min + u8   6: Int64.max - u8   7: any Int64 (8 bytes)
// At the end every remaining timer is popped with now = Int64.max.
//
// The model is every pending timer sorted by (deadline, insertion order), as the heap promises. After every
// operation: count, isEmpty and earliestDeadline agree with it. popDue returns the model's first timer exactly
// when its deadline is <= now and it was inserted before the limit, and hasDue agrees; cancel returns the timer with that id exactly when it is pending; removeAll
// returns the model's count. Each popped timer's job is run by the harness and must record its own id, once:
// no job fires twice, and no cancelled or removed job is ever handed out.
//
// Build (scripts/fuzz.sh): swiftc -sanitize=fuzzer,address -parse-as-library -O
//   Sources/LoopKit/Timers.swift fuzz/timerheap.swift

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The loop's job type (Sources/LoopKit/Job.swift), restated here because Job.swift needs the C core.
typealias Job = @Sendable () -> Void

/// Aborts with `message` when `condition` is false; libFuzzer then records the input as a crash.
func check(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) {
    guard !condition else { return }
    let text = "timerheap.swift:\(line): check failed: \(message())\n"
    text.withCString { _ = write(2, $0, strlen($0)) }  // fd 2: the C `stderr` global is not Sendable
    abort()
}

/// The ids of the jobs run so far in this input, in the order they ran. Jobs append to it.
nonisolated(unsafe) private var ranJobs: [UInt64] = []

/// Reads the fuzzer's bytes front to back; past the end it yields zeros, so every input decodes.
struct InputReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var offset = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var hasMore: Bool { offset < bytes.count }

    mutating func nextByte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func nextInt64() -> Int64 {
        var raw: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 8) { raw |= UInt64(nextByte()) << UInt64(shift) }
        return Int64(bitPattern: raw)
    }

    /// A deadline (or a `now`), weighted towards small values, the extremes and their neighbours.
    mutating func nextDeadline() -> Int64 {
        switch nextByte() % 8 {
        case 0, 1, 2: return Int64(nextByte()) - 128
        case 3: return .min
        case 4: return .max
        case 5: return .min + Int64(nextByte())
        case 6: return .max - Int64(nextByte())
        default: return nextInt64()
        }
    }
}

/// A pending timer as the model keeps it.
struct ModelTimer {
    var id: UInt64
    var deadline: Int64
    var order: UInt64
}

/// The reference: the pending timers sorted by (deadline, insertion order), plus what has left the heap.
struct TimerModel {
    private(set) var pending: [ModelTimer] = []
    private(set) var departed: [UInt64] = []  // fired, cancelled or removed ids
    private var nextOrder: UInt64 = 0
    private(set) var lastID: UInt64 = 0

    /// A fresh id, above every id used so far.
    mutating func makeID(gap: UInt8) -> UInt64 {
        lastID += 1 + UInt64(gap)
        return lastID
    }

    mutating func insert(id: UInt64, deadline: Int64) {
        let timer = ModelTimer(id: id, deadline: deadline, order: nextOrder)
        nextOrder += 1
        // After every timer with a deadline <= this one: equal deadlines keep insertion order.
        var low = 0
        var high = pending.count
        while low < high {
            let mid = (low + high) / 2
            if pending[mid].deadline <= deadline { low = mid + 1 } else { high = mid }
        }
        pending.insert(timer, at: low)
    }

    mutating func popDue(now: Int64, insertedBefore limit: UInt64) -> ModelTimer? {
        guard let first = pending.first, first.deadline <= now, first.order < limit else { return nil }
        pending.removeFirst()
        departed.append(first.id)
        return first
    }

    mutating func cancel(id: UInt64) -> ModelTimer? {
        guard let index = pending.firstIndex(where: { $0.id == id }) else { return nil }
        departed.append(id)
        return pending.remove(at: index)
    }

    mutating func removeAll() -> Int {
        departed.append(contentsOf: pending.map(\.id))
        defer { pending.removeAll() }
        return pending.count
    }
}

/// Drives one TimerHeap and its model through the operations decoded from the input.
struct Harness {
    var heap = TimerHeap()
    var model = TimerModel()
    var ranIDs: Set<UInt64> = []

    mutating func insert(deadline: Int64, gap: UInt8) {
        let id = model.makeID(gap: gap)
        heap.insert(id: id, deadline: deadline, job: { ranJobs.append(id) })
        model.insert(id: id, deadline: deadline)
    }

    /// One popDue; returns whether it popped a timer.
    mutating func popDue(now: Int64, insertedBefore limit: UInt64 = .max) -> Bool {
        let announced = heap.hasDue(now: now, insertedBefore: limit)
        let popped = heap.popDue(now: now, insertedBefore: limit)
        let expected = model.popDue(now: now, insertedBefore: limit)
        check(announced == (popped != nil), "hasDue(now: \(now), insertedBefore: \(limit)) said \(announced)")
        guard let expected else {
            check(popped == nil, "popDue(now: \(now)) returned timer \(popped!.id), model has none due")
            return false
        }
        guard let popped else {
            check(false, "popDue(now: \(now)) returned nil, model has timer \(expected.id) due at \(expected.deadline)")
            return false
        }
        check(popped.id == expected.id && popped.deadline == expected.deadline,
              "popDue(now: \(now)) returned timer \(popped.id) at \(popped.deadline), model says \(expected.id) at \(expected.deadline)")
        let ranBefore = ranJobs.count
        popped.job()
        check(ranJobs.count == ranBefore + 1 && ranJobs.last == popped.id,
              "the job of timer \(popped.id) recorded \(ranJobs[ranBefore...])")
        check(ranIDs.insert(popped.id).inserted, "the job of timer \(popped.id) ran twice")
        return true
    }

    mutating func cancel(id: UInt64) {
        let removed = heap.cancel(id: id)
        let expected = model.cancel(id: id)
        check((removed == nil) == (expected == nil),
              "cancel(id: \(id)) returned \(removed.map { "timer \($0.id)" } ?? "nil"), model says \(expected.map { "timer \($0.id)" } ?? "nil")")
        if let removed, let expected {
            check(removed.id == id && removed.deadline == expected.deadline,
                  "cancel(id: \(id)) returned timer \(removed.id) at \(removed.deadline), model says \(expected.deadline)")
        }
    }

    mutating func removeAll() {
        let removed = heap.removeAll()
        let expected = model.removeAll()
        check(removed == expected, "removeAll() returned \(removed), model says \(expected)")
    }

    func checkState() {
        check(heap.count == model.pending.count, "count \(heap.count), model says \(model.pending.count)")
        check(heap.isEmpty == model.pending.isEmpty, "isEmpty \(heap.isEmpty) with \(model.pending.count) pending")
        check(heap.earliestDeadline == model.pending.first?.deadline,
              "earliestDeadline \(String(describing: heap.earliestDeadline)), model says \(String(describing: model.pending.first?.deadline))")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = InputReader(UnsafeBufferPointer(start: data, count: size))
    var harness = Harness()
    ranJobs.removeAll(keepingCapacity: true)

    while input.hasMore {
        let opcode = input.nextByte()
        let variant = opcode / 7
        switch opcode % 7 {
        case 0:
            let gap = input.nextByte()
            harness.insert(deadline: input.nextDeadline(), gap: gap)
        case 1:
            let now = input.nextDeadline()
            var limit = UInt64.max
            if variant % 4 >= 2 {
                let back = UInt64(input.nextByte())
                let next = harness.heap.nextSequenceNumber
                limit = next > back ? next - back : 0
            }
            if variant % 2 == 0 {
                _ = harness.popDue(now: now, insertedBefore: limit)
            } else {
                while harness.popDue(now: now, insertedBefore: limit) {}
            }
        case 2:
            let pending = harness.model.pending
            let pick = Int(input.nextByte())
            if !pending.isEmpty { harness.cancel(id: pending[pick % pending.count].id) }
        case 3:
            let departed = harness.model.departed
            let pick = Int(input.nextByte())
            if !departed.isEmpty { harness.cancel(id: departed[departed.count - 1 - pick % departed.count]) }
        case 4:
            let unknown = variant % 2 == 0 ? 0 : harness.model.lastID + 1 + UInt64(input.nextByte())
            harness.cancel(id: unknown)
        case 5:
            harness.removeAll()
        default:
            for _ in 0...(input.nextByte() % 64) {
                harness.insert(deadline: Int64(input.nextByte() % 16) - 8, gap: 0)
            }
        }
        harness.checkState()
    }

    while harness.popDue(now: .max) {}
    harness.checkState()
    check(harness.heap.isEmpty, "\(harness.heap.count) timers left after popping with now = Int64.max")
    return 0
}
