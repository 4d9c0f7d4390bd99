internal import CLoopCore

/// A unit of work as the loop stores it. Throwing so one type serves plain and throwing tasks; a
/// non-throwing closure converts to it without a thunk.
typealias Job = @Sendable () throws -> Void


extension lk_task {
    /// Moves `job` into a task payload: the payload owns the closure's reference from here on.
    @inline(__always)
    init(job: @escaping Job, timestamp: Int64 = 0) {
        self.init()
        withUnsafeMutableBytes(of: &self) { raw in
            _ = raw.baseAddress!.initializeMemory(as: Job.self, to: job)
        }
        words.2 = UInt(bitPattern: Int(timestamp))
    }

    var timestamp: Int64 { Int64(Int(bitPattern: words.2)) }
}

/// Moves the Job out of the payload at `task` (which must hold one): ownership passes to the caller.
@inline(__always)
func takeJob(from task: UnsafeMutablePointer<lk_task>) -> Job {
    UnsafeMutableRawPointer(task).assumingMemoryBound(to: Job.self).move()
}

/// A FIFO of jobs for the loop thread's own use: no atomics, no locks. Loop thread only.
struct LocalJobQueue {
    private var storage: [Job?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ job: @escaping Job) {
        if count == storage.count { grow() }
        var tail = head + count
        if tail >= storage.count { tail -= storage.count }
        storage[tail] = job
        count += 1
    }

    mutating func removeFirst() -> Job? {
        guard count > 0 else { return nil }
        let job = storage[head]
        storage[head] = nil
        head += 1
        if head == storage.count { head = 0 }
        count -= 1
        return job
    }

    mutating func removeAll() {
        while removeFirst() != nil {}
    }

    private mutating func grow() {
        let newCapacity = Swift.max(16, storage.count * 2)
        var fresh: [Job?] = []
        fresh.reserveCapacity(newCapacity)
        for i in 0..<count { fresh.append(storage[(head + i) % storage.count]) }
        fresh.append(contentsOf: repeatElement(nil, count: newCapacity - count))
        storage = fresh
        head = 0
    }
}
