/// A task as the peers' own queues store it. A bare closure in an Array is held through a heap-allocated
/// reabstraction thunk (one allocation per task); wrapped in a struct it is stored as it is. LoopKit
/// stores its jobs the same way, so no entrant pays an allocation the others do not.
struct QueuedTask {
    let run: @Sendable () -> Void
}

