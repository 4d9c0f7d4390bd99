// echo-server [port]: a TCP echo server on 127.0.0.1 until SIGINT or SIGTERM.
//
// The top level is synchronous on purpose: it blocks SIGINT and SIGTERM on the main thread before any
// other thread exists, so every thread (the loop's, Swift's concurrency pool) inherits the mask and the
// signals wait for `sigwait`. (An async top level hands the main thread to the concurrency runtime, whose
// threads would not have the mask.)
import EchoServer
import Glibc
import LoopKit

/// Writes a line straight to an fd (unbuffered, so a script reading the port sees it at once).
func say(_ line: String, to fd: Int32 = 1) {
    var text = line + "\n"
    text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

/// The result of a task, handed to a thread that blocks until it is there.
final class Outcome<T: Sendable>: @unchecked Sendable { // written before sem_post, read after sem_wait
    let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    var result: Result<T, any Error>?
    init() { sem_init(done, 0, 0) }
    deinit { sem_destroy(done); done.deallocate() }
}

/// Runs `operation` as a task and blocks the calling thread until it returns.
func runBlocking<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Outcome<T>()
    Task {
        do { outcome.result = .success(try await operation()) } catch { outcome.result = .failure(error) }
        sem_post(outcome.done)
    }
    while sem_wait(outcome.done) != 0 {} // EINTR
    return try outcome.result!.get()
}

let arguments = CommandLine.arguments
guard arguments.count <= 2, let port = arguments.count == 2 ? UInt16(arguments[1]) : 0 else {
    say("usage: echo-server [port]", to: 2)
    exit(2)
}

var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGINT)
sigaddset(&signals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &signals, nil)

do {
    let loop = try EventLoop()
    try loop.start()
    let server = EchoServer(loop: loop)
    let bound = try runBlocking { try await server.start(port: port) }
    say("echo-server: listening on 127.0.0.1:\(bound)")

    var signal: Int32 = 0
    sigwait(&signals, &signal)
    say("echo-server: signal \(signal), shutting down")
    try runBlocking { try await server.stop() }
    loop.shutdown()
} catch {
    say("echo-server: \(error)", to: 2)
    exit(1)
}
