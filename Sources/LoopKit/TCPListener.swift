internal import CLoopCore
import Glibc

/// A listening TCP socket whose accepted connections arrive on its loop: through a callback
/// (`accept(_:)`) or as an asynchronous sequence (`connections()`). On io_uring one multishot accept
/// request serves every connection; on epoll, readiness and accept4.
///
/// Failures that pass — no file descriptor to spare (`.tooManyOpenFiles`), no memory, a connection aborted
/// before it was accepted — do not stop the listener: the callback gets the error, and accepting resumes
/// after `acceptRetryDelay` (a loop timer), so a listener out of fds serves again once some are freed.
///
/// Threading: created on any thread; `accept`, `close` and the properties not marked otherwise on the loop
/// thread only (a task, a handler, or an actor pinned to the loop). An open listener is kept alive by its
/// loop; the loop closes it when it terminates.
public final class TCPListener: @unchecked Sendable { // state confined to the loop thread
    /// The loop whose thread runs the listener's callbacks.
    public let loop: EventLoop
    /// The bound port (the kernel's choice when bound to port 0). Any thread.
    public let port: UInt16
    /// How long accepting pauses after a failure that passes. Default 10 ms.
    public var acceptRetryDelay: Duration = .milliseconds(10)

    private let fd: Int32
    private var handler: ((Result<TCPConnection, EventLoopError>) -> Void)?
    private var acceptOperation: IOOperation?
    private var retryTimer: TimerID?
    private var isClosing = false
    private var isClosed = false
    private var closeWaiters: [() -> Void] = []

    /// Binds and listens on `host`:`port` (a numeric IPv4 or IPv6 address; port 0: any free port), with
    /// SO_REUSEADDR. Any thread. Nothing is accepted until `accept(_:)` or `connections()`.
    ///
    /// - Throws: `EventLoopError.invalidAddress`; `.tooManyOpenFiles`; `.system` (socket, bind — EADDRINUSE
    ///   among others —, listen or getsockname failed).
    public init(host: String = "127.0.0.1", port: UInt16 = 0, backlog: Int32 = 1024, on loop: EventLoop) throws(EventLoopError) {
        let address = try SocketAddress(host: host, port: port)
        let fd = try TCPSocket.make(family: address.family)
        TCPSocket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        do throws(EventLoopError) {
            guard address.withSockaddr({ bind(fd, $0, $1) }) == 0 else { throw EventLoopError.socket(errno, "bind") }
            guard listen(fd, backlog) == 0 else { throw EventLoopError.socket(errno, "listen") }
            self.port = try TCPSocket.localPort(fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.fd = fd
        self.loop = loop
    }

    deinit {
        if !isClosed && handler == nil { Glibc.close(fd) } // never accepted: the loop never knew it
    }

    /// Starts accepting: `handler` runs on the loop thread with each accepted connection, or with a failure.
    /// After a failure that passes (see the type's comment) accepting resumes by itself; after any other
    /// (`.system`, e.g. EINVAL) it stops. Loop thread only; once per listener.
    ///
    /// A listener that cannot start (the loop is terminating, out of memory) reports the error to
    /// `handler` at once.
    public func accept(_ handler: @escaping (Result<TCPConnection, EventLoopError>) -> Void) {
        loop.preconditionInEventLoop("TCPListener.accept")
        precondition(self.handler == nil && !isClosing, "TCPListener.accept: called twice, or after close()")
        self.handler = handler
        loop.completions.sockets[ObjectIdentifier(self)] = self
        arm()
    }

    /// The accepted connections as an asynchronous sequence, which ends when the listener is closed (or the
    /// loop terminates) and throws a failure that stops accepting (an `EventLoopError`). Failures that pass
    /// are retried without appearing in the sequence. Dropping the sequence (ending its iteration, cancelling
    /// the iterating task) closes the listener. Any thread; once per listener (it calls `accept(_:)` on the
    /// loop).
    public func connections() -> AsyncThrowingStream<TCPConnection, any Error> {
        let (stream, continuation) = AsyncThrowingStream<TCPConnection, any Error>.makeStream()
        continuation.onTermination = { [loop, self] _ in
            if loop.inEventLoop { close() } else { _ = try? loop.submit { self.close() } }
        }
        let start = UncheckedBox { [self] in
            accept { result in
                switch result {
                case .success(let connection):
                    if case .terminated = continuation.yield(connection) { connection.close() }
                case .failure(.closed): continuation.finish()
                case .failure(let error) where Self.passes(error): break
                case .failure(let error): continuation.finish(throwing: error)
                }
            }
        }
        if loop.inEventLoop {
            start.value()
        } else {
            do { try loop.submit { start.value() } } catch { continuation.finish(throwing: error) }
        }
        return stream
    }

    /// Stops accepting and closes the socket (connections already accepted stay open); `completion` runs on
    /// the loop thread once the fd is closed. The handler gets `.closed` once. Loop thread only.
    public func close(_ completion: (() -> Void)? = nil) {
        loop.preconditionInEventLoop("TCPListener.close")
        if isClosed {
            completion?()
            return
        }
        if let completion { closeWaiters.append(completion) }
        guard !isClosing else { return }
        isClosing = true
        if let retryTimer { try? loop.cancelTimer(retryTimer) }
        retryTimer = nil
        if let acceptOperation { loop.cancelIO(acceptOperation) } else { finishClose() }
    }

    /// `close(_:)` from any thread, returning once the socket is closed.
    ///
    /// - Throws: `EventLoopError.terminated` when the loop no longer runs tasks (it closed the listener).
    public func close() async throws(EventLoopError) {
        let _: Bool = try await loop.loopOperation { complete in
            self.close { complete(.success(true)) }
            return nil
        }
    }

    // MARK: Loop thread

    static func passes(_ error: EventLoopError) -> Bool {
        switch error {
        case .tooManyOpenFiles, .outOfMemory: return true
        case .system(_, let e): return e == ENOBUFS || e == ECONNABORTED || e == EPERM || e == EPROTO || e == EINTR
        default: return false
        }
    }

    private func arm() {
        guard !isClosing else { return }
        do {
            acceptOperation = try loop.startIO("accept", { lk_io_accept($0, fd, $1) }) { [self] completion in
                accepted(completion)
            }
        } catch {
            fail(error)
        }
    }

    private func accepted(_ completion: IOCompletion) {
        if completion.result >= 0 {
            let connection = TCPConnection(loop: loop, fd: completion.result)
            if isClosing { connection.close() } else { handler?(.success(connection)) }
        }
        guard !completion.continues else { return }
        acceptOperation = nil
        if isClosing {
            finishClose()
        } else if completion.result < 0 {
            fail(EventLoopError.socket(-completion.result, "accept"))
        } else {
            arm() // the kernel ended the multishot request: the sequence goes on
        }
    }

    private func fail(_ error: EventLoopError) {
        guard !isClosing else { return }
        handler?(.failure(error))
        guard Self.passes(error), !isClosing else { return }
        retryTimer = try? loop.scheduleTimer(after: acceptRetryDelay) { [self] in
            retryTimer = nil
            arm()
        }
    }

    private func finishClose() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
        loop.completions.sockets[ObjectIdentifier(self)] = nil
        let handler = self.handler
        self.handler = nil
        handler?(.failure(.closed))
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters { waiter() }
    }
}

extension TCPListener: LoopSocket {
    func loopTerminated() {
        isClosing = true
        acceptOperation = nil
        finishClose()
    }
}
