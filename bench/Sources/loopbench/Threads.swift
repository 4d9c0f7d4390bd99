import Glibc

private final class ThreadStart: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a joinable POSIX thread running `body`. Throws `PeerError.threadCreate` if it cannot.
func startThread(_ body: @escaping @Sendable () -> Void) throws -> pthread_t {
    let start = Unmanaged.passRetained(ThreadStart(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, start)
    guard rc == 0 else {
        Unmanaged<ThreadStart>.fromOpaque(start).release()
        throw PeerError.threadCreate(rc)
    }
    return thread
}

/// Runs `body(index)` on `count` new POSIX threads and joins them.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    var threads: [pthread_t] = []
    for index in 0..<count {
        do { threads.append(try startThread { body(index) }) } catch { fatalError("\(error)") }
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// A task as the peers' own queues store it. A bare closure in an Array is held through a heap-allocated
/// reabstraction thunk (one allocation per task); wrapped in a struct it is stored as it is. LoopKit
/// stores its jobs the same way, so no entrant pays an allocation the others do not.
struct QueuedTask {
    let run: @Sendable () -> Void
}

