internal import CLoopCore

/// The io_uring / epoll backend LoopKit polls with.
public enum PollBackend: Sendable, Equatable {
    case auto, epoll, ioUring
}
