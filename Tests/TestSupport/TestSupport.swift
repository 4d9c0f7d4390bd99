import Glibc
import Synchronization
// Threads (ThreadGroup, runOnThreads, startDetachedThread) and Locked come from the helpers LoopKit itself
// uses; every test target that imports TestSupport sees them.
@_exported import LoopKitConcurrencyHelpers

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

/// How long a test may hold a loop (a task of the loop that waits for the test to let it go) before the hold
/// ends by itself: longer than any bounded wait a test makes meanwhile (the default 30 s of `waitUntil` and
/// `awaitCondition`), so that such a wait fails first, with its own message.
public let heldLoopLimitSeconds: Double = 120

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

/// Fault-injection tests arm process-global hooks (CLoopCore's lk_fault.h), so they must not share the
/// process with other tests running in parallel. `make test` runs them in a second, serial invocation with
/// LOOPKIT_FAULT_TESTS=1; without it they are skipped.
public let faultTestsEnabled: Bool = {
    guard let raw = getenv("LOOPKIT_FAULT_TESTS") else { return false }
    return String(cString: raw) == "1"
}()

private let nextHighFileDescriptor = Atomic<Int32>(0)

/// Duplicates `fd` onto a number near the top of the fd table (below the soft RLIMIT_NOFILE), close-on-exec.
/// The kernel hands out the lowest free number, so no concurrent test's open() or socket() gets this number,
/// even after it is closed: a test may close it and expect it to stay closed. Each call in the process
/// (every test target runs in one) returns a different number. Returns -1 when the limit leaves no room
/// above the numbers tests use (256) or dup2 fails.
public func highFileDescriptor(duplicating fd: Int32) -> Int32 {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
    let top = Int32(min(limit.rlim_cur, 1 << 20)) - 1
    let target = top - nextHighFileDescriptor.add(1, ordering: .relaxed).oldValue
    guard target > 256, dup2(fd, target) == target else { return -1 }
    _ = fcntl(target, F_SETFD, FD_CLOEXEC)
    return target
}
