import NIOCore
import NIOPosix

/// SwiftNIO: a one-thread `MultiThreadedEventLoopGroup` and its single `EventLoop`; tasks go in through
/// `execute` (NIO's locked task queue plus an eventfd wake of the selector) from any thread.
///
/// Threading: `submit` from any thread between `start()` and `shutdown()`; `start`/`shutdown` from one
/// controlling thread (which alone writes `group`/`loop`).
final class NIOEntrant: Entrant, @unchecked Sendable {
    let name = "SwiftNIO"
    private var group: MultiThreadedEventLoopGroup?
    private var loop: (any NIOCore.EventLoop)?

    func start() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        loop = group.next()
    }

    @inline(__always) func submit(_ task: @escaping @Sendable () -> Void) {
        loop.unsafelyUnwrapped.execute(task)
    }

    /// `syncShutdownGracefully` drains: the close is itself enqueued with `execute`, behind every task
    /// already submitted (immediate tasks run FIFO), the loop's exit path runs any immediate task still
    /// queued, and the group joins its thread before returning. So no extra final task is needed.
    func shutdown() {
        guard let group else { return }
        do { try group.syncShutdownGracefully() } catch { fatalError("SwiftNIO shutdown failed: \(error)") }
        self.group = nil
        self.loop = nil
    }
}
