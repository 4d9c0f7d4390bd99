import CLibUV

/// libuv: a dedicated pthread running `uv_run(UV_RUN_DEFAULT)` on its own `uv_loop_t`. Submitters append
/// to a mutex-guarded Swift array (`MutexQueueEntrant`) and call `uv_async_send` (thread-safe; libuv
/// coalesces sends into one callback, so its wake syscalls are invisible here and `wakeSyscalls` stays nil).
/// The async callback swaps the array out under the lock and runs the batch. Shutdown raises a flag and
/// sends; the callback that sees it runs the last batch and closes the handle, so `uv_run` returns.
///
/// Threading: `submit` from any thread between `start()` and `shutdown()`; `start`/`shutdown` from one
/// controlling thread. The loop and handle are touched only by the loop thread while it runs (except
/// `uv_async_send`), and by the controlling thread before/after.
final class LibUVEntrant: MutexQueueEntrant, Entrant, @unchecked Sendable {
    let name = "libuv"
    private let loop = UnsafeMutablePointer<uv_loop_t>.allocate(capacity: 1)
    private let async = UnsafeMutablePointer<uv_async_t>.allocate(capacity: 1)
    private var batch: [QueuedTask] = [] // loop thread only

    deinit {
        async.deallocate()
        loop.deallocate()
    }

    func start() throws {
        stopping = false // no other thread runs yet
        var rc = uv_loop_init(loop)
        guard rc == 0 else { throw PeerError.libuv(rc) }
        rc = uv_async_init(loop, async, { handle in
            Unmanaged<LibUVEntrant>.fromOpaque(handle!.pointee.data).takeUnretainedValue().drain()
        })
        guard rc == 0 else { uv_loop_close(loop); throw PeerError.libuv(rc) }
        async.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        try startLoopThread { [self] in uv_run(loop, UV_RUN_DEFAULT) } // keeps self alive while it runs
    }

    func submit(_ task: @escaping @Sendable () -> Void) {
        append(task)
        uv_async_send(async)
    }

    func shutdown() {
        setStopping(true)
        uv_async_send(async)
        joinLoopThread()
        uv_loop_close(loop)
    }

    /// The async callback, on the loop thread. Once `stopping` is seen every submit has already appended,
    /// so this batch is the last one.
    private func drain() {
        let stop = takePending(into: &batch)
        for task in batch { task.run() }
        batch.removeAll(keepingCapacity: true)
        if stop { uv_close(UnsafeMutableRawPointer(async).assumingMemoryBound(to: uv_handle_t.self), nil) }
    }
}
