import Glibc

private final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Creates a POSIX thread running `body`.
private func createThread(_ body: @escaping () -> Void) -> pthread_t {
    let start = Unmanaged.passRetained(ThreadStart(body))
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { argument in
        Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue().body()
        return nil
    }, start.toOpaque())
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

/// Real POSIX threads, started at once and joined by `join()` (which must be called exactly once).
public final class ThreadGroup {
    private var threads: [pthread_t] = []
    private var joined = false

    public init(_ count: Int, _ body: @Sendable @escaping (Int) -> Void) {
        threads.reserveCapacity(count)
        for index in 0..<count {
            threads.append(createThread { body(index) })
        }
    }

    public func join() {
        precondition(!joined, "ThreadGroup joined twice")
        joined = true
        for thread in threads {
            let rc = pthread_join(thread, nil)
            precondition(rc == 0, "pthread_join failed: \(rc)")
        }
    }

    deinit { precondition(joined, "ThreadGroup dropped without join()") }
}

/// Starts a detached POSIX thread running `body`: for a call that may block for good when the code under
/// test is wrong, so that the test can wait for it with a deadline and fail instead of hanging.
public func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    pthread_detach(createThread(body))
}

/// Starts `count` POSIX threads running `body(index)` and joins them all.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    ThreadGroup(count, body).join()
}

/// Nanoseconds on CLOCK_MONOTONIC.
public func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// A point in monotonic time after which a bounded wait gives up (and the test fails).
public struct TestDeadline: Sendable {
    public let end: Int64
    public init(seconds: Double) { end = monotonicNanoseconds() + Int64(seconds * 1e9) }
    public var hasExpired: Bool { monotonicNanoseconds() >= end }
    public var remainingNanoseconds: Int64 { max(0, end - monotonicNanoseconds()) }
}

/// Polls `condition` (yielding the CPU between polls) until it holds or `seconds` pass.
/// Returns whether it held. Tests never sleep for a fixed time: they wait for a condition.
@discardableResult
public func waitUntil(seconds: Double = 30, _ condition: () -> Bool) -> Bool {
    let deadline = TestDeadline(seconds: seconds)
    while !condition() {
        if deadline.hasExpired { return condition() }
        sched_yield()
    }
    return true
}

/// `waitUntil` for async code: suspends (yielding the task) between polls instead of blocking the thread, so
/// that tasks the condition waits for can run on the cooperative pool meanwhile.
@discardableResult
public func awaitCondition(seconds: Double = 30, _ condition: () -> Bool) async -> Bool {
    let deadline = TestDeadline(seconds: seconds)
    while !condition() {
        if deadline.hasExpired { return condition() }
        await Task.yield()
    }
    return true
}

/// Scales stress-test sizes: LOOPKIT_STRESS_SCALE=0.2 runs a fifth (ThreadSanitizer runs use it). Never
/// below `minimum`.
public func stressCount(_ count: Int, minimum: Int = 1) -> Int {
    guard let raw = getenv("LOOPKIT_STRESS_SCALE"), let scale = Double(String(cString: raw)), scale > 0 else {
        return count
    }
    return max(minimum, Int(Double(count) * scale))
}

/// A value guarded by a pthread mutex, visible to ThreadSanitizer (unlike `Synchronization.Mutex` on Linux,
/// whose futex-based lock lives in the uninstrumented standard library).
public final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value // guarded by mutex

    public init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// Fault-injection tests arm process-global hooks (CLoopCore's lk_fault.h), so they must not share the
/// process with other tests running in parallel. `make test` runs them in a second, serial invocation with
/// LOOPKIT_FAULT_TESTS=1; without it they are skipped.
public let faultTestsEnabled: Bool = {
    guard let raw = getenv("LOOPKIT_FAULT_TESTS") else { return false }
    return String(cString: raw) == "1"
}()
