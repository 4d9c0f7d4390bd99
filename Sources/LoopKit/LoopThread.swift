internal import LoopKitConcurrencyHelpers

/// Starts the detached thread named `name` that runs a loop (`EventLoop.start()`).
/// - Throws: `EventLoopError.system(operation: "pthread_create", errno:)` when it cannot be created.
func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) throws(EventLoopError) {
    do {
        try startDetachedThread(name: name, body)
    } catch {
        throw .system(operation: "pthread_create", errno: error.errno)
    }
}
