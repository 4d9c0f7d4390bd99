import Glibc
import LoopKit
import Synchronization
import TestSupport

/// A manual monotonic clock for timer tests: time moves only when the test says so.
final class ManualClock: MonotonicClock, @unchecked Sendable {
    private let now = Atomic<Int64>(1_000_000_000)
    func nanoseconds() -> Int64 { now.load(ordering: .acquiring) }
    func advance(by d: Duration) {
        let (s, a) = d.components
        now.add(s * 1_000_000_000 + a / 1_000_000_000, ordering: .releasing)
    }
}

/// A counter any thread may bump and read.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// An append-only log of values, for checking the order tasks ran in.
final class OrderLog<T: Sendable>: Sendable {
    private let values = Locked<[T]>([])
    func append(_ v: T) { values.withLock { $0.append(v) } }
    var snapshot: [T] { values.withLock { $0 } }
    var count: Int { values.withLock { $0.count } }
}

extension EventLoop.Configuration {
    static func testing(backend: PollBackend = .auto, idle: IdleStrategy = .park,
                        ingress: IngressKind = .perProducer) -> Self {
        var c = Self()
        c.backend = backend
        c.idleStrategy = idle
        c.ingress = ingress
        return c
    }
}

/// Every backend that works here (io_uring only where a ring can be set up), probed once.
enum LoopBackends {
    static let available: [PollBackend] = [.epoll, .ioUring].filter(\.isAvailable)
}

/// Starts a loop on its own thread; the caller shuts it down.
func startedLoop(_ configuration: EventLoop.Configuration = .testing()) throws -> EventLoop {
    let loop = try EventLoop(configuration: configuration)
    try loop.start()
    return loop
}

/// Blocks the loop inside a task until the returned function is called, and returns once the loop is held:
/// everything submitted meanwhile is queued behind that task and taken together in the next batch.
func holdLoop(_ loop: EventLoop) throws -> @Sendable () -> Void {
    let hold = Atomic<Bool>(true)
    let holding = Atomic<Bool>(false)
    try loop.submit {
        holding.store(true, ordering: .releasing)
        _ = waitUntil { !hold.load(ordering: .acquiring) }
    }
    precondition(waitUntil { holding.load(ordering: .acquiring) }, "the loop never ran the holding task")
    return { hold.store(false, ordering: .releasing) }
}

/// Wakes the loop and waits until a full tick has started after the call.
func nudge(_ loop: EventLoop) async throws {
    try await loop.perform {}
    try await loop.perform {}
}
