import Dispatch

/// Grand Central Dispatch (swift-corelibs-libdispatch on Linux): a serial queue, `async` from any thread.
/// A serial queue runs its blocks one at a time in FIFO order, on whichever pool thread it borrows.
///
/// Threading: `submit` from any thread between `start()` and `shutdown()`; `start`/`shutdown` from one
/// controlling thread (which alone writes `queue`).
final class DispatchEntrant: Entrant, @unchecked Sendable {
    let name = "Dispatch"
    private var queue = DispatchQueue(label: "loopbench.dispatch")

    func start() throws {
        queue = DispatchQueue(label: "loopbench.dispatch")
    }

    @inline(__always) func submit(_ task: @escaping @Sendable () -> Void) {
        queue.async(execute: task)
    }

    /// An empty `sync` block runs after every block already enqueued (serial FIFO).
    func shutdown() {
        queue.sync {}
    }
}
