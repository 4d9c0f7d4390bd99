import CLoopCore
import Glibc
import Testing
import TestSupport

/// The poller backends this machine can run, probed once (lk_backend_probe): io_uring only where a ring can
/// be set up.
enum Backends {
    /// Why io_uring is unavailable here, or nil when it works.
    static let ioUringUnavailableReason: String? = {
        let rc = lk_backend_probe(LK_BACKEND_IO_URING)
        return rc == 0 ? nil : "io_uring refused by this kernel: \(String(cString: strerror(-rc))) (errno \(-rc))"
    }()

    static var ioUringAvailable: Bool { ioUringUnavailableReason == nil }

    /// Every backend that works here; epoll always does.
    static let available: [lk_backend] = ioUringAvailable ? [LK_BACKEND_EPOLL, LK_BACKEND_IO_URING] : [LK_BACKEND_EPOLL]
}

extension lk_backend: @retroactive CustomTestStringConvertible {
    public var testDescription: String { String(cString: lk_backend_name(self)) }
}
