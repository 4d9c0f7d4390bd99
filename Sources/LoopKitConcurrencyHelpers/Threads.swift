internal import CLoopCore
import Glibc

/// A thread could not be started: `pthread_create` failed with `errno` (EAGAIN: a thread or memory limit).
public struct ThreadStartError: Error, Equatable, CustomStringConvertible {
    /// The name the thread was to have, if any.
    public let name: String?
    /// `pthread_create`'s error number.
    public let errno: Int32

    public var description: String {
        "cannot start thread \(name ?? "(unnamed)"): pthread_create: \(String(cString: strerror(errno))) (\(errno))"
    }
}

/// A POSIX thread running a closure, to be joined with `join()` exactly once.
///
/// Threading: create and join from any thread; `join()` blocks until the closure has returned.
public struct JoinableThread: Sendable {
    private let handle: pthread_t

    /// Starts a thread running `body`, named `name` (for ps, top, perf; truncated to 15 bytes) when given.
    /// - Throws: `ThreadStartError` when the thread cannot be created; `body` is then released unrun.
    public init(name: String? = nil, _ body: @escaping @Sendable () -> Void) throws(ThreadStartError) {
        handle = try createThread(name: name, detached: false, body)
    }

    /// Waits for the thread to finish. Call it exactly once (a second join is undefined behaviour in POSIX).
    public func join() {
        let rc = pthread_join(handle, nil)
        precondition(rc == 0, "pthread_join failed: \(rc)")
    }
}

/// Starts a detached POSIX thread running `body`, named `name` when given: nobody joins it, and its resources
/// go back to the system when `body` returns.
/// - Throws: `ThreadStartError` when the thread cannot be created; `body` is then released unrun.
public func startDetachedThread(name: String? = nil, _ body: @escaping @Sendable () -> Void) throws(ThreadStartError) {
    _ = try createThread(name: name, detached: true, body)
}

/// `count` POSIX threads running `body(index)`, started at once and joined by `join()`, which must be called
/// exactly once (checked when the group is released). For tests, tools and benchmarks: a thread that cannot
/// be started stops the process, since they cannot go on without it.
public final class ThreadGroup {
    private var threads: [JoinableThread] = []
    private var joined = false

    /// Starts the threads; with a `name`, thread i is named "<name>-i".
    public init(_ count: Int, name: String? = nil, _ body: @Sendable @escaping (Int) -> Void) {
        threads.reserveCapacity(count)
        for index in 0..<count {
            do {
                threads.append(try JoinableThread(name: name.map { "\($0)-\(index)" }) { body(index) })
            } catch {
                fatalError("\(error)")
            }
        }
    }

    /// Waits for every thread to finish.
    public func join() {
        precondition(!joined, "ThreadGroup joined twice")
        joined = true
        for thread in threads { thread.join() }
    }

    deinit { precondition(joined, "ThreadGroup dropped without join()") }
}

/// Runs `body(index)` on `count` new POSIX threads and returns once all have finished (see `ThreadGroup`).
public func runOnThreads(_ count: Int, name: String? = nil, _ body: @escaping @Sendable (Int) -> Void) {
    ThreadGroup(count, name: name, body).join()
}

/// What a new thread runs: its name and its closure, handed over through pthread_create's argument.
private final class ThreadStart {
    let name: String?
    let body: @Sendable () -> Void

    init(name: String?, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

private func createThread(name: String?, detached: Bool, _ body: @escaping @Sendable () -> Void)
    throws(ThreadStartError) -> pthread_t {
    // Retained for the new thread, which takes it over; released here if the thread is never created.
    let start = Unmanaged.passRetained(ThreadStart(name: name, body: body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attributes, { raw in
        let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
        start.name?.withCString { lk_thread_set_name($0) }
        start.body()
        return nil
    }, start)
    guard rc == 0 else {
        Unmanaged<ThreadStart>.fromOpaque(start).release()
        throw ThreadStartError(name: name, errno: rc)
    }
    return thread
}
