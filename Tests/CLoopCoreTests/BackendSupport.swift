import CLoopCore
import Glibc
import Testing

/// The poller backends this machine can run, probed once: io_uring only where a ring can be set up.
enum Backends {
    /// Why io_uring is unavailable here, or nil when it works.
    static let ioUringUnavailableReason: String? = {
        var wake: OpaquePointer?
        guard lk_wake_create(&wake) == 0 else { return "lk_wake_create failed" }
        defer { lk_wake_destroy(wake) }
        var poller: OpaquePointer?
        let rc = lk_poller_create_for_testing(&poller, LK_BACKEND_IO_URING, lk_wake_fd(wake), nil)
        if rc == 0 {
            lk_poller_destroy(poller)
            return nil
        }
        return "io_uring refused by this kernel: \(String(cString: strerror(-rc))) (errno \(-rc))"
    }()

    static var ioUringAvailable: Bool { ioUringUnavailableReason == nil }

    /// Every backend that works here; epoll always does.
    static let available: [lk_backend] = ioUringAvailable ? [LK_BACKEND_EPOLL, LK_BACKEND_IO_URING] : [LK_BACKEND_EPOLL]
}

extension lk_backend: @retroactive CustomTestStringConvertible {
    public var testDescription: String { String(cString: lk_backend_name(self)) }
}

/// Starts `count` POSIX threads running `body(index)` and joins them all.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
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

/// A point in monotonic time after which a bounded wait gives up (and the test fails).
struct TestDeadline {
    let end: Int64
    init(seconds: Double) { end = lk_clock_now_ns() + Int64(seconds * 1e9) }
    var hasExpired: Bool { lk_clock_now_ns() >= end }
    var remainingNanoseconds: Int64 { max(0, end - lk_clock_now_ns()) }
}
