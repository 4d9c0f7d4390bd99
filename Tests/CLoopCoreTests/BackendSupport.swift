import CLoopCore
import Glibc
import Testing
import TestSupport

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
