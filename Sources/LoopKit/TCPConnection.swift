internal import CLoopCore
import Glibc

/// A TCP connection served by its loop with completion-based operations (io_uring: multishot receive into
/// the loop's buffer ring where supported, send, close; epoll: readiness and non-blocking calls).
///
/// Reading: `read` returns the next chunk received, in an `IOBuffer` (the kernel's buffer, not a copy), or
/// nil at end of stream; an error is a thrown/returned `EventLoopError`, distinct from end of stream. The
/// connection receives ahead of the reader into `maxQueuedChunks` buffers, then stops receiving until the
/// reader catches up. Chunks the kernel delivered before the stop took effect come on top: one or two with
/// single-shot receives (epoll, io_uring without a buffer ring); with a buffer ring, as many as the kernel
/// filled while the loop was busy, at most the pool (`Configuration.readBufferCount`), which is the memory
/// bound the loop guarantees whatever its peers do. A read's timeout or cancellation loses no data.
///
/// Writing: writes go out in order, one send in flight at a time; each completes once all its bytes are
/// sent. `pendingWriteBytes` is what is queued and not yet sent: a writer that waits for each write's
/// completion (or awaits it) before the next keeps it bounded — that is the backpressure. After a write
/// fails, times out or is cancelled, later writes fail too (how much was sent is unknown).
///
/// Closing: `close` cancels what is in flight — a pending read and every pending write complete with
/// `.cancelled` — waits for the kernel to give every operation back, then closes the fd. No buffer or fd
/// outlives it. An open connection is kept alive by its loop until it is closed; the loop closes connections
/// still open when it terminates.
///
/// Threading: every method runs on the loop thread (a task, a handler, or an actor pinned to the loop with
/// `nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }`), except the `async`
/// forms, which hop onto the loop from anywhere. Callbacks run on the loop thread, possibly before the call
/// that started them returns.
public final class TCPConnection: @unchecked Sendable { // state confined to the loop thread
    /// The loop whose thread serves the connection.
    public let loop: EventLoop
    /// Chunks received ahead of the reader before receiving pauses.
    public static let maxQueuedChunks = 4

    let fd: Int32
    private enum State { case open, closing, closed }
    private var state = State.open

    // Reading
    private var receiveOperation: IOOperation?
    private var pausing = false // the receive was cancelled because maxQueuedChunks are queued
    private var received: [IOBuffer] = []
    private var readEnd: Result<IOBuffer?, EventLoopError>? // end of stream or a failure, after `received`
    private var reader: ((Result<IOBuffer?, EventLoopError>) -> Void)?
    private var readTimer: TimerID?
    private var readSerial: UInt64 = 0

    // Writing
    private final class PendingWrite: @unchecked Sendable { // loop thread only
        let bytes: UnsafeRawBufferPointer
        let owned: UnsafeMutableRawBufferPointer? // a copy the write owns
        let buffer: IOBuffer?                     // or the received buffer it sends
        var sent = 0
        /// Why its send in flight was cancelled (`.timedOut`, `.cancelled`): the write ends with it however that
        /// send ends (the kernel may finish the send, in part, before the cancellation reaches it).
        var cancellation: EventLoopError?
        var timer: TimerID?
        let completion: (Result<Void, EventLoopError>) -> Void

        init(bytes: UnsafeRawBufferPointer, owned: UnsafeMutableRawBufferPointer?, buffer: IOBuffer?,
             completion: @escaping (Result<Void, EventLoopError>) -> Void) {
            self.bytes = bytes
            self.owned = owned
            self.buffer = buffer
            self.completion = completion
        }

        deinit { owned?.deallocate() }
    }
    private var writes: [PendingWrite] = []
    private var sendOperation: IOOperation?
    private var writeFailure: EventLoopError?
    private var shutdownRequested = false
    private var closeOperation: IOOperation?
    private var closeWaiters: [() -> Void] = []

    /// Bytes queued by `write` and not yet sent. Loop thread only.
    public private(set) var pendingWriteBytes = 0

    init(loop: EventLoop, fd: Int32) {
        self.loop = loop
        self.fd = fd
        TCPSocket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        loop.completions.sockets[ObjectIdentifier(self)] = self
    }

    /// Sets the kernel's send buffer (SO_SNDBUF; the kernel doubles it and applies its minimum). A small one
    /// makes a slow reader push the writer into backpressure early. Loop thread only; on an open connection.
    public func setSendBufferSize(_ bytes: Int) {
        loop.preconditionInEventLoop("TCPConnection.setSendBufferSize")
        precondition(state == .open, "TCPConnection.setSendBufferSize: the connection is closed")
        TCPSocket.setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: bytes))
    }

    /// Whether `close` has been called (or the loop closed the connection). Loop thread only.
    public var isClosed: Bool { state != .open }

    // MARK: Connecting

    /// Connects to `host`:`port` (numeric IPv4 or IPv6) and passes the connection to `completion` on the loop
    /// thread. Loop thread only.
    ///
    /// Errors: `.connectionRefused`, `.timedOut` (after `timeout`, a loop timer), `.invalidAddress`,
    /// `.tooManyOpenFiles`, `.terminated`, `.system`.
    ///
    /// - Returns: a handle whose `cancel()` ends the attempt with `.cancelled`.
    @discardableResult
    public static func connect(host: String = "127.0.0.1", port: UInt16, timeout: Duration? = nil, on loop: EventLoop,
                               _ completion: @escaping (Result<TCPConnection, EventLoopError>) -> Void) -> ConnectAttempt {
        ConnectAttempt(loop: loop, cancel: startConnect(host: host, port: port, timeout: timeout, on: loop, completion))
    }

    /// A connect in progress (`connect(host:port:timeout:on:_:)`).
    public struct ConnectAttempt: @unchecked Sendable { // the action runs on the loop thread only
        let loop: EventLoop
        let action: (() -> Void)?

        init(loop: EventLoop, cancel: (() -> Void)?) {
            self.loop = loop
            action = cancel
        }

        /// Ends the attempt with `.cancelled` unless it has completed. Loop thread only.
        public func cancel() {
            loop.preconditionInEventLoop("TCPConnection.ConnectAttempt.cancel")
            action?()
        }
    }

    /// `connect(host:port:timeout:on:_:)` from any thread or task; cancelling the task cancels the connect.
    ///
    /// - Throws: as the callback form reports, and `.cancelled`.
    public static func connect(host: String = "127.0.0.1", port: UInt16, timeout: Duration? = nil,
                               on loop: EventLoop) async throws(EventLoopError) -> TCPConnection {
        try await loop.loopOperation { complete in
            startConnect(host: host, port: port, timeout: timeout, on: loop, complete)
        }
    }

    /// Starts a connect; returns its cancel action.
    private static func startConnect(host: String, port: UInt16, timeout: Duration?, on loop: EventLoop,
                                     _ completion: @escaping (Result<TCPConnection, EventLoopError>) -> Void) -> (() -> Void)? {
        loop.preconditionInEventLoop("TCPConnection.connect")
        let address: SocketAddress, fd: Int32
        do {
            address = try SocketAddress(host: host, port: port)
            fd = try TCPSocket.make(family: address.family)
        } catch {
            completion(.failure(error))
            return nil
        }
        final class Attempt: @unchecked Sendable { // loop thread only
            var timer: TimerID?
            var timedOut = false
        }
        let attempt = Attempt()
        let operation: IOOperation
        do {
            operation = try loop.startIO("connect", { poller, token in
                address.withSockaddr { lk_io_connect(poller, fd, $0, $1, token) }
            }) { result in
                if let timer = attempt.timer { try? loop.cancelTimer(timer) }
                if result.result == 0 {
                    completion(.success(TCPConnection(loop: loop, fd: fd)))
                } else {
                    Glibc.close(fd)
                    completion(.failure(attempt.timedOut && result.result == -ECANCELED ? .timedOut : .socket(-result.result, "connect")))
                }
            }
        } catch {
            Glibc.close(fd)
            completion(.failure(error))
            return nil
        }
        if let timeout {
            attempt.timer = try? loop.scheduleTimer(after: timeout) {
                attempt.timedOut = true
                loop.cancelIO(operation)
            }
        }
        return { loop.cancelIO(operation) }
    }

    // MARK: Reading

    /// Passes the next chunk received to `completion` (nil: the peer closed its side, end of stream). One read
    /// at a time. Loop thread only.
    ///
    /// Errors: `.connectionReset`, `.timedOut` (after `timeout`), `.cancelled` (`cancelRead()`, or `close()`),
    /// `.closed` (the connection was closed before), `.terminated`, `.system`.
    public func read(timeout: Duration? = nil, _ completion: @escaping (Result<IOBuffer?, EventLoopError>) -> Void) {
        loop.preconditionInEventLoop("TCPConnection.read")
        precondition(reader == nil, "TCPConnection.read: a read is already pending (one read at a time)")
        guard state == .open else {
            completion(.failure(.closed))
            return
        }
        if !received.isEmpty {
            completion(.success(received.removeFirst()))
            receiveIfNeeded()
            return
        }
        if let readEnd {
            completion(readEnd)
            return
        }
        reader = completion
        readSerial &+= 1
        receiveIfNeeded()
        if let timeout, reader != nil {
            let serial = readSerial
            readTimer = try? loop.scheduleTimer(after: timeout) { [self] in
                readTimer = nil
                if readSerial == serial { completeRead(.failure(.timedOut)) }
            }
        }
    }

    /// `read(timeout:_:)` from any thread or task; cancelling the task cancels the read (no data is lost).
    ///
    /// - Returns: the next chunk, or nil at end of stream.
    /// - Throws: as the callback form reports.
    public func read(timeout: Duration? = nil) async throws(EventLoopError) -> IOBuffer? {
        try await loop.loopOperation { [self] complete in
            read(timeout: timeout) { complete($0) }
            let serial = readSerial
            return { [self] in if readSerial == serial { cancelRead() } }
        }
    }

    /// Completes a pending read with `.cancelled`; the data it would have returned stays for the next read.
    /// Loop thread only.
    public func cancelRead() {
        loop.preconditionInEventLoop("TCPConnection.cancelRead")
        completeRead(.failure(.cancelled))
    }

    private func completeRead(_ result: Result<IOBuffer?, EventLoopError>) {
        guard let reader else { return }
        self.reader = nil
        readSerial &+= 1
        if let readTimer { try? loop.cancelTimer(readTimer) }
        readTimer = nil
        reader(result)
    }

    /// Starts receiving when the reader may need data and nothing is in flight.
    private func receiveIfNeeded() {
        guard state == .open, receiveOperation == nil, readEnd == nil, received.count < Self.maxQueuedChunks else { return }
        do {
            receiveOperation = try loop.startIO("recv", { lk_io_recv($0, fd, $1) }) { [self] in receivedChunk($0) }
        } catch {
            readEnd = .failure(error)
            completeRead(.failure(error))
        }
    }

    private func receivedChunk(_ completion: IOCompletion) {
        if let id = completion.buffer, let pool = loop.completions.pool {
            let buffer = IOBuffer(loop: loop, pool: pool, id: id, count: Int(completion.result))
            if state == .open {
                if reader != nil, received.isEmpty {
                    completeRead(.success(buffer))
                } else {
                    received.append(buffer)
                }
            } // closing: the buffer goes back as `buffer` is released here
        }
        if completion.continues {
            if received.count >= Self.maxQueuedChunks, !pausing, let receiveOperation {
                pausing = true
                loop.cancelIO(receiveOperation)
            }
            return
        }
        receiveOperation = nil
        let wasPausing = pausing
        pausing = false
        if state != .open {
            closeIfIdle()
            return
        }
        if completion.result < 0 && (completion.result != -ECANCELED || !wasPausing) {
            readEnd = .failure(.socket(-completion.result, "recv"))
        } else if completion.result == 0 && completion.buffer == nil {
            readEnd = .success(nil)
        }
        if let readEnd, received.isEmpty { completeRead(readEnd) }
        receiveIfNeeded()
    }

    // MARK: Writing

    /// Queues `bytes` (copied) to be sent after the writes queued before; `completion` runs once every byte
    /// is sent, or with the failure. Loop thread only.
    ///
    /// Errors: `.connectionReset`, `.timedOut` (after `timeout`), `.cancelled` (`cancelWrites()`, `close()`),
    /// `.closed` (closed, or `shutdownWrite()` called), an earlier write's failure, `.terminated`, `.system`.
    public func write(_ bytes: some Collection<UInt8>, timeout: Duration? = nil,
                      _ completion: @escaping (Result<Void, EventLoopError>) -> Void = { _ in }) {
        loop.preconditionInEventLoop("TCPConnection.write")
        guard !bytes.isEmpty else {
            completion(failureForNewWrite().map { .failure($0) } ?? .success(()))
            return
        }
        let owned = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        if bytes.withContiguousStorageIfAvailable({ owned.copyMemory(from: UnsafeRawBufferPointer($0)) }) == nil {
            _ = owned.initializeMemory(as: UInt8.self, from: bytes)
        }
        enqueue(PendingWrite(bytes: UnsafeRawBufferPointer(owned), owned: owned, buffer: nil, completion: completion), timeout)
    }

    /// Queues a received buffer to be sent as it is (no copy: an echo). As `write(_:timeout:_:)`.
    public func write(_ buffer: IOBuffer, timeout: Duration? = nil,
                      _ completion: @escaping (Result<Void, EventLoopError>) -> Void = { _ in }) {
        loop.preconditionInEventLoop("TCPConnection.write")
        let bytes = buffer.withUnsafeBytes { $0 } // stable: the buffer is not reused while `buffer` lives
        enqueue(PendingWrite(bytes: bytes, owned: nil, buffer: buffer, completion: completion), timeout)
    }

    /// `write(_:timeout:_:)` from any thread or task, returning once every byte is sent: awaiting each write
    /// is the backpressure. Cancelling the task cancels every pending write of the connection (`cancelWrites()`).
    ///
    /// - Throws: as the callback form reports.
    public func write(_ bytes: [UInt8], timeout: Duration? = nil) async throws(EventLoopError) {
        let _: Bool = try await loop.loopOperation { [self] complete in
            write(bytes, timeout: timeout) { complete($0.map { true }) }
            return { [self] in cancelWrites() }
        }
    }

    /// `write(_ buffer:timeout:_:)` from any thread or task. As `write(_:timeout:)`.
    public func write(_ buffer: IOBuffer, timeout: Duration? = nil) async throws(EventLoopError) {
        let _: Bool = try await loop.loopOperation { [self] complete in
            write(buffer, timeout: timeout) { complete($0.map { true }) }
            return { [self] in cancelWrites() }
        }
    }

    /// Fails every pending write with `.cancelled` (the one being sent is cancelled in the kernel). Loop
    /// thread only.
    public func cancelWrites() {
        loop.preconditionInEventLoop("TCPConnection.cancelWrites")
        failQueuedWrites(.cancelled, keepingInFlight: sendOperation != nil)
        if let sendOperation, let write = writes.first {
            write.cancellation = write.cancellation ?? .cancelled
            loop.cancelIO(sendOperation)
        }
    }

    /// Shuts down the sending side (the peer reads end of stream) once the queued writes are sent; reading
    /// goes on. Later writes fail with `.closed`. Loop thread only.
    public func shutdownWrite() {
        loop.preconditionInEventLoop("TCPConnection.shutdownWrite")
        guard state == .open, !shutdownRequested else { return }
        shutdownRequested = true
        shutdownIfDrained()
    }

    private func failureForNewWrite() -> EventLoopError? {
        if state != .open || shutdownRequested { return .closed }
        return writeFailure
    }

    private func enqueue(_ write: PendingWrite, _ timeout: Duration?) {
        if let failure = failureForNewWrite() {
            write.completion(.failure(failure))
            return
        }
        writes.append(write)
        pendingWriteBytes += write.bytes.count
        if let timeout {
            write.timer = try? loop.scheduleTimer(after: timeout) { [self, weak write] in
                guard let write else { return }
                write.timer = nil
                writeTimedOut(write)
            }
        }
        sendIfNeeded()
    }

    private func writeTimedOut(_ write: PendingWrite) {
        if writes.first === write, let sendOperation {
            write.cancellation = write.cancellation ?? .timedOut
            loop.cancelIO(sendOperation)
        } else if let index = writes.firstIndex(where: { $0 === write }) {
            writes.remove(at: index)
            pendingWriteBytes -= write.bytes.count - write.sent
            write.completion(.failure(.timedOut))
        }
    }

    private func sendIfNeeded() {
        guard state == .open, sendOperation == nil, let write = writes.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: write.bytes[write.sent...])
        do {
            sendOperation = try loop.startIO("send", { poller, token in
                lk_io_send(poller, fd, rest.baseAddress, UInt32(clamping: rest.count), token)
            }) { [self] in sent($0) }
        } catch {
            writeFailure = error
            failQueuedWrites(error, keepingInFlight: false)
        }
    }

    private func sent(_ completion: IOCompletion) {
        sendOperation = nil
        guard let write = writes.first else { return closeIfIdle() }
        if completion.result >= 0 {
            write.sent += Int(completion.result)
            pendingWriteBytes -= Int(completion.result)
            if write.sent == write.bytes.count {
                writes.removeFirst()
                if let timer = write.timer { try? loop.cancelTimer(timer) }
                write.completion(.success(()))
            } else if let cancellation = write.cancellation {
                // Timed out or cancelled while this send finished in part: it ends here, unfinished.
                failWriteInFlight(write, cancellation)
            }
        } else {
            failWriteInFlight(write, completion.result == -ECANCELED
                ? (write.cancellation ?? .cancelled) : .socket(-completion.result, "send"))
        }
        if state != .open {
            // Closing: a send that completed (in part) after close() was called leaves its write unfinished.
            failQueuedWrites(.cancelled, keepingInFlight: false)
            return closeIfIdle()
        }
        sendIfNeeded()
        shutdownIfDrained()
    }

    /// Fails `write`, the first queued, whose send has ended, and every write queued after it; later writes
    /// fail too (how much of `write` the peer got is unknown).
    private func failWriteInFlight(_ write: PendingWrite, _ error: EventLoopError) {
        writeFailure = writeFailure ?? error
        writes.removeFirst()
        pendingWriteBytes -= write.bytes.count - write.sent
        if let timer = write.timer { try? loop.cancelTimer(timer) }
        write.completion(.failure(error))
        failQueuedWrites(error == .timedOut ? .cancelled : error, keepingInFlight: false)
    }

    /// Fails the queued writes (all, or all but the one in flight).
    private func failQueuedWrites(_ error: EventLoopError, keepingInFlight: Bool) {
        let failed = keepingInFlight ? Array(writes.dropFirst()) : writes
        writes = keepingInFlight ? Array(writes.prefix(1)) : []
        for write in failed {
            pendingWriteBytes -= write.bytes.count - write.sent
            if let timer = write.timer { try? loop.cancelTimer(timer) }
            write.completion(.failure(error))
        }
    }

    private func shutdownIfDrained() {
        guard shutdownRequested, state == .open, writes.isEmpty, sendOperation == nil else { return }
        Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    // MARK: Closing

    /// Closes the connection: a pending read and the pending writes complete with `.cancelled`, the kernel's
    /// operations are cancelled, and once they have all ended the fd is closed and `completion` runs (on the
    /// loop thread). Idempotent. Loop thread only.
    public func close(_ completion: (() -> Void)? = nil) {
        loop.preconditionInEventLoop("TCPConnection.close")
        if state == .closed {
            completion?()
            return
        }
        if let completion { closeWaiters.append(completion) }
        guard state == .open else { return }
        state = .closing
        completeRead(.failure(.cancelled))
        received.removeAll() // their buffers go back to the pool
        if let receiveOperation { loop.cancelIO(receiveOperation) }
        failQueuedWrites(.cancelled, keepingInFlight: sendOperation != nil)
        if let sendOperation { loop.cancelIO(sendOperation) }
        closeIfIdle()
    }

    /// `close(_:)` from any thread or task, returning once the fd is closed.
    ///
    /// - Throws: `EventLoopError.terminated` when the loop no longer runs tasks (it closed the connection).
    public func close() async throws(EventLoopError) {
        let _: Bool = try await loop.loopOperation { [self] complete in
            close { complete(.success(true)) }
            return nil
        }
    }

    /// Closing, and nothing in flight: close the fd (through the backend, so io_uring drops its reference).
    private func closeIfIdle() {
        guard state == .closing, receiveOperation == nil, sendOperation == nil, closeOperation == nil else { return }
        do {
            closeOperation = try loop.startIO("close", { lk_io_close($0, fd, $1) }) { [self] completion in
                // Cancelled before it ran (the loop's termination cancels everything): close it here.
                if completion.result == -ECANCELED { Glibc.close(fd) }
                closed()
            }
        } catch {
            Glibc.close(fd) // the loop is terminating: no operation can start
            closed()
        }
    }

    private func closed() {
        state = .closed
        closeOperation = nil
        loop.completions.sockets[ObjectIdentifier(self)] = nil
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters { waiter() }
    }
}

extension TCPConnection: LoopSocket {
    func loopTerminated() {
        guard state != .closed else { return }
        if state == .open {
            state = .closing
            completeRead(.failure(.terminated))
            received.removeAll()
            failQueuedWrites(.terminated, keepingInFlight: false)
        }
        receiveOperation = nil
        sendOperation = nil
        if closeOperation == nil { Glibc.close(fd) }
        closed()
    }
}
