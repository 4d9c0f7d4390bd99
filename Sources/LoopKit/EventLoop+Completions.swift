internal import CLoopCore
import Glibc
internal import LoopKitConcurrencyHelpers

// Completion-based socket operations (CLoopCore's lk_io.h) on the loop: the table of operations in flight,
// the receive buffer pool, the dispatch of completions in the tick's I/O phase, and the end of everything at
// termination. TCPListener and TCPConnection are built on it (docs/design.md, "the completion path").
//
// An operation is started with a token; its completions come back from lk_poller_wait's poll and run its
// handler on the loop thread, right after the readiness handlers of the same poll. A completion that does
// not continue the operation (`continues == false`) is its last, and removes its handler.

/// One completion of a socket operation.
struct IOCompletion {
    /// >= 0 (bytes, an fd, 0) or -errno.
    let result: Int32
    /// More completions of the same operation follow.
    let continues: Bool
    /// A receive buffer the handler now owns (it must wrap it in an `IOBuffer` or release it).
    let buffer: UInt32?
}

/// A started operation, for cancellation.
struct IOOperation {
    let id: Int64
    let token: UInt64
}

/// Something the loop closes when it terminates: a listener or connection still open then.
protocol LoopSocket: AnyObject {
    /// Loop thread, during termination, after every operation has ended: close the fd now.
    func loopTerminated()
}

/// The receive buffers' memory. Owned by the loop and by every `IOBuffer` that points into it, so that a
/// buffer outliving the loop stays valid.
final class BufferPool: @unchecked Sendable { // immutable after init
    let memory: UnsafeMutableRawPointer
    let count: Int
    let size: Int

    init(count: Int, size: Int) {
        self.count = count
        self.size = size
        memory = .allocate(byteCount: count * size, alignment: 64)
    }

    deinit { memory.deallocate() }
}

/// The loop's socket operations. Loop thread only.
final class CompletionTable {
    struct Entry {
        var id: Int64
        let handler: (IOCompletion) -> Void
    }

    var entries: [UInt64: Entry] = [:]
    var nextToken: UInt64 = 0
    var pool: BufferPool?
    var sockets: [ObjectIdentifier: any LoopSocket] = [:]
    let batchCapacity = 256
    let batch: UnsafeMutablePointer<lk_io_completion>

    init() { batch = .allocate(capacity: batchCapacity) }
    deinit { batch.deallocate() }
}

extension EventLoop {
    /// Readiness registrations or socket operations exist: polls must happen even when tasks are queued.
    var hasIOInterest: Bool { registeredCount > 0 || !completions.entries.isEmpty }

    /// Whether receives use the kernel's provided-buffer ring (io_uring, where supported and configured);
    /// nil before the first socket operation or off the loop's run. Loop thread only.
    public var usesBufferRing: Bool? {
        preconditionInEventLoop("EventLoop.usesBufferRing")
        guard let poller, completions.pool != nil else { return nil }
        return lk_io_uses_buffer_ring(poller)
    }

    /// Receive buffers lent out: delivered in `IOBuffer`s not yet released. Loop thread only.
    public var receiveBuffersInUse: Int {
        preconditionInEventLoop("EventLoop.receiveBuffersInUse")
        guard let poller else { return 0 }
        return Int(lk_io_buffers_lent(poller))
    }

    /// The poller, set up for socket operations on first use.
    private func ioPoller() throws(EventLoopError) -> OpaquePointer {
        guard let poller, phase == .ticking, lk_wake_state_load(wake) != LK_STATE_TERMINATING else {
            throw .terminated
        }
        if completions.pool == nil {
            let count = configuration.readBufferCount, size = configuration.readBufferSize
            precondition(count > 0 && count <= 32768 && count & (count - 1) == 0,
                         "EventLoop.Configuration.readBufferCount must be a power of two in 1...32768")
            precondition(size > 0 && size <= Int(Int32.max), "EventLoop.Configuration.readBufferSize must be positive")
            let pool = BufferPool(count: count, size: size)
            let flags: UInt32 = configuration.usesBufferRing ? 0 : UInt32(LK_IO_NO_BUFFER_RING)
            let rc = lk_io_setup(poller, pool.memory, UInt32(count), UInt32(size), flags)
            guard rc == 0 else { throw Self.error(rc, "io setup") }
            completions.pool = pool
        }
        return poller
    }

    /// Starts an operation: `start` calls lk_io_* with the poller and the token. Loop thread only.
    ///
    /// - Throws: `.terminated` (the loop is terminating), `.outOfMemory`, `.system`.
    func startIO(_ operation: String, _ start: (OpaquePointer, UInt64) -> Int64,
                 handler: @escaping (IOCompletion) -> Void) throws(EventLoopError) -> IOOperation {
        preconditionInEventLoop("EventLoop.startIO")
        let poller = try ioPoller()
        completions.nextToken &+= 1
        let token = completions.nextToken
        completions.entries[token] = CompletionTable.Entry(id: -1, handler: handler)
        let id = start(poller, token)
        guard id >= 0 else {
            completions.entries[token] = nil
            throw Self.error(Int32(id), operation)
        }
        completions.entries[token]?.id = id
        return IOOperation(id: id, token: token)
    }

    /// Asks for the end of an operation; its handler gets one final completion (-ECANCELED, or its own
    /// result when it finished first). Loop thread only.
    func cancelIO(_ operation: IOOperation) {
        guard let poller, completions.entries[operation.token] != nil else { return }
        let rc = lk_io_cancel(poller, operation.id)
        if rc == -EBUSY || rc == -ENOMEM {
            // No room for the cancellation now (a full submission queue): try again from the next tick.
            _ = try? submitInternal { [self] in cancelIO(operation) }
        }
    }

    /// Runs the handlers of the completions the last poll collected. Loop thread, I/O phase.
    @discardableResult
    func dispatchCompletions() -> Int {
        guard let poller, !completions.entries.isEmpty else { return 0 }
        var total = 0
        while true {
            let n = Int(lk_io_completions(poller, completions.batch, Int32(completions.batchCapacity)))
            for i in 0..<n {
                let c = completions.batch[i]
                let continues = c.flags & UInt32(LK_IO_F_MORE) != 0
                let buffer = c.flags & UInt32(LK_IO_F_BUFFER) != 0 ? c.buffer : nil
                let entry = continues ? completions.entries[c.token] : completions.entries.removeValue(forKey: c.token)
                guard let entry else {
                    if let buffer { lk_io_buffer_release(poller, buffer) }
                    continue
                }
                entry.handler(IOCompletion(result: c.result, continues: continues, buffer: buffer))
                if configuration.strictMicrotaskOrdering { drainMicrotasks() }
            }
            total += n
            if n < completions.batchCapacity { return total }
        }
    }

    /// Gives a receive buffer back (an `IOBuffer`'s release). Loop thread; nothing once the poller is gone.
    func releaseBuffer(_ id: UInt32, of pool: BufferPool) {
        guard let poller, completions.pool === pool else { return }
        lk_io_buffer_release(poller, id)
    }

    /// Termination: cancels every operation, waits for their final completions (running their handlers,
    /// which see `.cancelled`), then closes the sockets still open. Loop thread, in finish().
    func finishCompletions() {
        if let poller, !completions.entries.isEmpty {
            for entry in completions.entries.values where entry.id >= 0 { _ = lk_io_cancel(poller, entry.id) }
            // Cancellation completes promptly (the kernel answers each cancel request at once); the bound
            // only keeps a kernel that never answers from hanging termination.
            let deadline = lk_clock_now_ns() + 5_000_000_000
            while !completions.entries.isEmpty && lk_clock_now_ns() < deadline {
                var woken = false
                _ = waitForIO(timeoutNanoseconds: 10_000_000, woken: &woken)
                dispatchCompletions()
            }
        }
        let sockets = completions.sockets.values
        completions.sockets.removeAll()
        for socket in sockets { socket.loopTerminated() }
    }

    /// Runs `start` on the loop thread and suspends until it completes; task cancellation runs the cancel
    /// action `start` returned (on the loop thread). Any thread or task.
    func loopOperation<T: Sendable>(
        _ start: @escaping (_ complete: @escaping (Result<T, EventLoopError>) -> Void) -> (() -> Void)?
    ) async throws(EventLoopError) -> T {
        let shared = OperationCancellation()
        let outcome = Outcome<Result<T, EventLoopError>>()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                outcome.install(continuation)
                // Answers `.terminated` if the task that starts the operation is released unrun (close()).
                let unstarted = OnRelease { outcome.resume(.failure(.terminated)) }
                let run = UncheckedBox<() -> Void> {
                    unstarted.disarm()
                    if shared.isCancelled {
                        outcome.resume(.failure(.cancelled))
                        return
                    }
                    let cancel = start { result in
                        shared.finish() // a cancellation after this point has nothing left to cancel
                        outcome.resume(result)
                    }
                    if let cancel, shared.install(UncheckedBox(cancel)) { cancel() }
                }
                if inEventLoop {
                    run.value()
                } else {
                    do { try submit { run.value() } } catch { outcome.resume(.failure(.terminated)) }
                }
            }
        } onCancel: {
            guard let cancel = shared.cancel() else { return }
            if inEventLoop { cancel.value() } else { _ = try? submit { cancel.value() } }
        }
        return try outcome.value.get()
    }
}

/// A value handed between threads that is only ever used on the loop thread.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The result of an awaited loop operation: stored under a lock by the first `resume`, which then resumes
/// the waiting task (later calls do nothing); the task reads it under the same lock. The result does not
/// travel through the continuation: the lock makes its hand-over visible to ThreadSanitizer, which does not
/// see the ordering the concurrency runtime provides between a resume and the resumed task.
final class Outcome<T: Sendable>: Sendable {
    private let state = Locked<(continuation: CheckedContinuation<Void, Never>?, value: T?)>((nil, nil))

    /// Before any `resume` can run.
    func install(_ continuation: CheckedContinuation<Void, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func resume(_ value: T) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.value == nil else { return nil }
            state.value = value
            return state.continuation.take()
        }
        continuation?.resume()
    }

    /// After the continuation was resumed.
    var value: T { state.withLock { $0.value! } }
}

/// Runs an action when released, unless disarmed first.
final class OnRelease: Sendable {
    private let action: Locked<(@Sendable () -> Void)?>

    init(_ action: @escaping @Sendable () -> Void) { self.action = Locked(action) }

    func disarm() { action.withLock { $0 = nil } }

    deinit { action.withLock { $0.take() }?() }
}

/// The cancellation state an awaited loop operation shares with its task's cancellation handler.
final class OperationCancellation: Sendable {
    private let state = Locked<(cancelled: Bool, finished: Bool, action: UncheckedBox<() -> Void>?)>((false, false, nil))

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Installs the operation's cancel action, unless the operation has finished; true when the task was
    /// cancelled meanwhile (run it now).
    func install(_ action: UncheckedBox<() -> Void>) -> Bool {
        state.withLock { state in
            guard !state.finished else { return false }
            state.action = action
            return state.cancelled
        }
    }

    /// The operation completed: a later cancellation of the task runs nothing (the action could affect
    /// other operations, e.g. cancel writes queued after this one).
    func finish() {
        state.withLock { state in
            state.finished = true
            state.action = nil
        }
    }

    /// Marks the task cancelled; returns the action to run, if installed.
    func cancel() -> UncheckedBox<() -> Void>? {
        state.withLock { state in
            state.cancelled = true
            return state.action.take()
        }
    }
}
