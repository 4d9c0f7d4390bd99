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
        }
    }
}
