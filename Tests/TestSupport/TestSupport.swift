import Glibc

/// Starts `count` POSIX threads running `body(index)` and joins them all.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Start: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        let start = Unmanaged.passRetained(Start { body(index) }).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, start)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
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

/// Scales stress-test sizes: LOOPKIT_STRESS_SCALE=0.2 runs a fifth (ThreadSanitizer runs use it). Never
/// below `minimum`.
public func stressCount(_ count: Int, minimum: Int = 1) -> Int {
    guard let raw = getenv("LOOPKIT_STRESS_SCALE"), let scale = Double(String(cString: raw)), scale > 0 else {
        return count
    }
    return max(minimum, Int(Double(count) * scale))
}
