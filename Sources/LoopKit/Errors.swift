import Glibc

/// Errors LoopKit's API throws. Each throwing API lists the cases it can produce.
///
/// Misuse that is a programming error (calling a loop-thread-only API from another thread, for example)
/// is not an error value: it stops the process with a `precondition` message that names the misuse.
public enum EventLoopError: Error, Equatable, Sendable {
    /// The loop has terminated (or, for timers, has begun terminating): it accepts no more work.
    case terminated
    /// `run()` was called on a loop that is already running.
    case alreadyRunning
    /// `run()` was called from a thread that is already running a loop, e.g. from inside a task.
    case reentrantRun
    /// `cancelTimer(_:)` was given a timer that has already fired, was cancelled, or never existed.
    case timerNotFound
    /// `register` was given a file descriptor that is already registered with this loop.
    case alreadyRegistered(fd: Int32)
    /// `modify` or `unregister` was given a file descriptor that is not registered with this loop.
    case notRegistered(fd: Int32)
    /// The file descriptor is negative or not open.
    case invalidFileDescriptor(fd: Int32)
    /// The file descriptor cannot be polled for readiness (a regular file, a directory, or a device without
    /// poll support such as `/dev/null`).
    case notPollable(fd: Int32)
    /// The requested poll backend cannot be set up here; `errno` says why (e.g. ENOSYS, EPERM).
    case backendUnavailable(PollBackend, errno: Int32)
    /// Memory for a queue node, an overflow slot or a table could not be allocated; nothing was queued.
    case outOfMemory
    /// A system call failed unexpectedly.
    case system(operation: String, errno: Int32)
    /// A socket operation was cancelled: by its `cancel…` method, by the cancellation of the awaiting task, by
    /// closing its connection or listener, or by the loop's termination. For a read, no data is lost (a later
    /// read returns it); for a write, how much of it was sent is unknown.
    case cancelled
    /// A socket operation's timeout (a loop timer) passed first. As for `.cancelled`, a read loses no data.
    case timedOut
    /// The peer reset the connection (ECONNRESET), or a write found it gone (EPIPE).
    case connectionReset
    /// Nothing listens at the address connected to (ECONNREFUSED).
    case connectionRefused
    /// The process or the system has no file descriptor to spare (EMFILE, ENFILE). A listener retries.
    case tooManyOpenFiles
    /// The connection or listener is closed (or its writing side shut down, for a write).
    case closed
    /// The host is not an IPv4 or IPv6 address in numeric form.
    case invalidAddress(String)
}

extension EventLoopError: CustomStringConvertible {
    /// A one-line account of the error, with the system's text for an errno.
    public var description: String {
        switch self {
        case .terminated: return "the event loop has terminated"
        case .alreadyRunning: return "the event loop is already running"
        case .reentrantRun: return "run() was called from a thread that is already running an event loop"
        case .timerNotFound: return "no pending timer has this id"
        case .alreadyRegistered(let fd): return "fd \(fd) is already registered"
        case .notRegistered(let fd): return "fd \(fd) is not registered"
        case .invalidFileDescriptor(let fd): return "fd \(fd) is not an open file descriptor"
        case .notPollable(let fd): return "fd \(fd) cannot be polled (regular file, directory or device without poll support)"
        case .backendUnavailable(let backend, let e):
            return "poll backend \(backend) is unavailable: \(String(cString: strerror(e))) (errno \(e))"
        case .outOfMemory: return "out of memory"
        case .system(let operation, let e):
            return "\(operation) failed: \(String(cString: strerror(e))) (errno \(e))"
        case .cancelled: return "the operation was cancelled"
        case .timedOut: return "the operation timed out"
        case .connectionReset: return "the connection was reset by the peer"
        case .connectionRefused: return "the connection was refused"
        case .tooManyOpenFiles: return "no file descriptor available (EMFILE/ENFILE)"
        case .closed: return "the socket is closed"
        case .invalidAddress(let host): return "\(host) is not a numeric IPv4 or IPv6 address"
        }
    }
}

extension EventLoopError {
    /// The error for a socket operation's negative errno result.
    static func socket(_ errno: Int32, _ operation: String) -> EventLoopError {
        switch errno {
        case ECANCELED: return .cancelled
        case ECONNRESET, EPIPE: return .connectionReset
        case ECONNREFUSED: return .connectionRefused
        case EMFILE, ENFILE: return .tooManyOpenFiles
        case ETIMEDOUT: return .timedOut
        case ENOMEM: return .outOfMemory
        case EBADF: return .closed
        default: return .system(operation: operation, errno: errno)
        }
    }
}
