import Glibc

/// A joinable POSIX thread running a closure (the soak uses no Foundation).
struct JoinableThread {
    private let handle: pthread_t

    private final class Start {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread. Stops the process if the thread cannot be created: the soak cannot run
    /// without its threads. `name` appears in the message.
    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            start.body()
            return nil
        }, start)
        guard rc == 0 else {
            Unmanaged<Start>.fromOpaque(start).release()
            fatalError("loopkit-soak: cannot start thread \(name) (pthread_create: \(rc))")
        }
        handle = thread
    }

    func join() {
        _ = pthread_join(handle, nil)
    }
}
