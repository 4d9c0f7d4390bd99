internal import CLoopCore
import Glibc

/// Readiness conditions of a file descriptor.
public struct IOEvents: OptionSet, Sendable, Hashable {
    /// The conditions as the C core's `LK_POLL_*` bits.
    public let rawValue: UInt32
    /// Conditions from `LK_POLL_*` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Data to read, a connection to accept, or end of file.
    public static let read = IOEvents(rawValue: UInt32(LK_POLL_READ))
    /// Room to write.
    public static let write = IOEvents(rawValue: UInt32(LK_POLL_WRITE))
    /// An error condition (always reported, whether asked for or not).
    public static let error = IOEvents(rawValue: UInt32(LK_POLL_ERROR))
    /// The peer hung up (always reported); when asked for, also a peer's half-close.
    public static let hangup = IOEvents(rawValue: UInt32(LK_POLL_HANGUP))
}

/// Whether the loop closes a registered descriptor when it terminates.
public enum FDOwnership: Sendable, Equatable {
    /// The caller keeps the descriptor; the loop only stops watching it.
    case borrowed
    /// The loop closes the descriptor when it terminates (if it is still registered then).
    case owned
}

final class FDRegistration {
    let fd: Int32
    let ownership: FDOwnership
    let handler: (IOEvents) -> Void
    /// The poll epoch at registration: events from that poll or earlier are not for this registration.
    let epoch: UInt64

    init(fd: Int32, ownership: FDOwnership, epoch: UInt64, handler: @escaping (IOEvents) -> Void) {
        self.fd = fd
        self.ownership = ownership
        self.epoch = epoch
        self.handler = handler
    }
}

extension EventLoop {
    /// Starts watching `fd`; `handler` runs on the loop thread with the conditions that hold, for as long as
    /// they hold (level-triggered). Loop thread only.
    ///
    /// - Throws: `EventLoopError.invalidFileDescriptor` (negative or closed fd),
    ///   `.alreadyRegistered` (also when the fd was closed without `unregister` and its number reused:
    ///   `unregister` it first), `.notPollable` (regular file, directory, or a device without poll support
    ///   such as `/dev/null`), `.terminated` (the loop is terminating), `.outOfMemory`, `.system`.
    public func register(fd: Int32, events: IOEvents, ownership: FDOwnership = .borrowed,
                         handler: @escaping (IOEvents) -> Void) throws {
        preconditionInEventLoop("EventLoop.register(fd:events:ownership:handler:)")
        guard let poller, phase == .ticking, lk_wake_state_load(wake) != LK_STATE_TERMINATING else {
            throw EventLoopError.terminated
        }
        // The table decides, not the kernel: epoll forgets an fd closed while registered, and would accept
        // its reused number again, overwriting the registration and counting it twice.
        if Int(fd) >= 0, Int(fd) < registrations.count, registrations[Int(fd)] != nil {
            throw EventLoopError.alreadyRegistered(fd: fd)
        }
        try Self.check(lk_poller_add(poller, fd, events.rawValue), fd: fd, operation: "register")
        let index = Int(fd)
        if index >= registrations.count {
            registrations.append(contentsOf: repeatElement(nil, count: Swift.max(index + 1, registrations.count * 2) - registrations.count))
        }
        registrations[index] = FDRegistration(fd: fd, ownership: ownership, epoch: pollEpoch, handler: handler)
        registeredCount += 1
    }

    /// Changes the conditions watched on a registered `fd`. Loop thread only.
    ///
    /// - Throws: `EventLoopError.notRegistered`, `.invalidFileDescriptor`, `.outOfMemory`, `.system` (the
    ///   kernel refused the change; the previous interest stays in force).
    public func modify(fd: Int32, events: IOEvents) throws {
        preconditionInEventLoop("EventLoop.modify(fd:events:)")
        guard let poller, Int(fd) >= 0, Int(fd) < registrations.count, registrations[Int(fd)] != nil else {
            throw EventLoopError.notRegistered(fd: fd)
        }
        try Self.check(lk_poller_modify(poller, fd, events.rawValue), fd: fd, operation: "modify")
    }

    /// Stops watching `fd` (it is not closed, whatever its ownership). Safe from inside the fd's own
    /// handler: no further event reaches it. Loop thread only.
    ///
    /// - Throws: `EventLoopError.notRegistered`; `.outOfMemory` or `.system` when the kernel refused the
    ///   removal (epoll_ctl failed; io_uring's submission queue was full and could not be flushed: EBUSY).
    ///   The fd is still registered then, and `unregister` may be called again.
    public func unregister(fd: Int32) throws {
        preconditionInEventLoop("EventLoop.unregister(fd:)")
        guard let poller, Int(fd) >= 0, Int(fd) < registrations.count, registrations[Int(fd)] != nil else {
            throw EventLoopError.notRegistered(fd: fd)
        }
        // ENOENT here means the fd was closed while registered and epoll already forgot it: done either way.
        // Any other failure leaves the registration in place, consistent with the poller.
        let rc = lk_poller_remove(poller, fd)
        if rc != -ENOENT { try Self.check(rc, fd: fd, operation: "unregister") }
        registrations[Int(fd)] = nil
        registeredCount -= 1
    }

    /// Unregisters every fd (closing the owned ones). Loop thread, during termination.
    func unregisterAll() {
        for case let registration? in registrations {
            if let poller { _ = lk_poller_remove(poller, registration.fd) }
            if registration.ownership == .owned { Glibc.close(registration.fd) }
        }
        registrations.removeAll()
        registeredCount = 0
    }

    static func check(_ rc: Int32, fd: Int32, operation: String) throws {
        switch -rc {
        case 0: return
        case EBADF: throw EventLoopError.invalidFileDescriptor(fd: fd)
        case EEXIST: throw EventLoopError.alreadyRegistered(fd: fd)
        case EPERM: throw EventLoopError.notPollable(fd: fd)
        case ENOENT: throw EventLoopError.notRegistered(fd: fd)
        case ENOMEM: throw EventLoopError.outOfMemory
        default: throw EventLoopError.system(operation: operation, errno: -rc)
        }
    }
}
